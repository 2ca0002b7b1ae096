"""Training: fit the two towers and the CTR/CVR heads, then export a versioned artifact."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras

from recsys.model.data.dataset import Dataset, load_dataset
from recsys.model.training import multiworker
from recsys.model.training.config import TrainConfig, make_config
from recsys.model.training.export import export_version
from recsys.model.training.fit import fit
from recsys.model.training.inputs import prepare
from recsys.model.training.two_tower import build_model, make_optimizer


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train(data_dir: str | Path, out_root: str | Path, config: TrainConfig | None = None,
          distributed: bool = False) -> tuple[Path | None, dict]:
    """Train on `data_dir`, write a new version under `out_root`; returns (path, metrics).

    `distributed`: one of the workers TF_CONFIG names (model/training/multiworker.py); only
    the chief writes the version, the others return None for the path.
    """
    started = time.perf_counter()  # the manifest's training time is the wait of the whole command
    config = config or make_config("default")
    cluster = multiworker.connect() if distributed else None  # first: collectives are set up at start
    say = _logger(cluster)
    keras.utils.set_random_seed(config.seed)
    ds = load_dataset(data_dir)
    if cluster is not None:
        multiworker.check_same_data(cluster, ds.fingerprint)
    say(_describe(ds))
    if ds.events is not None:
        say(ds.events.describe())
    data = prepare(ds, config)
    model = build_model(ds.spec, data, config)
    optimizer = make_optimizer(model, config)
    history, best_epoch = fit(model, optimizer, data, config, cluster, say)
    # The exported weights are the best epoch's, so its held-out AUCs are the version's.
    metrics = {k: history[best_epoch - 1][f"test_{k}"] for k in ("ctr_auc", "cvr_auc", "ctcvr_auc")}
    if cluster is None:
        return export_version(out_root, model, ds, data, config, optimizer, history, best_epoch, metrics, say,
                              started), metrics
    say(f"weights sha256 {multiworker.fingerprint(model.weights)}")
    try:
        path = export_version(out_root, model, ds, data, config, optimizer, history, best_epoch, metrics, say,
                              started) if cluster.is_chief else None
    finally:
        multiworker.barrier(cluster)  # the others wait for the chief's export, even a failed one
    return path, metrics


def _logger(cluster: multiworker.Cluster | None) -> Callable[[str], None]:
    """stderr lines; in a cluster each says which worker wrote it."""
    prefix = f"worker {cluster.index}/{cluster.workers}: " if cluster is not None else ""
    return lambda msg: log(prefix + msg)


def _describe(ds: Dataset) -> str:
    inter = ds.interactions
    return (f"data: {len(ds.users)} users, {len(ds.items)} items, {len(inter)} interactions "
            f"({int(inter['click'].sum())} clicks, {int(inter['conversion'].sum())} conversions)")
