"""Simulated data sets written in the dataset contract.

`seed` is the article's generator, draw for draw: the same global-seed-42 stream, the same
calls in the same order, so its 100 users, 200 items and 1000 exposures come out identical
(labels are random: there is nothing to learn, it is a smoke test of the pipeline).

`realistic` is a planted world with known truth (model/data/world.py): hidden tastes, features
correlated with them, power-law popularity, a half-popular half-targeted exposure policy,
clicks from taste affinity and conversions from price sensitivity and brand quality, over 90
days of sessions (tastes drift; each session has an intent that raises clicks on a few
categories). Next to the data it writes `truth.parquet` (row-aligned p_click, p_conversion at
the row's time and intent, the counterfactual conversion_if_clicked label, the session and its
intent), `world.npz` (the latent parameters, read by `World.load`) and `world.json` (sizes,
seed, constants, feature names).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import ConfigError
from recsys.artifacts.features import KEYS, Feature, FeatureSpec
from recsys.model.data.dataset import resolve_format, write_dataset
from recsys.model.data.world import (BROWSE_SHARE, DRIFT, FUNNELS, INTENT_SHARPNESS, KNOTS, MAX_INTENT, SESSION_GAP,
                                     SESSION_ROWS, SPAN, T0, exposures, log, make_world)

# world.json's format: 2 adds time (drift, sessions with an intent); World.load reads either.
WORLD_FORMAT = 2

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

REALISTIC_SPEC = FeatureSpec((
    Feature("user_id", "user", "id"),
    Feature("age", "user", "numeric"),
    Feature("region", "user", "categorical", 4),
    Feature("device", "user", "categorical", 2),
    Feature("item_id", "item", "id"),
    Feature("category", "item", "categorical", 8),
    Feature("brand", "item", "categorical", 16),
    Feature("price", "item", "numeric"),
))
PROFILES = ("seed", "realistic")
REALISTIC_DEFAULTS = {"users": 20_000, "items": 5_000, "interactions": 500_000, "seed": 0}


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


def renamed(spec: FeatureSpec, rename: dict[str, str] | None = None, prefix: str | None = None) -> dict[str, str]:
    """old -> new name of every non-key feature: `rename` first, then `prefix` on the rest."""
    rename = dict(rename or {})
    names = [f.name for f in spec.features]
    unknown = sorted(set(rename) - set(names))
    if unknown:
        raise ConfigError(f"rename: unknown feature(s) {unknown}; the profile has {names}")
    keys = sorted(set(rename) & set(KEYS.values()))
    if keys:
        raise ConfigError(f"rename: {keys} are the join keys of the contract and cannot be renamed")
    mapping = {}
    for f in spec.features:
        if f.name in KEYS.values():
            continue
        new = rename.get(f.name, f"{prefix}{f.name}" if prefix else f.name)
        if new != f.name:
            mapping[f.name] = new
    final = [mapping.get(n, n) for n in names]
    bad = [n for n in final if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", n)]
    if bad or len(set(final)) != len(final):
        raise ConfigError(f"renamed features must be distinct identifiers (letters, digits, _): got {final}")
    return mapping


def _apply(mapping: dict[str, str], spec: FeatureSpec, *frames: pd.DataFrame):
    spec = FeatureSpec(tuple(Feature(mapping.get(f.name, f.name), f.tower, f.kind, f.embedding_dim)
                             for f in spec.features))
    return (spec, *(fr.rename(columns=mapping) for fr in frames))


def simulate_realistic(out: Path, users: int | None = None, items: int | None = None,
                       interactions: int | None = None, seed: int | None = None,
                       rename: dict[str, str] | None = None, feature_prefix: str | None = None,
                       fmt: str = "auto", progress: bool = True, funnel: str = "realistic") -> dict:
    if funnel not in FUNNELS:
        raise ConfigError(f"unknown funnel {funnel!r}; expected one of {sorted(FUNNELS)}")
    cfg = {k: v if v is not None else REALISTIC_DEFAULTS[k]
           for k, v in (("users", users), ("items", items), ("interactions", interactions), ("seed", seed))}
    for k in ("users", "items", "interactions"):
        if cfg[k] < 1:
            raise ConfigError(f"--{k} must be positive")
    mapping = renamed(REALISTIC_SPEC, rename, feature_prefix)
    fmt = resolve_format(fmt, cfg["interactions"])
    started = time.monotonic()
    say = log if progress else (lambda msg: None)
    say(f"world: {cfg['users']:,} users, {cfg['items']:,} items (seed {cfg['seed']}, {funnel} funnel)")
    world, user_tab, item_tab = make_world(cfg["users"], cfg["items"], cfg["seed"], funnel)
    say(f"exposures: {cfg['interactions']:,}")
    inter, truth = exposures(world, cfg["interactions"], cfg["seed"], progress=progress)
    spec, user_tab, item_tab = _apply(mapping, REALISTIC_SPEC, user_tab, item_tab)
    say(f"writing {fmt} to {out}")
    write_dataset(out, user_tab, item_tab, inter, spec, fmt)
    truth.to_parquet(Path(out) / "truth.parquet", index=False)
    world.save(out)
    meta = {"profile": "realistic", "format": WORLD_FORMAT, **cfg, "funnel": funnel, "params": world.params,
            "time": {"start": T0, "span_seconds": SPAN, "drift": DRIFT, "knots": KNOTS,
                     "session_rows": SESSION_ROWS, "session_gap_seconds": SESSION_GAP, "max_intent": MAX_INTENT,
                     "intent_sharpness": INTENT_SHARPNESS, "browse_share": BROWSE_SHARE},
            "features": {f.name: mapping.get(f.name, f.name) for f in REALISTIC_SPEC.features},
            "truth": "truth.parquet rows align with interactions: p_click and p_conversion (given a click) at the "
                     "row's time and its session's intent (categories, as the items' category names)"}
    (Path(out) / "world.json").write_text(json.dumps(meta, indent=2) + "\n")
    clicks, convs = int(inter["click"].sum()), int(inter["conversion"].sum())
    say(f"done in {time.monotonic() - started:.1f}s")
    return {"users": len(user_tab), "items": len(item_tab), "interactions": len(inter), "clicks": clicks,
            "conversions": convs, "ctr": round(clicks / len(inter), 4),
            "cvr": round(convs / max(clicks, 1), 4), "format": fmt, "seed": cfg["seed"]}


def simulate(profile: str, out: Path, users: int | None = None, items: int | None = None,
             interactions: int | None = None, seed: int | None = None, rename: dict[str, str] | None = None,
             feature_prefix: str | None = None, fmt: str = "auto", progress: bool = True,
             funnel: str = "realistic") -> dict:
    """Write a simulated data set to `out`; returns a summary (sizes, clicks, conversions).

    seed: the article's data (its sizes and seed 42 unless given; CSV unless fmt=parquet).
    realistic: the planted world (defaults 20,000 users, 5,000 items, 500,000 exposures,
    seed 0; Parquet above 1M exposures when fmt=auto; `funnel` sets its click and conversion
    rates, world.FUNNELS). `rename` maps feature names to new
    ones and `feature_prefix` prefixes the others (user_id and item_id stay).
    """
    if profile == "realistic":
        return simulate_realistic(out, users, items, interactions, seed, rename, feature_prefix, fmt, progress,
                                  funnel)
    if funnel != "realistic":
        raise ConfigError("--funnel applies to the realistic profile only")
    if profile == "seed":
        sizes = {k: v for k, v in (("num_users", users), ("num_items", items),
                                   ("num_interactions", interactions), ("seed", seed)) if v is not None}
        users, items, interactions = simulate_seed(**sizes)
        spec, users, items = _apply(renamed(SEED_SPEC, rename, feature_prefix), SEED_SPEC, users, items)
        write_dataset(out, users, items, interactions, spec, resolve_format(fmt, 0))
    else:
        raise ConfigError(f"unknown profile {profile!r}")
    return {"users": len(users), "items": len(items), "interactions": len(interactions),
            "clicks": int(interactions["click"].sum()), "conversions": int(interactions["conversion"].sum())}
