"""Training: fit the two towers and the CTR/CVR heads, then export a versioned artifact.

Losses (per batch of exposures, logits a = CTR, b = CVR):
    ctr     mean BCE(click, a) over all rows
    masked  mean BCE(conversion, b) over clicked rows only (the article; selection-biased)
    esmm    BCE(conversion, sigmoid(a) * sigmoid(b)) summed over all rows (pCTCVR, Ma et al.
            2018), divided by the number of clicked rows as the masked loss is
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from recsys.artifacts.tensorflow_import import import_tensorflow

import_tensorflow()  # first, so the loader's chatter is filtered
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from recsys.artifacts import store  # noqa: E402
from recsys.artifacts.errors import ConfigError  # noqa: E402
from recsys.artifacts.feature_store import save_table  # noqa: E402
from recsys.artifacts.features import KEYS, Feature  # noqa: E402
from recsys.artifacts.heads import sigmoid  # noqa: E402
from recsys.model import multiworker  # noqa: E402
from recsys.model.data import Dataset, load_dataset, split  # noqa: E402
from recsys.model.heads import HeadsLayer  # noqa: E402
from recsys.model.metrics import auc  # noqa: E402
from recsys.model.optim import SparseAdam  # noqa: E402
from recsys.model.retrieval import in_batch_softmax_loss  # noqa: E402
from recsys.model.towers import (  # noqa: E402
    build_encoder,
    build_tower,
    encode,
    fit_preprocessing,
    to_numpy_tower,
)

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
    # Share of training rows whose user and item ids are replaced by the OOV bucket: the
    # features must then carry the signal on their own, and the OOV embedding learns to
    # stand for an unknown (cold) user or item.
    id_dropout: float = 0.0
    # L2 penalty on the embedding rows a batch uses (ids overfit fast on sparse users).
    embedding_l2: float = 0.0
    # Optimizer of the embedding tables (sparse updates either way): "adam" at learning_rate,
    # or "adagrad" at embedding_learning_rate, whose steps shrink for often-seen rows
    # (model/optim.py). Dense weights always use Adam.
    embedding_optimizer: str = "adam"
    embedding_learning_rate: float = 0.2
    # Early stopping: this share of the training rows is held back; training stops when
    # their log loss (click + conversion) has not improved for `patience` epochs, and the
    # best epoch's weights are kept. 0 trains every epoch on every training row.
    validation_fraction: float = 0.0
    patience: int = 2

    def __post_init__(self):
        self.hidden, self.head_hidden = tuple(self.hidden), tuple(self.head_hidden)
        if self.cvr_loss not in CVR_LOSSES:
            raise ConfigError(f"cvr_loss must be one of {CVR_LOSSES}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.test_size < 1 or self.learning_rate <= 0:
            raise ConfigError("epochs and batch size must be >= 1, test size in (0, 1), learning rate > 0")
        if self.retrieval_weight < 0 or self.temperature <= 0 or self.embedding_l2 < 0:
            raise ConfigError("retrieval weight and embedding L2 must be >= 0, temperature > 0")
        if self.embedding_optimizer not in ("adam", "adagrad") or self.embedding_learning_rate <= 0:
            raise ConfigError("embedding optimizer must be adam or adagrad, with a learning rate > 0")
        if not 0 <= self.id_dropout < 1:
            raise ConfigError("id dropout must be in [0, 1)")
        if not 0 <= self.validation_fraction < 1 or self.patience < 1:
            raise ConfigError("validation fraction must be in [0, 1) and patience >= 1")


# `article` is the blog article's model, kept reproducible on the seed data. `default` adds
# what makes it learn to retrieve and rank: unit-norm embeddings with an in-batch softmax
# over clicks, heads that see u·v, u⊙v, u and v through a hidden layer, Adagrad for the
# embedding tables, and early stopping on held-back training rows. Its CVR loss is the
# masked one: on both benchmark data sets it beat ESMM on CVR AUC (docs/QUALITY.md
# measures both; `--cvr-loss esmm` switches).
# Softmax weight 0.6 at temperature 0.2 (rather than 0.3 at 0.1): a softer softmax weighted
# higher ranked better against the simulator's truth on three unseen data sets (live NDCG@50
# with 100 candidates: 1.68/1.88/2.09x -> 1.72/2.01/2.22x popularity) and on MovieLens (HR@50 0.193 -> 0.198).
PRESETS = {
    "article": {},
    "default": dict(epochs=20, batch_size=512, output_activation="linear", l2_normalize=True,
                    head_inputs="full", head_hidden=(32,), cvr_loss="masked", retrieval_weight=0.6,
                    temperature=0.2, validation_fraction=0.1, patience=2, embedding_optimizer="adagrad",
                    embedding_learning_rate=0.2),
}


def make_config(preset: str = "default", **overrides) -> TrainConfig:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return TrainConfig(**{**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}})


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class TwoTower(keras.Model):
    """Encoded user and item columns -> (u (B, D), v (B, D), ctr_logit (B,), cvr_logit (B,))."""

    def __init__(self, user_encoder: keras.Model, item_encoder: keras.Model, heads: HeadsLayer, **kwargs):
        super().__init__(**kwargs)
        self.user_encoder, self.item_encoder, self.heads = user_encoder, item_encoder, heads

    def call(self, user_cols, item_cols, training=False):
        u = self.user_encoder(user_cols, training=training)
        v = self.item_encoder(item_cols, training=training)
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
        per_row = -(conversion * log_p + (1.0 - conversion) * log_not_p)
        # Per click, like the masked loss: a mean over all rows would weight conversions
        # 1/CTR (~13x here) less than the masked loss does, and early stopping then keeps
        # an undertrained CVR head.
        cvr = tf.reduce_sum(per_row) / tf.maximum(tf.reduce_sum(click), 1.0)
    return ctr, cvr


class Rows:
    """Interaction rows as positions into the encoded user and item tables, plus targets.

    Features are gathered per batch from the entity tables inside the training step, so the
    input pipeline moves five numbers per row, whatever the number of features.
    """

    def __init__(self, ds: Dataset, positions: np.ndarray, log_q: np.ndarray):
        inter = ds.interactions.iloc[positions]
        self.columns = {
            "user": pd.Index(ds.users["user_id"]).get_indexer(inter["user_id"]).astype(np.int32),
            "item": pd.Index(ds.items["item_id"]).get_indexer(inter["item_id"]).astype(np.int32),
            "click": inter["click"].to_numpy(np.float32),
            "conversion": inter["conversion"].to_numpy(np.float32),
        }
        self.columns["log_q"] = log_q[self.columns["item"]]

    def __len__(self) -> int:
        return len(self.columns["user"])

    def batches(self, batch_size: int, rng: np.random.Generator | None = None):
        """Batches of numpy columns, shuffled when `rng` is given."""
        order = rng.permutation(len(self)) if rng is not None else None
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            yield {k: v[idx] for k, v in self.columns.items()}


def item_log_q(ds: Dataset, train_positions: np.ndarray) -> np.ndarray:
    """log of each item's share of the clicked training rows: its probability of being a
    candidate in an in-batch softmax over clicks (the logQ correction)."""
    inter = ds.interactions.iloc[train_positions]
    clicks = inter.loc[inter["click"] == 1, "item_id"].value_counts()
    q = (clicks / max(clicks.sum(), 1)).reindex(ds.items["item_id"]).fillna(0).to_numpy()
    return np.log(np.maximum(q, 1e-9)).astype(np.float32)


def make_predict(model: TwoTower, users: dict, items: dict):
    """A function from Rows to held-out logits and labels (traced once)."""
    @tf.function(reduce_retracing=True)
    def step(user, item):
        _, _, ctr, cvr = model(gather(users, user), gather(items, item), training=False)
        return ctr, cvr

    def run(rows: Rows) -> dict[str, np.ndarray]:
        out = {"ctr": [], "cvr": []}
        for batch in rows.batches(8192):
            ctr, cvr = step(batch["user"], batch["item"])
            out["ctr"].append(ctr.numpy())
            out["cvr"].append(cvr.numpy())
        out = {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in out.items()}
        return {**out, "click": rows.columns["click"], "conversion": rows.columns["conversion"]}

    return run


def validation_loss(pred: dict[str, np.ndarray]) -> float:
    """Mean log loss of click (p_click) plus conversion (p_click * p_conversion), all rows."""
    eps = 1e-7
    p_click = np.clip(sigmoid(pred["ctr"]), eps, 1 - eps)
    p_conv = np.clip(p_click * sigmoid(pred["cvr"]), eps, 1 - eps)
    ll = lambda y, p: -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))  # noqa: E731
    return float(ll(pred["click"], p_click) + ll(pred["conversion"], p_conv))


def embedding_penalty(model: TwoTower, user_cols: dict, item_cols: dict) -> tf.Tensor:
    """Mean squared norm of the embedding rows the batch uses (a sparse gradient, unlike a
    penalty on whole tables)."""
    total = tf.constant(0.0)
    for encoder, cols in ((model.user_encoder, user_cols), (model.item_encoder, item_cols)):
        for name, idx in cols.items():
            if idx.dtype == tf.int32:
                rows = tf.gather(encoder.get_layer(f"{name}_embedding").embeddings, idx)
                total += tf.reduce_mean(tf.reduce_sum(tf.square(rows), axis=-1))
    return total


def drop_ids(cols: dict[str, tf.Tensor], rate: float) -> dict[str, tf.Tensor]:
    """Replace the id columns (user_id, item_id) by the OOV index 0 in a random `rate` of rows."""
    out = dict(cols)
    for key in KEYS.values():
        if key in out:
            keep = tf.random.uniform(tf.shape(out[key])) >= rate
            out[key] = tf.where(keep, out[key], tf.zeros_like(out[key]))
    return out


def gather(table: dict[str, tf.Tensor], positions) -> dict[str, tf.Tensor]:
    return {k: tf.gather(v, positions) for k, v in table.items()}


def held_out_metrics(pred: dict[str, np.ndarray]) -> dict[str, float | None]:
    p_ctr, p_cvr = sigmoid(pred["ctr"]), sigmoid(pred["cvr"])
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


def fit_all_preprocessing(ds: Dataset, train_positions: np.ndarray) -> dict[str, dict]:
    """Preprocessing statistics from the users and items seen in the training split."""
    inter = ds.interactions.iloc[train_positions]
    prep = {}
    for tower, table in (("user", ds.users), ("item", ds.items)):
        key = KEYS[tower]
        seen = table[table[key].isin(inter[key].unique())]
        prep.update(fit_preprocessing(ds.spec.tower(tower), seen))
    return prep


def train(data_dir: str | Path, out_root: str | Path, config: TrainConfig | None = None,
          distributed: bool = False) -> tuple[Path | None, dict]:
    """Train on `data_dir`, write a new version under `out_root`; returns (path, metrics).

    `distributed`: one of the workers TF_CONFIG names (model/multiworker.py); only the chief
    writes the version, the others return None for the path.
    """
    config = config or make_config("default")
    cluster = multiworker.connect() if distributed else None  # first: collectives are set up at start
    prefix = f"worker {cluster.index}/{cluster.workers}: " if cluster is not None else ""

    def say(msg: str) -> None:  # each worker's lines say which worker wrote them
        log(prefix + msg)

    keras.utils.set_random_seed(config.seed)
    ds = load_dataset(data_dir)
    if cluster is not None:
        multiworker.check_same_data(cluster, ds.fingerprint)
    spec = ds.spec
    say(f"data: {len(ds.users)} users, {len(ds.items)} items, {len(ds.interactions)} interactions "
        f"({int(ds.interactions['click'].sum())} clicks, {int(ds.interactions['conversion'].sum())} conversions)")
    train_rows, test_rows = split(len(ds.interactions), config.test_size, config.seed)
    prep = fit_all_preprocessing(ds, train_rows)
    users = {k: tf.constant(v) for k, v in encode(ds.users, spec.tower("user"), prep).items()}
    items = {k: tf.constant(v) for k, v in encode(ds.items, spec.tower("item"), prep).items()}
    log_q = item_log_q(ds, train_rows)
    n_val = int(len(train_rows) * config.validation_fraction)
    fit_rows, val_rows = train_rows[n_val:], train_rows[:n_val]  # train_rows is already shuffled
    train_set, val_set, test_set = Rows(ds, fit_rows, log_q), Rows(ds, val_rows, log_q), Rows(ds, test_rows, log_q)

    encoder_args = dict(hidden=config.hidden, output_activation=config.output_activation,
                        l2_normalize=config.l2_normalize)
    model = TwoTower(build_encoder("user", spec.tower("user"), prep, **encoder_args),
                     build_encoder("item", spec.tower("item"), prep, **encoder_args),
                     HeadsLayer(config.head_inputs, config.head_hidden))
    model(gather(users, [0]), gather(items, [0]))  # build the weights
    tables = {id(w) for encoder in (model.user_encoder, model.item_encoder) for layer in encoder.layers
              if isinstance(layer, keras.layers.Embedding) for w in layer.trainable_weights}
    optimizer = SparseAdam(model.trainable_variables, config.learning_rate,
                           adagrad_lr=config.embedding_learning_rate if config.embedding_optimizer == "adagrad"
                           else None, tables=[id(w) in tables for w in model.trainable_variables])

    def step(batch):
        click, conversion = batch["click"], batch["conversion"]
        user_cols, item_cols = gather(users, batch["user"]), gather(items, batch["item"])
        if config.id_dropout > 0:
            user_cols, item_cols = drop_ids(user_cols, config.id_dropout), drop_ids(item_cols, config.id_dropout)
        with tf.GradientTape() as tape:
            u, v, ctr_logit, cvr_logit = model(user_cols, item_cols, training=True)
            ctr_loss, cvr_loss = losses(ctr_logit, cvr_logit, click, conversion, config.cvr_loss)
            loss = ctr_loss + cvr_loss
            if config.embedding_l2 > 0:
                loss += config.embedding_l2 * embedding_penalty(model, user_cols, item_cols)
            retrieval_loss = tf.constant(0.0)
            if config.retrieval_weight > 0:
                retrieval_loss = in_batch_softmax_loss(u, v, batch["item"], batch["log_q"], click > 0,
                                                       config.temperature)
                loss += config.retrieval_weight * retrieval_loss
        grads = tape.gradient(loss, model.trainable_variables)
        if cluster is not None:  # every worker applies the same averaged update
            grads = multiworker.all_reduce_mean(grads)
            ctr_loss, cvr_loss, retrieval_loss = multiworker.all_reduce_mean([ctr_loss, cvr_loss, retrieval_loss])
        optimizer.apply(grads)
        return ctr_loss, cvr_loss, retrieval_loss

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        return step(batch) if cluster is None else cluster.strategy.run(step, args=(batch,))

    predict = make_predict(model, users, items)
    rng = np.random.default_rng(config.seed)
    history, best = [], None
    for epoch in range(1, config.epochs + 1):
        start = last_report = time.perf_counter()
        sums, batches, done = np.zeros(3), 0, 0
        for batch in train_set.batches(config.batch_size, rng):
            if cluster is not None:
                if len(batch["user"]) < config.batch_size:
                    break  # a short last batch could leave a worker without rows: every worker skips it
                batch = multiworker.shard(batch, cluster.index, cluster.workers)
            sums += [float(x) for x in train_step(batch)]
            batches, done = batches + 1, done + len(batch["user"])
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                say(f"epoch {epoch}/{config.epochs}: {done:,}/{len(train_set):,} rows, "
                    f"{done / (last_report - start):,.0f} ex/s")
        seconds = time.perf_counter() - start
        val = held_out_metrics(predict(test_set))
        row = {"epoch": epoch, "ctr_loss": sums[0] / batches, "cvr_loss": sums[1] / batches,
               "retrieval_loss": sums[2] / batches, "seconds": seconds,
               "examples_per_s": len(train_set) / seconds, **{f"val_{k}": v for k, v in val.items()}}
        if len(val_set):
            row["early_stopping_loss"] = validation_loss(predict(val_set))
        history.append(row)
        say(f"epoch {epoch}/{config.epochs}  ctr_loss {row['ctr_loss']:.4f}  cvr_loss {row['cvr_loss']:.4f}  "
            f"retrieval_loss {row['retrieval_loss']:.4f}  val ctr_auc {_fmt(val['ctr_auc'])}  "
            f"cvr_auc {_fmt(val['cvr_auc'])}  {row['examples_per_s']:,.0f} ex/s"
            + (f"  early-stopping loss {row['early_stopping_loss']:.4f}" if len(val_set) else ""))
        if len(val_set):
            if best is None or row["early_stopping_loss"] < best[1]:
                best = (epoch, row["early_stopping_loss"], [w.numpy() for w in model.weights])
            elif epoch - best[0] >= config.patience:
                say(f"early stop: no improvement since epoch {best[0]}")
                break
    if best is not None:
        for w, value in zip(model.weights, best[2]):
            w.assign(value)
        history = history[:best[0]]
    metrics = {k: history[-1][f"val_{k}"] for k in ("ctr_auc", "cvr_auc", "ctcvr_auc")}
    if cluster is not None:
        say(f"weights sha256 {multiworker.fingerprint(model.weights)}")
        if not cluster.is_chief:
            return None, metrics

    version = store.new_version_name()
    root = Path(out_root)
    say(f"export: {root / version}")
    with store.staged_dir(root / version) as tmp:
        for name, encoder in (("user", model.user_encoder), ("item", model.item_encoder)):
            tower = build_tower(f"{name}_tower", spec.tower(name), prep, encoder)
            export_tower(tower, spec.tower(name), tmp / f"{name}_tower")
            to_numpy_tower(encoder, spec.tower(name), prep, config.l2_normalize).save(tmp / f"{name}_tower")
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
            "training": {"optimizer": "sparse adam", "seconds": sum(h["seconds"] for h in history)},
            "metrics": metrics,
            "history": history,
        })
    return root / version, metrics


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
