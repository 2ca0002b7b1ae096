"""What the model loses to learning, and what its inputs lack, on simulated data.

The default preset is trained on a copy of a realistic data set whose features are the
world's hidden parameters (`reveal`): no ids; every user's taste vector beside the user's
own features (region, age, device); every item's taste vector, quality, log price and
popularity. The model then lacks only what no data reveals at the default density: each
user's own deviation in propensity and price sensitivity from what the features imply.

`equations` applies the truth equations to those same inputs: the best any model of them
can do. The distance from the revealed model to `equations` is what the model loses to
estimation from the clicks alone; from `equations` to the oracle, what the inputs lack (on data
with time, also how tastes drifted and what each session was after: the revealed taste is the
one at the end of the period).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.features import FeatureSpec
from recsys.artifacts.heads import sigmoid
from recsys.artifacts.metrics import ctr_cvr_aucs
from recsys.model.data.dataset import Dataset, load_dataset, split_rows
from recsys.model.data.world import FILE, World
from recsys.model.evaluation.bayes import available
from recsys.model.training.train import train


def has_priors(data: str | Path) -> bool:
    """Whether `data` holds a world.npz that stores what each user's features imply."""
    path = Path(data) / FILE
    return path.is_file() and available(World.load(path))


def rounded(metrics: dict) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in metrics.items()}


def reveal(world: World, ds: Dataset, out: Path) -> None:
    """A copy of data set `ds` (simulated as `world`) in `out`, whose features are the
    world's parameters (no id features)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [f for f in ds.spec.to_list() if f["tower"] == "user" and f["kind"] != "id"]
    users = ds.users[["user_id"] + [f["name"] for f in rows]].copy()
    items = ds.items[["item_id"]].copy()
    u, i = users["user_id"].astype(int).to_numpy() - 1, items["item_id"].astype(int).to_numpy() - 1
    for k in range(world.user_taste.shape[1]):
        users[f"true_user_taste_{k}"] = world.user_taste[u, k]
        items[f"true_item_taste_{k}"] = world.item_taste[i, k]
        rows += [{"name": f"true_user_taste_{k}", "tower": "user", "kind": "numeric"},
                 {"name": f"true_item_taste_{k}", "tower": "item", "kind": "numeric"}]
    for name, values in (("true_quality", world.item_quality), ("true_log_price", world.item_log_price),
                         ("true_popularity", world.item_pop_z)):
        items[name] = np.asarray(values)[i]
        rows.append({"name": name, "tower": "item", "kind": "numeric"})
    users.to_csv(out / "users.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    ds.interactions.to_csv(out / "interactions.csv", index=False)
    FeatureSpec.from_list(rows).dump(out / "features.toml")
    world.save(out)


def equations(world: World, ds: Dataset, test_size: float, seed: int, how: str = "random",
              truth=None) -> dict[str, dict]:
    """Held-out AUCs of the truth equations on the revealed inputs, and of the oracle (`truth`: the
    rows' true probabilities at their time and intent, truth.parquet; without it the world's at the
    rows' timestamps), on the split `how` (random or time)."""
    _, test = split_rows(ds.interactions, how, test_size, seed)
    rows = ds.interactions.iloc[test]
    u, i = rows["user_id"].astype(int).to_numpy() - 1, rows["item_id"].astype(int).to_numpy() - 1
    click, conversion = rows["click"].to_numpy(), rows["conversion"].to_numpy()
    clicked = click == 1
    # The revealed taste is the one at the end of the period; a session's intent is no input.
    aff = world._affinity(u, i)
    p_click = sigmoid(world.click_logit(aff, i))
    p_conv = sigmoid(world.conv_logit(aff, i, world.user_conv_bias_base[u], world.user_price_sens_base[u]))
    out = {"equations": ctr_cvr_aucs(click, conversion, p_click, p_conv)}
    if truth is not None:
        oracle = truth.iloc[test]
        out["oracle"] = ctr_cvr_aucs(click, conversion, oracle["p_click"].to_numpy(), oracle["p_conversion"].to_numpy())
    else:
        at = rows["timestamp"].to_numpy(np.float64) if "timestamp" in rows else None
        aff = world._affinity(u, i, at)
        out["oracle"] = ctr_cvr_aucs(click, conversion, sigmoid(world.click_logit(aff, i)),
                                     sigmoid(world.conv_logit(aff, i, world.user_conv_bias[u],
                                                              world.user_price_sens[u])))
    out = {k: rounded(v) for k, v in out.items()}
    return out | {"held_out": {"rows": int(len(test)), "clicks": int(clicked.sum())}}


def learnability(data: Path, work: Path, config) -> dict[str, dict]:
    """Train `config` on the revealed copy of `data` (under `work`); its held-out AUCs beside
    `equations` and the oracle, on the split `config` defines."""
    world, ds = World.load(data), load_dataset(data)
    truth = pd.read_parquet(Path(data) / "truth.parquet") if (Path(data) / "truth.parquet").is_file() else None
    reveal(world, ds, Path(work) / "revealed")
    _, metrics = train(Path(work) / "revealed", Path(work) / "artifacts-revealed", config)
    return {"revealed": rounded(metrics)} | equations(world, ds, config.test_size, config.seed, config.split, truth)
