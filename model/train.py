"""Training: fit the two towers and the CTR/CVR heads, then export a versioned artifact.

Losses (per batch of exposures, logits a = CTR, b = CVR):
    ctr     mean BCE(click, a) over all rows
    masked  mean BCE(conversion, b) over clicked rows only (the article; selection-biased)
    esmm    mean BCE(conversion, sigmoid(a) * sigmoid(b)) over all rows (pCTCVR, Ma et al. 2018)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from artifacts import store  # noqa: E402
from artifacts.errors import ConfigError  # noqa: E402
from artifacts.feature_store import save_table, to_columns  # noqa: E402
from artifacts.features import KEYS, Feature, FeatureSpec  # noqa: E402
from model.data import LABELS, Dataset, load_dataset, split  # noqa: E402
from model.heads import HeadsLayer  # noqa: E402
from model.metrics import auc  # noqa: E402
from model.retrieval import in_batch_softmax_loss  # noqa: E402
from model.towers import build_tower, fit_preprocessing, to_numpy_tower  # noqa: E402

CVR_LOSSES = ("masked", "esmm")


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in the manifest."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 42
    test_size: float = 0.2
    hidden: tuple[int, ...] = (64, 32)
    output_activation: str = "relu"
    l2_normalize: bool = False
    head_inputs: str = "dot"
    head_hidden: tuple[int, ...] = ()
    cvr_loss: str = "masked"
    # Weight of the in-batch softmax over clicked pairs (model/retrieval.py); 0 turns it off.
    retrieval_weight: float = 0.0
    temperature: float = 0.05

    def __post_init__(self):
        self.hidden, self.head_hidden = tuple(self.hidden), tuple(self.head_hidden)
        if self.cvr_loss not in CVR_LOSSES:
            raise ConfigError(f"cvr_loss must be one of {CVR_LOSSES}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.test_size < 1 or self.learning_rate <= 0:
            raise ConfigError("epochs and batch size must be >= 1, test size in (0, 1), learning rate > 0")
        if self.retrieval_weight < 0 or self.temperature <= 0:
            raise ConfigError("retrieval weight must be >= 0 and temperature > 0")


# `article` is the blog article's model, kept reproducible on the seed data. `default` adds
# what makes it learn to retrieve and rank: unit-norm embeddings trained with an in-batch
# softmax, heads that see u⊙v through a hidden layer, and the ESMM conversion loss.
PRESETS = {
    "article": {},
    "default": dict(epochs=10, batch_size=512, output_activation="linear", l2_normalize=True,
                    head_inputs="dot+product", head_hidden=(32,), cvr_loss="esmm", retrieval_weight=1.0),
}


def make_config(preset: str = "default", **overrides) -> TrainConfig:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return TrainConfig(**{**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}})


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class TwoTower(keras.Model):
    """Raw columns -> (u (B, D), v (B, D), ctr_logit (B,), cvr_logit (B,))."""

    def __init__(self, user_tower: keras.Model, item_tower: keras.Model, heads: HeadsLayer, **kwargs):
        super().__init__(**kwargs)
        self.user_tower, self.item_tower, self.heads = user_tower, item_tower, heads

    def call(self, columns, training=False):
        u = self.user_tower({k: columns[k] for k in self.user_tower.input}, training=training)
        v = self.item_tower({k: columns[k] for k in self.item_tower.input}, training=training)
        ctr, cvr = self.heads(u, v)
        return u, v, ctr, cvr


def losses(ctr_logit, cvr_logit, click, conversion, cvr_loss: str):
    """(ctr_loss, cvr_loss) scalars; see the module docstring."""
    ctr = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=click, logits=ctr_logit))
    if cvr_loss == "masked":
        per_row = tf.nn.sigmoid_cross_entropy_with_logits(labels=conversion, logits=cvr_logit)
        cvr = tf.reduce_sum(per_row * click) / tf.maximum(tf.reduce_sum(click), 1.0)
    else:
        # log pCTCVR and log(1 - pCTCVR) in log space: the product of two sigmoids underflows.
        log_p = tf.math.log_sigmoid(ctr_logit) + tf.math.log_sigmoid(cvr_logit)
        log_not_p = tf.math.log1p(-tf.exp(tf.minimum(log_p, -1e-7)))
        cvr = -tf.reduce_mean(conversion * log_p + (1.0 - conversion) * log_not_p)
    return ctr, cvr


def _columns(frame, features: tuple[Feature, ...]) -> dict[str, np.ndarray]:
    cols = to_columns(frame, features)
    return {k: (v if v.dtype == np.float32 else v.astype(str)) for k, v in cols.items()}


def _tf_dataset(frame, spec: FeatureSpec, batch_size: int, shuffle_seed: int | None) -> tf.data.Dataset:
    """Batches of (raw feature columns, targets); targets hold the labels, the item's integer
    index and its log sampling probability among clicked rows (for the retrieval loss)."""
    cols = _columns(frame, spec.features)
    targets = {c: frame[c].to_numpy(np.float32) for c in LABELS}
    targets["item_index"] = frame["_item_index"].to_numpy(np.int64)
    targets["log_q"] = frame["_log_q"].to_numpy(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((cols, targets))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(frame), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def add_sampling_columns(frame, train_frame, items) -> None:
    """_item_index (position in the item table) and _log_q (log frequency of the item among
    the clicked training rows, the in-batch sampling probability the loss corrects for)."""
    position = {k: i for i, k in enumerate(items["item_id"])}
    frame["_item_index"] = frame["item_id"].map(position).astype(np.int64)
    clicks = train_frame.loc[train_frame["click"] == 1, "item_id"].value_counts()
    q = (clicks / max(clicks.sum(), 1)).reindex(frame["item_id"]).fillna(0).to_numpy()
    frame["_log_q"] = np.log(np.maximum(q, 1e-9)).astype(np.float32)


def make_predict(model: TwoTower):
    """A function from a batched dataset to held-out logits and labels (traced once)."""
    @tf.function(reduce_retracing=True)
    def step(cols):
        _, _, ctr, cvr = model(cols, training=False)
        return ctr, cvr

    def run(ds: tf.data.Dataset) -> dict[str, np.ndarray]:
        out = {"ctr": [], "cvr": [], "click": [], "conversion": []}
        for cols, targets in ds:
            ctr, cvr = step(cols)
            for k, v in (("ctr", ctr), ("cvr", cvr), ("click", targets["click"]), ("conversion", targets["conversion"])):
                out[k].append(v.numpy())
        return {k: np.concatenate(v) for k, v in out.items()}

    return run


def held_out_metrics(pred: dict[str, np.ndarray]) -> dict[str, float | None]:
    p_ctr = 1 / (1 + np.exp(-pred["ctr"]))
    p_cvr = 1 / (1 + np.exp(-pred["cvr"]))
    clicked = pred["click"] == 1
    return {
        "ctr_auc": auc(pred["click"], p_ctr),
        "cvr_auc": auc(pred["conversion"][clicked], p_cvr[clicked]),
        "ctcvr_auc": auc(pred["conversion"], p_ctr * p_cvr),
    }


def export_tower(tower: keras.Model, features: tuple[Feature, ...], path: Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(tower)
    signature = {f.name: tf.TensorSpec((None,), tf.float32 if f.is_numeric else tf.string, name=f.name)
                 for f in features}
    archive.add_endpoint("serve", lambda cols: tower(cols, training=False), input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def fit_all_preprocessing(ds: Dataset, train_frame) -> dict[str, dict]:
    """Preprocessing statistics from the users and items seen in the training split."""
    prep = {}
    for tower, table in (("user", ds.users), ("item", ds.items)):
        key = KEYS[tower]
        seen = table[table[key].isin(train_frame[key].unique())]
        prep.update(fit_preprocessing(ds.spec.tower(tower), seen))
    return prep


def train(data_dir: str | Path, out_root: str | Path, config: TrainConfig | None = None) -> tuple[Path, dict]:
    """Train on `data_dir`, write a new version under `out_root`; returns (path, metrics)."""
    config = config or make_config("default")
    keras.utils.set_random_seed(config.seed)
    ds = load_dataset(data_dir)
    spec = ds.spec
    log(f"data: {len(ds.users)} users, {len(ds.items)} items, {len(ds.interactions)} interactions "
        f"({int(ds.interactions['click'].sum())} clicks, {int(ds.interactions['conversion'].sum())} conversions)")
    train_rows, test_rows = split(len(ds.interactions), config.test_size, config.seed)
    train_frame, test_frame = ds.joined(train_rows), ds.joined(test_rows)
    prep = fit_all_preprocessing(ds, train_frame)

    tower_args = dict(hidden=config.hidden, output_activation=config.output_activation,
                      l2_normalize=config.l2_normalize)
    user_tower = build_tower("user_tower", spec.tower("user"), prep, **tower_args)
    item_tower = build_tower("item_tower", spec.tower("item"), prep, **tower_args)
    model = TwoTower(user_tower, item_tower, HeadsLayer(config.head_inputs, config.head_hidden))
    optimizer = keras.optimizers.Adam(config.learning_rate)

    for frame in (train_frame, test_frame):
        add_sampling_columns(frame, train_frame, ds.items)
    train_ds = _tf_dataset(train_frame, spec, config.batch_size, shuffle_seed=config.seed)
    test_ds = _tf_dataset(test_frame, spec, max(config.batch_size, 4096), shuffle_seed=None)

    @tf.function(reduce_retracing=True)
    def train_step(cols, targets):
        with tf.GradientTape() as tape:
            u, v, ctr_logit, cvr_logit = model(cols, training=True)
            click, conversion = targets["click"], targets["conversion"]
            ctr_loss, cvr_loss = losses(ctr_logit, cvr_logit, click, conversion, config.cvr_loss)
            loss = ctr_loss + cvr_loss
            retrieval_loss = tf.constant(0.0)
            if config.retrieval_weight > 0:
                retrieval_loss = in_batch_softmax_loss(u, v, targets["item_index"], targets["log_q"], click > 0,
                                                       config.temperature)
                loss += config.retrieval_weight * retrieval_loss
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return ctr_loss, cvr_loss, retrieval_loss

    predict = make_predict(model)
    history = []
    for epoch in range(1, config.epochs + 1):
        start, sums, batches = time.perf_counter(), np.zeros(3), 0
        for cols, targets in train_ds:
            sums += [float(x) for x in train_step(cols, targets)]
            batches += 1
        seconds = time.perf_counter() - start
        val = held_out_metrics(predict(test_ds))
        row = {"epoch": epoch, "ctr_loss": sums[0] / batches, "cvr_loss": sums[1] / batches,
               "retrieval_loss": sums[2] / batches, "seconds": seconds,
               "examples_per_s": len(train_frame) / seconds, **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        log(f"epoch {epoch}/{config.epochs}  ctr_loss {row['ctr_loss']:.4f}  cvr_loss {row['cvr_loss']:.4f}  "
            f"retrieval_loss {row['retrieval_loss']:.4f}  val ctr_auc {_fmt(val['ctr_auc'])}  "
            f"cvr_auc {_fmt(val['cvr_auc'])}  {row['examples_per_s']:,.0f} ex/s")
    metrics = {k: history[-1][f"val_{k}"] for k in ("ctr_auc", "cvr_auc", "ctcvr_auc")}

    version = store.new_version_name()
    root = Path(out_root)
    log(f"export: {root / version}")
    with store.staged_dir(root / version) as tmp:
        for name, tower in (("user", user_tower), ("item", item_tower)):
            export_tower(tower, spec.tower(name), tmp / f"{name}_tower")
            to_numpy_tower(tower, spec.tower(name), prep, config.l2_normalize).save(tmp / f"{name}_tower")
        model.heads.export().save(tmp)
        save_table(ds.users, spec.tower("user"), "user", tmp / "users.parquet")
        save_table(ds.items, spec.tower("item"), "item", tmp / "items.parquet")
        ds.interactions[["user_id", "item_id"]].drop_duplicates().to_parquet(tmp / "seen.parquet", index=False)
        store.write_manifest(tmp, {
            "version": version,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedding_dim": int(config.hidden[-1]),
            "features": spec.to_list(),
            "vocabulary_sizes": {k: len(v["vocabulary"]) for k, v in prep.items() if "vocabulary" in v},
            "config": asdict(config),
            "data": {"path": str(Path(data_dir).resolve()), "fingerprint": ds.fingerprint,
                     "users": len(ds.users), "items": len(ds.items), "interactions": len(ds.interactions),
                     "train_rows": len(train_rows), "test_rows": len(test_rows)},
            "metrics": metrics,
            "history": history,
        })
    return root / version, metrics


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
