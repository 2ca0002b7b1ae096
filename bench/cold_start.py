"""How well are items the model never saw ranked, once added through the live catalogue?

    python -m bench.cold_start --data DIR [--out WORKDIR --holdout 0.1 --rates 0,D --users 2000
                                           --quality docs/QUALITY.md]

DIR is a `recsys simulate --profile realistic` output (it holds world.npz, the truth). Steps:

1. Hold out a random `--holdout` share of the items: they and every interaction with them
   leave the training data (a copy in WORKDIR/train-data), so the model never sees them.
2. Train the default preset on that copy once per id-dropout rate in `--rates` (0: the
   out-of-vocabulary id row untrained; D, the preset's default), and build the index.
3. Add the held-out items through the live catalogue: a change file applied by `recsys
   catalogue apply`, then the service's recommender loaded as `recsys serve` loads it, which
   embeds the store's upserts with the item tower from their attributes (their ids are out of
   vocabulary) and appends them to the index.
4. For `--users` users the model trained on, ask that recommender for its top 50 among the
   held-out items only (`include_items`, as a client would), and among an equal-sized random set
   of items the model trained on. Each list is graded within its own set by the world's true
   pCTCVR: true NDCG@50, and recall@K, the share of the set's truly best K in the served top K.
   Both sets are uniform draws from the same catalogue, so they have the same mix of
   categories, prices and popularity; only whether the model saw them differs.

The ratio new/seen of true NDCG@50 is the figure the issue sets a target for (0.5). Two
references put it in context: a random order of each set, and the truth with each item's
popularity hidden (the order an oracle gets without the item's click history, which no
attribute carries). Prints JSON; with `--quality` writes its own section of that file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.sections import write_section

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SECTION = "cold-start"
TARGET = 0.5      # the target: new items' true NDCG@50 at least half the seen items'
NDCG_K = 50
KS = (10, 50)


def log(msg: str) -> None:
    print(f"cold_start: {msg}", file=sys.stderr, flush=True)


def hold_out(data: Path, out: Path, share: float, seed: int) -> np.ndarray:
    """Write `data` without a random `share` of its items (nor their interactions) to `out`;
    returns the held-out item ids (strings)."""
    from recsys.model.data.dataset import load_dataset, write_dataset

    ds = load_dataset(data)
    ids = ds.items["item_id"].to_numpy(dtype=object)
    n = max(1, round(share * len(ids)))
    held = np.sort(np.random.default_rng(seed).choice(ids, n, replace=False))
    keep = ~ds.items["item_id"].isin(held)
    inter = ds.interactions[~ds.interactions["item_id"].isin(held)]
    write_dataset(out, ds.users, ds.items[keep], inter, ds.spec)
    return held


def add_through_catalogue(root: Path, items: pd.DataFrame, work: Path) -> None:
    """Upsert `items` (item_id plus every item feature) with `recsys catalogue apply` into the
    root's store (named, so a RECSYS_CATALOGUE_DB in the environment cannot redirect it)."""
    from recsys.cli import main

    changes = work / "held-out-changes.parquet"
    items.assign(op="upsert").to_parquet(changes, index=False)
    with contextlib.redirect_stdout(io.StringIO()):  # its JSON line; the outcome is checked below
        code = main(["catalogue", "apply", "--artifacts", str(root), "--file", str(changes),
                     "--catalogue-db", str(store_path(root))])
    if code != 0:
        raise RuntimeError(f"recsys catalogue apply exited {code}")


def store_path(root: Path) -> Path:
    from recsys.artifacts.catalogue import DATABASE

    return root / DATABASE


def ndcg(cols: np.ndarray, gains: np.ndarray) -> float:
    """True NDCG@50 (@ the set's size when smaller) of rankings (column indices) against gains."""
    from recsys.model.evaluation.evaluate import ndcg_against_gains

    return ndcg_against_gains(cols, gains, min(NDCG_K, gains.shape[1]))


def served_lists(rec, users: np.ndarray, item_set: np.ndarray | None, k: int) -> np.ndarray:
    """(users, k) item ids: each user's top k of `item_set` (None: the whole live catalogue) as
    the service answers it."""
    from recsys.service.domain import Query

    include = item_set.tolist() if item_set is not None else None
    out = []
    for start in range(0, len(users), 256):
        answers = rec.recommend_batch([Query(str(u), k, include_items=include) for u in users[start:start + 256]])
        for a in answers:
            if isinstance(a, Exception):
                raise a
            out.append(a.item_ids.astype(str))
    return np.stack(out)


def grade(lists: np.ndarray, item_set: np.ndarray, gains: np.ndarray) -> dict[str, float]:
    """True NDCG@50 and recall@K against the truth of rankings `lists` (ids) over `item_set`,
    whose true pCTCVR is `gains` (users, len(item_set))."""
    from recsys.artifacts.metrics import recall_at_k
    from recsys.model.evaluation.evaluate import top_k

    col = pd.Series(np.arange(len(item_set)), index=item_set)
    cols = col.loc[lists.ravel()].to_numpy().reshape(lists.shape)
    out = {f"true_ndcg@{NDCG_K}": ndcg(cols, gains)}
    best = top_k(gains, max(KS))
    out.update({f"recall@{k}": recall_at_k(cols, best, k) for k in KS})
    return out


def references(world, users: np.ndarray, item_set: np.ndarray, gains: np.ndarray, seed: int) -> dict:
    """Random order, and the truth with item popularity hidden (every item at the mean)."""
    from recsys.model.evaluation.evaluate import top_k

    rng = np.random.default_rng(seed)
    random_order = np.argsort(rng.random(gains.shape), axis=1)
    blind = dataclasses.replace(world, item_pop_z=np.zeros_like(world.item_pop_z))
    blind_order = top_k(blind.matrix(users, "ctcvr", item_set).astype(np.float64), NDCG_K)
    return {"random": ndcg(random_order, gains), "truth without popularity": ndcg(blind_order, gains)}


def whole_catalogue(rec, world, users: np.ndarray, catalogue: np.ndarray, held: np.ndarray) -> dict:
    """The unrestricted top 50 over the live catalogue, trained and new items together: its true
    NDCG@50, and the new items' share of it beside their share of the true top 50 (a within-set
    ranking cannot see whether new items score too low or too high to ever compete)."""
    from recsys.model.evaluation.evaluate import top_k

    col = pd.Series(np.arange(len(catalogue)), index=catalogue)
    is_new = np.isin(catalogue, held)
    total = {"true_ndcg@50": 0.0, "new_share_served": 0.0, "new_share_truth": 0.0}
    for start in range(0, len(users), 256):  # a chunk of users x the catalogue at a time
        chunk = users[start:start + 256]
        gains = np.asarray(world.matrix(chunk, "ctcvr", catalogue), np.float64)
        lists = served_lists(rec, chunk, None, NDCG_K)
        cols = col.loc[lists.ravel()].to_numpy().reshape(lists.shape)
        for name, value in (("true_ndcg@50", ndcg(cols, gains)), ("new_share_served", is_new[cols].mean()),
                            ("new_share_truth", is_new[top_k(gains, NDCG_K)].mean())):
            total[name] += float(value) * len(chunk)
    return {name: value / len(users) for name, value in total.items()}


def measure(root: Path, held: np.ndarray, data: Path, n_users: int, seed: int) -> dict:
    """New vs seen items for one trained and indexed artifact root, through the service's recommender."""
    from recsys.artifacts.version import Version
    from recsys.model.data.world import World
    from recsys.service.settings import Settings
    from recsys.service.state import load_recommender

    version = Version.open(root, need_index=True)
    vocab = {t: version.numpy_tower(t).config["vocabularies"][f"{t}_id"] for t in ("user", "item")}
    if set(held) & set(vocab["item"]) or set(held) & set(version.table("item").ids):
        raise AssertionError("a held-out item is in the trained model's vocabulary or catalogue")
    rng = np.random.default_rng(seed)
    seen = np.sort(rng.choice(np.asarray(vocab["item"], dtype=object), len(held), replace=False))
    users = np.sort(rng.choice(np.asarray(vocab["user"], dtype=object), min(n_users, len(vocab["user"])),
                               replace=False))
    rec = load_recommender(Settings(artifacts=root, version=version.name, catalogue_db=store_path(root)))
    try:
        missing = [i for i in held if rec.catalogue.status(str(i)) != "available"]
        if missing:
            raise AssertionError(f"{len(missing)} held-out item(s) not served after the catalogue change, "
                                 f"e.g. {missing[0]!r}")
        world = World.load(data)
        out = {}
        for name, item_set in (("new", held), ("seen", seen)):
            gains = np.asarray(world.matrix(users, "ctcvr", item_set), np.float64)
            out[name] = grade(served_lists(rec, users, item_set, NDCG_K), item_set, gains)
            out[name]["references"] = references(world, users, item_set, gains, seed)
        out["whole"] = whole_catalogue(rec, world, users, np.concatenate([version.table("item").ids, held]), held)
    finally:
        rec.release()
    new, seen = out["new"][f"true_ndcg@{NDCG_K}"], out["seen"][f"true_ndcg@{NDCG_K}"]
    out["ratio"] = new / seen
    # The same ratio above each set's random order: what the model adds, new vs seen.
    out["ratio_above_random"] = ((new - out["new"]["references"]["random"])
                                 / (seen - out["seen"]["references"]["random"]))
    out["users"], out["items_per_set"] = len(users), len(held)
    return out


def run(data: Path, work: Path, share: float, rates: list[float], n_users: int, seed: int,
        epochs: int | None = None) -> dict:
    from recsys.index.build_index import build_index
    from recsys.model.data.dataset import load_dataset
    from recsys.model.training.config import make_config
    from recsys.model.training.train import train

    train_data = work / "train-data"
    held = hold_out(data, train_data, share, seed)
    pd.DataFrame({"item_id": held}).to_csv(work / "held-out.csv", index=False)
    log(f"{len(held)} of the items held out of training (listed in {work / 'held-out.csv'})")
    items = load_dataset(data).items
    new_items = items[items["item_id"].isin(held)]
    result = {"data": str(data), "holdout": share, "seed": seed, "rates": {}}
    for rate in rates:
        root = work / f"artifacts-id-dropout-{rate:g}"
        shutil.rmtree(root, ignore_errors=True)
        log(f"training the default preset with id dropout {rate:g}")
        version, _ = train(train_data, root, make_config("default", id_dropout=rate, epochs=epochs))
        build_index(root, version.name)
        add_through_catalogue(root, new_items, work)
        result["rates"][f"{rate:g}"] = measure(root, held, data, n_users, seed)
    return result


def describe_data(data: Path) -> str:
    """The simulator's sizes and seed, from the world.json it writes beside the data."""
    try:
        meta = json.loads((data / "world.json").read_text())
        return (f"`recsys simulate --profile realistic` with {meta['users']:,} users, {meta['items']:,} items, "
                f"{meta['interactions']:,} exposures, seed {meta['seed']}")
    except (OSError, ValueError, KeyError):
        return f"{data}"


def markdown(result: dict, command: str, default_rate: float) -> str:
    """The QUALITY.md section: one row per id-dropout rate, within each set and over the whole catalogue."""
    from recsys.artifacts import host

    rates = result["rates"]
    first = next(iter(rates.values()))
    label = {rate: f"{rate} (default)" if float(rate) == default_rate else rate for rate in rates}
    lines = ["## Cold-start items", "",
             f"Generated by `{command}` on {host.describe()}; a run of its own, not part of `make quality` "
             f"(which keeps this section as it is). Data: {describe_data(Path(result['data']))}.", "",
             f"{result['holdout']:.0%} of the realistic data set's items ({first['items_per_set']:,}) are held out of "
             "training with all their interactions, then added through the live catalogue (`recsys catalogue apply`; "
             "the service embeds them with the item tower from their attributes and the out-of-vocabulary id row). "
             f"The default preset is trained once per id-dropout rate (0: the OOV row untrained). For "
             f"{first['users']:,} users the model trained on, the service ranks only the new items (`include_items`), "
             "and only an equal-sized random set of items it trained on; each top 50 is graded within its own set "
             "by the true pCTCVR. recall@K: the share of the set's truly best K in the served top K. "
             "Above random: (new - random order) / (seen - random order).", "",
             "| id dropout | new true_ndcg@50 | seen true_ndcg@50 | new / seen | above random | new recall@10 "
             "| seen recall@10 | new recall@50 | seen recall@50 |", "|---|---|---|---|---|---|---|---|---|"]
    for rate, r in rates.items():
        n, s = r["new"], r["seen"]
        lines.append(f"| {label[rate]} | {n['true_ndcg@50']:.4f} | {s['true_ndcg@50']:.4f} | {r['ratio']:.2f} "
                     f"| {r['ratio_above_random']:.2f} | {n['recall@10']:.4f} | {s['recall@10']:.4f} "
                     f"| {n['recall@50']:.4f} | {s['recall@50']:.4f} |")
    ref = {name: first[name]["references"] for name in ("new", "seen")}
    lines += ["", f"References (true_ndcg@50, new / seen set): random order {ref['new']['random']:.4f} / "
              f"{ref['seen']['random']:.4f}; the truth with every item's popularity hidden (what no attribute "
              f"tells) {ref['new']['truth without popularity']:.4f} / {ref['seen']['truth without popularity']:.4f}.",
              "", "A within-set ranking cannot tell whether the new items score too low to ever be shown, or too "
              "high. Over the whole live catalogue (trained and new items together, no restriction), the same users' "
              f"top 50, against the truth's, where the new items hold {first['whole']['new_share_truth']:.1%} of "
              "the top 50:", "",
              "| id dropout | true_ndcg@50 | new items' share of the served top 50 |", "|---|---|---|"]
    for rate, r in rates.items():
        w = r["whole"]
        lines.append(f"| {label[rate]} | {w['true_ndcg@50']:.4f} | {w['new_share_served']:.1%} |")
    at = rates.get(f"{default_rate:g}")
    if at is not None:
        met = at["ratio"] >= TARGET
        lines += ["", f"Target: new items reach at least {TARGET:g} of the seen items' true NDCG@50 with the "
                  f"default preset: {at['ratio']:.2f}, {'met' if met else '**not met**'}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="a realistic simulator output (holds world.npz)")
    ap.add_argument("--out", type=Path, help="work directory (default: a temporary one, removed after)")
    ap.add_argument("--holdout", type=float, default=0.1, help="share of the items held out of training (default 0.1)")
    ap.add_argument("--rates", help="comma-separated id-dropout rates to train with (default: 0 and the preset's)")
    ap.add_argument("--users", type=int, default=2000, help="users whose rankings are graded (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the held-out, seen and user samples (default 0)")
    ap.add_argument("--epochs", type=int, help="most epochs (default: the preset's; for quick runs)")
    ap.add_argument("--quality", type=Path, help="write the section into this file (docs/QUALITY.md)")
    args = ap.parse_args(argv)
    if not (args.data / "world.npz").is_file():
        print(f"cold_start: {args.data}/world.npz not found: give a `recsys simulate --profile realistic` output",
              file=sys.stderr)
        return 2
    if not 0 < args.holdout < 1:
        print("cold_start: --holdout must be between 0 and 1", file=sys.stderr)
        return 2
    from recsys.model.training.config import make_config

    default_rate = make_config("default").id_dropout
    rates = [float(r) for r in args.rates.split(",")] if args.rates else sorted({0.0, default_rate})
    work = args.out or Path(tempfile.mkdtemp(prefix="recsys-cold-start-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.data, work, args.holdout, rates, args.users, args.seed, args.epochs)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.quality is not None:
        command = "python -m bench.cold_start " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.quality, SECTION, markdown(result, command, default_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
