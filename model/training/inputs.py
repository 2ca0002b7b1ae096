"""The training inputs: encoded entity tables and interaction rows that point into them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf

from recsys.artifacts.features import KEYS
from recsys.artifacts.errors import DataError
from recsys.model.data.dataset import Dataset, split
from recsys.model.training.config import TrainConfig
from recsys.model.training.towers import encode, fit_preprocessing


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


@dataclass
class TrainingData:
    """A data set split and encoded for training.

    users, items   column name -> (N_users,) / (N_items,) encoded tensor
    prep           the preprocessing statistics, fitted on the training split
    fit, validation, test   the rows trained on, held back for early stopping, and held out
    """

    users: dict[str, tf.Tensor]
    items: dict[str, tf.Tensor]
    prep: dict[str, dict]
    train_rows: int
    test_rows: int
    fit: Rows
    validation: Rows
    test: Rows


def item_log_q(ds: Dataset, train_positions: np.ndarray) -> np.ndarray:
    """log of each item's share of the clicked training rows: its probability of being a
    candidate in an in-batch softmax over clicks (the logQ correction)."""
    inter = ds.interactions.iloc[train_positions]
    clicks = inter.loc[inter["click"] == 1, "item_id"].value_counts()
    q = (clicks / max(clicks.sum(), 1)).reindex(ds.items["item_id"]).fillna(0).to_numpy()
    return np.log(np.maximum(q, 1e-9)).astype(np.float32)


def fit_all_preprocessing(ds: Dataset, train_positions: np.ndarray) -> dict[str, dict]:
    """Preprocessing statistics from the users and items seen in the training split."""
    inter = ds.interactions.iloc[train_positions]
    prep = {}
    for tower, table in (("user", ds.users), ("item", ds.items)):
        key = KEYS[tower]
        seen = table[table[key].isin(inter[key].unique())]
        prep.update(fit_preprocessing(ds.spec.tower(tower), seen))
    return prep


def prepare(ds: Dataset, config: TrainConfig) -> TrainingData:
    """Split the interactions, fit the preprocessing on the training split and encode both tables."""
    train_rows, test_rows = split(len(ds.interactions), config.test_size, config.seed)
    if len(train_rows) < 2 or len(test_rows) < 1:  # vocabularies are fitted on the training rows
        raise DataError(f"{ds.directory}: {len(ds.interactions)} interaction(s) leave {len(train_rows)} to train on "
                        f"and {len(test_rows)} to hold out; at least 2 and 1 are needed")
    prep = fit_all_preprocessing(ds, train_rows)
    users = {k: tf.constant(v) for k, v in encode(ds.users, ds.spec.tower("user"), prep).items()}
    items = {k: tf.constant(v) for k, v in encode(ds.items, ds.spec.tower("item"), prep).items()}
    log_q = item_log_q(ds, train_rows)
    n_val = int(len(train_rows) * config.validation_fraction)
    fit_rows, val_rows = train_rows[n_val:], train_rows[:n_val]  # train_rows is already shuffled
    return TrainingData(users, items, prep, len(train_rows), len(test_rows),
                        Rows(ds, fit_rows, log_q), Rows(ds, val_rows, log_q), Rows(ds, test_rows, log_q))


def gather(table: dict[str, tf.Tensor], positions) -> dict[str, tf.Tensor]:
    """The rows `positions` (B,) of every column of an encoded table."""
    return {k: tf.gather(v, positions) for k, v in table.items()}


def id_dropout_masks(n: int, rate: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Batch columns saying which of `n` rows lose their user id and, independently, their item id.

    Drawn in numpy from a stream of their own, so the shuffling (and every run without id
    dropout) stays what it was, and every worker of a cluster draws the same global masks.
    """
    return {"drop_user": rng.random(n) < rate, "drop_item": rng.random(n) < rate}


def drop_ids(cols: dict[str, tf.Tensor], tower: str, drop) -> dict[str, tf.Tensor]:
    """Gathered columns of one tower with its id set to the OOV index 0 where `drop` (B,) is true:
    what `encode` gives an id the vocabulary does not hold. A tower without an id column is unchanged."""
    key = KEYS[tower]
    if key not in cols:
        return cols
    return {**cols, key: tf.where(drop, tf.zeros_like(cols[key]), cols[key])}
