"""How close to the oracle can the default model get on a realistic data set, given perfect inputs?

    python -m bench.learnability --data DIR [--out WORKDIR]

DIR is a `recsys simulate --profile realistic` output (it holds world.npz). The script
trains the default preset twice on the same interactions and held-out split:

  observed   the data set as it is (ids, region, age, device, category, brand, price);
  revealed   no ids, and the world's hidden parameters as numeric features instead: every
             user's taste vector beside region, age and device, every item's taste vector,
             quality, log price and popularity. The model then lacks only what no data
             reveals at the default density: each user's own deviation in propensity and
             price sensitivity from what region, age and device imply.

It prints, as JSON, the held-out AUCs of both runs next to `equations` (the truth equations
applied to the revealed inputs: the best any model of them can do) and the oracle. The
distance between `revealed` and `equations` is what the model loses to estimation from
the clicks alone; the distance between `equations` and the oracle is what the inputs lack.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log(msg: str) -> None:
    print(f"learnability: {msg}", file=sys.stderr, flush=True)


def reveal(data: Path, out: Path) -> None:
    """A copy of `data` whose features are the world's parameters (no id features)."""
    import numpy as np

    from artifacts.features import FeatureSpec
    from model.data import load_dataset
    from model.world import World

    world, ds = World.load(data), load_dataset(data)
    out.mkdir(parents=True, exist_ok=True)
    users, items = ds.users.copy(), ds.items.copy()
    u, i = users["user_id"].astype(int).to_numpy() - 1, items["item_id"].astype(int).to_numpy() - 1
    keep = [f for f in ds.spec.features if f.tower == "user" and f.kind != "id"]
    rows = [{"name": f.name, "tower": "user", "kind": f.kind, **({"embedding_dim": f.embedding_dim}
                                                                 if f.embedding_dim else {})} for f in keep]
    users = users[["user_id"] + [f.name for f in keep]]
    items = items[["item_id"]]
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
    shutil.copy(data / "world.npz", out / "world.npz")


def equations(data: Path, test_size: float, seed: int) -> dict[str, dict[str, float]]:
    """Held-out AUCs of the truth equations on the revealed inputs, and of the oracle."""
    import numpy as np

    from model.data import load_dataset, split
    from model.metrics import auc
    from model.world import World, sigmoid

    world, ds = World.load(data), load_dataset(data)
    _, test = split(len(ds.interactions), test_size, seed)
    rows = ds.interactions.iloc[test]
    u, i = rows["user_id"].astype(int).to_numpy() - 1, rows["item_id"].astype(int).to_numpy() - 1
    click, conversion = rows["click"].to_numpy(), rows["conversion"].to_numpy()
    aff = world._affinity(u, i)
    p_click = sigmoid(world.click_logit(aff, i))
    out = {}
    for name, bias, sens in (("equations", world.user_conv_bias_base, world.user_price_sens_base),
                             ("oracle", world.user_conv_bias, world.user_price_sens)):
        p_conv = sigmoid(world.conv_logit(aff, i, bias[u], sens[u]))
        clicked = click == 1
        out[name] = {"ctr_auc": auc(click, p_click), "cvr_auc": auc(conversion[clicked], p_conv[clicked]),
                     "ctcvr_auc": auc(conversion, p_click * p_conv)}
    return {k: {m: round(float(x), 4) for m, x in v.items()} for k, v in out.items()} | {
        "held_out": {"rows": int(len(test)), "clicks": int(np.sum(click))}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.learnability", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="a realistic simulator output (holds world.npz)")
    ap.add_argument("--out", type=Path, help="work directory (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    if not (args.data / "world.npz").is_file():
        print(f"learnability: {args.data}/world.npz not found: give a `recsys simulate --profile realistic` output",
              file=sys.stderr)
        return 2

    from model.train import make_config, train
    from model.world import World

    if World.load(args.data).user_conv_bias_base is None:
        print(f"learnability: {args.data}/world.npz predates the stored feature priors: simulate it again",
              file=sys.stderr)
        return 2

    work = args.out or Path(tempfile.mkdtemp(prefix="recsys-learnability-"))
    try:
        config = make_config("default")
        log("revealing the world's parameters as features")
        reveal(args.data, work / "revealed")
        result = {}
        for name, data in (("observed", args.data), ("revealed", work / "revealed")):
            log(f"training the default preset on the {name} features")
            _, metrics = train(data, work / f"artifacts-{name}", config)
            result[name] = {k: round(float(v), 4) for k, v in metrics.items()}
        result |= equations(args.data, config.test_size, config.seed)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
