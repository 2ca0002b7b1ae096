"""Simulated data sets written in the dataset contract.

`seed` is the article's generator, draw for draw: the same global-seed-42 stream, the same
calls in the same order, so its 100 users, 200 items and 1000 exposures come out identical
(labels are random: there is nothing to learn, it is a smoke test of the pipeline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from artifacts.features import Feature, FeatureSpec

SEED_SPEC = FeatureSpec((
    Feature("user_id", "user", "id", 8),
    Feature("user_age", "user", "numeric"),
    Feature("user_gender", "user", "categorical", 2),
    Feature("user_occupation", "user", "categorical", 2),
    Feature("city_code", "user", "categorical", 8),
    Feature("device_type", "user", "categorical", 8),
    Feature("item_id", "item", "id", 8),
    Feature("item_category", "item", "categorical", 2),
    Feature("item_brand", "item", "categorical", 2),
    Feature("item_price", "item", "numeric"),
))


def simulate_seed(num_users: int = 100, num_items: int = 200, num_interactions: int = 1000,
                  seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The article's users, items and interactions (labels renamed to click/conversion)."""
    rng = np.random.RandomState(seed)  # the same stream as np.random.seed(seed)
    users = pd.DataFrame({
        "user_id": np.arange(1, num_users + 1),
        "user_age": rng.randint(18, 65, size=num_users),
        "user_gender": rng.choice(["male", "female"], size=num_users),
        "user_occupation": rng.choice(["student", "worker", "teacher"], size=num_users),
        "city_code": rng.randint(1, 2856, size=num_users),
        "device_type": rng.randint(0, 5, size=num_users),
    })
    items = pd.DataFrame({
        "item_id": np.arange(1, num_items + 1),
        "item_category": rng.choice(["electronics", "books", "clothing"], size=num_items),
        "item_brand": rng.choice(["brandA", "brandB", "brandC"], size=num_items),
        "item_price": rng.randint(1, 199, size=num_items),
    })
    rows = []
    for _ in range(num_interactions):
        user_id = rng.randint(1, num_users + 1)
        item_id = rng.randint(1, num_items + 1)
        click = rng.randint(0, 2)
        conversion = rng.binomial(1, 0.3) if click == 1 else 0
        rows.append([user_id, item_id, click, conversion])
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "click", "conversion"])
    return users, items, interactions


def write_dataset(out: Path, users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame,
                  spec: FeatureSpec, fmt: str = "csv") -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("users", users), ("items", items), ("interactions", interactions)):
        for stale in (out / f"{name}.csv", out / f"{name}.parquet"):
            stale.unlink(missing_ok=True)
        if fmt == "parquet":
            frame.to_parquet(out / f"{name}.parquet", index=False)
        else:
            frame.to_csv(out / f"{name}.csv", index=False)
    spec.dump(out / "features.toml")


def simulate(profile: str, out: Path, **kwargs) -> dict:
    if profile == "seed":
        users, items, interactions = simulate_seed()
        write_dataset(out, users, items, interactions, SEED_SPEC)
    else:
        raise ValueError(f"unknown profile {profile!r}")
    return {"users": len(users), "items": len(items), "interactions": len(interactions),
            "clicks": int(interactions["click"].sum()), "conversions": int(interactions["conversion"].sum())}
