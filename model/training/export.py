"""Export of a trained model as a new artifact version, written through artifacts/version.py."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable

import keras
import tensorflow as tf

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.features import Feature
from recsys.artifacts.user_history import latest_clicks
from recsys.artifacts.version import create_version
from recsys.model.data.dataset import Dataset
from recsys.model.training.config import TrainConfig
from recsys.model.training.inputs import TrainingData
from recsys.model.training.optim import SparseAdam
from recsys.model.training.towers import HISTORY, build_tower, to_numpy_tower
from recsys.model.training.two_tower import TwoTower


def export_tower(tower: keras.Model, features: tuple[Feature, ...], path: Path) -> None:
    """A SavedModel at `path` whose `serve` endpoint maps raw feature columns (B,) (and a user
    tower's history (B, N) of item ids) to embeddings (B, D)."""
    archive = keras.export.ExportArchive()
    archive.track(tower)
    signature = {f.name: tf.TensorSpec((None,), tf.float32 if f.is_numeric else tf.string, name=f.name)
                 for f in features}
    if HISTORY in tower.input:
        signature[HISTORY] = tf.TensorSpec((None, None), tf.string, name=HISTORY)
    archive.add_endpoint("serve", lambda cols: tower(cols, training=False), input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def export_version(out_root: str | Path, model: TwoTower, ds: Dataset, data: TrainingData, config: TrainConfig,
                   optimizer: SparseAdam, history: list[dict], best_epoch: int, metrics: dict,
                   say: Callable[[str], None], started: float | None = None) -> Path:
    """Write towers, heads, feature stores, seen pairs and the manifest as a new version; returns its path.

    `history` has a row per epoch trained, `best_epoch` names the one whose weights were kept
    (the manifest's `history` and `best_epoch`).

    `started`: the `time.perf_counter()` when the train command began; the manifest's
    `training.seconds` is the wall time from then to the manifest (data loading, fitting and
    export included), `training.fit_seconds` the epochs alone (every one trained, those after the
    best included). A write that fails (a full disk, a read-only root) is an ArtifactError;
    nothing is left behind."""
    try:
        return _export(out_root, model, ds, data, config, optimizer, history, best_epoch, metrics, say, started)
    except tf.errors.OpError as e:  # TensorFlow's own file writes (the SavedModels): ENOSPC arrives as one of these
        raise ArtifactError(f"{out_root}: cannot write the version ({e.message.splitlines()[0]})") from None


def _export(out_root: str | Path, model: TwoTower, ds: Dataset, data: TrainingData, config: TrainConfig,
            optimizer: SparseAdam, history: list[dict], best_epoch: int, metrics: dict,
            say: Callable[[str], None], started: float | None) -> Path:
    spec, prep = ds.spec, data.prep
    fit_seconds = round(sum(h["seconds"] for h in history), 3)
    with create_version(out_root) as version:
        say(f"export: {version.path}")
        for name, encoder in (("user", model.user_encoder), ("item", model.item_encoder)):
            tower = build_tower(f"{name}_tower", spec.tower(name), prep, encoder)
            export_tower(tower, spec.tower(name), version.tower_dir(name))
            version.write_numpy_tower(name, to_numpy_tower(encoder, spec.tower(name), prep, config.l2_normalize))
        version.write_heads(model.heads.export())
        version.write_table("user", ds.users, spec.tower("user"))
        version.write_table("item", ds.items, spec.tower("item"))
        version.write_seen(ds.interactions)
        if config.history_length:  # where the service starts: every user's latest clicks of the data
            version.write_user_history(latest_clicks(ds.interactions, config.history_length, config.seed))
        version.finish(
            spec, config.hidden[-1],
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            vocabulary_sizes={k: len(v["vocabulary"]) for k, v in prep.items() if "vocabulary" in v},
            config=asdict(config),
            data={"path": str(Path(ds.directory).resolve()), "fingerprint": ds.fingerprint,
                  "users": len(ds.users), "items": len(ds.items), "interactions": len(ds.interactions),
                  "train_rows": data.train_rows, "test_rows": data.test_rows},
            training={"optimizer": optimizer.description(),
                      "seconds": round(time.perf_counter() - started, 3) if started is not None else fit_seconds,
                      "fit_seconds": fit_seconds},
            metrics=metrics,
            history=history,
            best_epoch=best_epoch,
        )
    return version.path

