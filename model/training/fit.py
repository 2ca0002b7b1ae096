"""The fit loop: epochs of shuffled batches, held-out metrics per epoch, early stopping.

With a validation set, training stops once its log loss has not improved for `patience`
epochs, and the best epoch's weights are restored; the history keeps every epoch trained, so
the epochs after the best one stay visible (docs/QUALITY.md plots them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from recsys.artifacts.heads import sigmoid
from recsys.artifacts.metrics import ctr_cvr_aucs
from recsys.artifacts.progress import Progress
from recsys.model.training import multiworker
from recsys.model.training.config import TrainConfig
from recsys.model.training.inputs import Rows, TrainingData, drop_ids, gather, id_dropout_masks
from recsys.artifacts.errors import ConfigError
from recsys.model.training.losses import in_batch_softmax_loss, losses
from recsys.model.training.optim import SparseAdam
from recsys.model.training.two_tower import TwoTower


def make_predict(model: TwoTower, users: dict, items: dict):
    """A function from Rows to held-out logits and labels (traced once)."""
    @tf.function(reduce_retracing=True)
    def step(user, item, history):
        user_cols = gather(users, user)
        if history is not None:
            user_cols["history"] = history
        _, _, ctr, cvr = model(user_cols, gather(items, item), training=False)
        return ctr, cvr

    def run(rows: Rows) -> dict[str, np.ndarray]:
        out = {"ctr": [], "cvr": []}
        for batch in rows.batches(8192):
            ctr, cvr = step(batch["user"], batch["item"], batch.get("history"))
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


def held_out_metrics(pred: dict[str, np.ndarray]) -> dict[str, float | None]:
    """The three AUCs of `make_predict`'s logits and labels."""
    return ctr_cvr_aucs(pred["click"], pred["conversion"], sigmoid(pred["ctr"]), sigmoid(pred["cvr"]))


def make_train_step(model: TwoTower, optimizer: SparseAdam, data: TrainingData, config: TrainConfig,
                    cluster: multiworker.Cluster | None):
    """A traced function: one batch of Rows columns -> (ctr_loss, cvr_loss, retrieval_loss) after one update."""
    users, items = data.users, data.items

    def step(batch):
        click, conversion = batch["click"], batch["conversion"]
        user_cols, item_cols = gather(users, batch["user"]), gather(items, batch["item"])
        if "history" in batch:
            user_cols["history"] = batch["history"]
        if "drop_user" in batch:  # id dropout (config.id_dropout): these rows train the OOV id rows
            user_cols = drop_ids(user_cols, "user", batch["drop_user"])
            item_cols = drop_ids(item_cols, "item", batch["drop_item"])
        with tf.GradientTape() as tape:
            u, v, ctr_logit, cvr_logit = model(user_cols, item_cols, training=True)
            ctr_loss, cvr_loss = losses(ctr_logit, cvr_logit, click, conversion, config.cvr_loss)
            loss = ctr_loss + cvr_loss
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

    return train_step


def fit(model: TwoTower, optimizer: SparseAdam, data: TrainingData, config: TrainConfig,
        cluster: multiworker.Cluster | None, say: Callable[[str], None]) -> tuple[list[dict], int]:
    """Train `model` in place; returns (one row per epoch trained, the epoch whose weights the model
    holds). A row has the losses, speed, AUCs on the test split as `test_*`, and the early-stopping
    loss on the held-back training rows; the model's epoch is the last one without those rows."""
    prefix = f"worker {cluster.index}/{cluster.workers}: " if cluster is not None else ""
    train_step = make_train_step(model, optimizer, data, config, cluster)
    predict = make_predict(model, data.users, data.items)
    train_set, val_set, test_set = data.fit, data.validation, data.test
    rng = np.random.default_rng(config.seed)
    drop_rng = np.random.default_rng([config.seed, 1]) if config.id_dropout > 0 else None
    history, best = [], None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        sums, batches = np.zeros(3), 0
        with Progress(len(train_set), f"{prefix}epoch {epoch}/{config.epochs}", "ex") as bar:
            for batch in train_set.batches(config.batch_size, rng):
                if drop_rng is not None:  # before sharding: the masks are the global batch's
                    batch |= id_dropout_masks(len(batch["user"]), config.id_dropout, drop_rng)
                if cluster is not None:
                    if len(batch["user"]) < config.batch_size:
                        break  # a short last batch could leave a worker without rows: every worker skips it
                    batch = multiworker.shard(batch, cluster.index, cluster.workers)
                sums += [float(x) for x in train_step(batch)]
                batches += 1
                bar.update(len(batch["user"]) * (cluster.workers if cluster is not None else 1))
        seconds = time.perf_counter() - start
        val = held_out_metrics(predict(test_set))
        row = {"epoch": epoch, "ctr_loss": sums[0] / batches, "cvr_loss": sums[1] / batches,
               "retrieval_loss": sums[2] / batches, "seconds": seconds,
               "examples_per_s": len(train_set) / seconds, **{f"test_{k}": v for k, v in val.items()}}
        if len(val_set):
            row["early_stopping_loss"] = validation_loss(predict(val_set))
        history.append(row)
        if not np.isfinite(sums).all():  # every worker sees the same all-reduced losses, so all stop
            raise ConfigError(f"training diverged: a non-finite loss in epoch {epoch} (ctr {row['ctr_loss']}, "
                              f"cvr {row['cvr_loss']}, retrieval {row['retrieval_loss']}); no version written; "
                              "try a lower --learning-rate")
        say(f"epoch {epoch}/{config.epochs}  ctr_loss {row['ctr_loss']:.4f}  cvr_loss {row['cvr_loss']:.4f}  "
            f"retrieval_loss {row['retrieval_loss']:.4f}  test-split ctr_auc {_fmt(val['ctr_auc'])}  "
            f"cvr_auc {_fmt(val['cvr_auc'])}  {row['examples_per_s']:,.0f} ex/s"
            + (f"  held-back training rows log loss {row['early_stopping_loss']:.4f}" if len(val_set) else ""))
        if len(val_set):
            if best is None or row["early_stopping_loss"] < best[1]:
                best = (epoch, row["early_stopping_loss"], [w.numpy() for w in model.weights])
            elif epoch - best[0] >= config.patience:
                say(f"early stop: no improvement since epoch {best[0]}")
                break
    if best is not None:
        for w, value in zip(model.weights, best[2]):
            w.assign(value)
    bad = [w.path for w in model.weights if not np.isfinite(w.numpy()).all()]
    if bad:
        raise ConfigError(f"training diverged: non-finite weights in {bad[0]} ({len(bad)} variable(s)); "
                          "no version written")
    return history, best[0] if best is not None else len(history)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"
