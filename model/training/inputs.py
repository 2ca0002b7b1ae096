"""The training inputs: encoded entity tables and interaction rows that point into them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf

from recsys.artifacts.features import KEYS
from recsys.artifacts.errors import ConfigError, DataError
from recsys.model.data.dataset import Dataset, split_rows
from recsys.model.training import history
from recsys.model.training.config import TrainConfig
from recsys.model.training.history import Histories
from recsys.model.training.towers import encode, fit_preprocessing


class Rows:
    """Interaction rows as positions into the encoded user and item tables, plus targets.

    Features are gathered per batch from the entity tables inside the training step, so the
    input pipeline moves five numbers per row, whatever the number of features.
    """

    def __init__(self, ds: Dataset, positions: np.ndarray, log_q: np.ndarray, histories: Histories | None = None,
                 item_codes: pd.Series | None = None):
        inter = ds.interactions.iloc[positions]
        self.histories = histories
        self.columns = {
            "user": pd.Index(ds.users["user_id"]).get_indexer(inter["user_id"]).astype(np.int32),
            "item": pd.Index(ds.items["item_id"]).get_indexer(inter["item_id"]).astype(np.int32),
            "click": inter["click"].to_numpy(np.float32),
            "conversion": inter["conversion"].to_numpy(np.float32),
        }
        self.columns["log_q"] = log_q[self.columns["item"]]
        if histories is not None:  # where each row's history window ends, and the label it must not hold
            times = inter["timestamp"].to_numpy(np.float64) if histories.timed else None
            self._hist_end = histories.ends(self.columns["user"], times)
            self._own = None if histories.timed else item_codes.reindex(inter["item_id"]).fillna(0).to_numpy(np.int32)

    def __len__(self) -> int:
        return len(self.columns["user"])

    def batches(self, batch_size: int, rng: np.random.Generator | None = None):
        """Batches of numpy columns, shuffled when `rng` is given."""
        order = rng.permutation(len(self)) if rng is not None else None
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            batch = {k: v[idx] for k, v in self.columns.items()}
            if self.histories is not None:
                batch["history"] = self.histories.window(batch["user"], self._hist_end[idx],
                                                         None if self._own is None else self._own[idx])
            yield batch


@dataclass
class TrainingData:
    """A data set split and encoded for training.

    users, items   column name -> (N_users,) / (N_items,) encoded tensor
    prep           the preprocessing statistics, fitted on the training split
    fit, validation, test   the rows trained on, held back for early stopping, and held out
    histories      the training split's clicks per user (None without a history input)
    """

    users: dict[str, tf.Tensor]
    items: dict[str, tf.Tensor]
    prep: dict[str, dict]
    train_rows: int
    test_rows: int
    fit: Rows
    validation: Rows
    test: Rows
    histories: Histories | None = None


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
    try:
        train_rows, test_rows = split_rows(ds.interactions, config.split, config.test_size, config.seed)
    except DataError as e:  # say which data set
        raise DataError(f"{ds.directory}: {e}") from None
    if len(train_rows) < 2 or len(test_rows) < 1:  # vocabularies are fitted on the training rows
        raise DataError(f"{ds.directory}: {len(ds.interactions)} interaction(s) leave {len(train_rows)} to train on "
                        f"and {len(test_rows)} to hold out; at least 2 and 1 are needed")
    prep = fit_all_preprocessing(ds, train_rows)
    users = {k: tf.constant(v) for k, v in encode(ds.users, ds.spec.tower("user"), prep).items()}
    items = {k: tf.constant(v) for k, v in encode(ds.items, ds.spec.tower("item"), prep).items()}
    log_q = item_log_q(ds, train_rows)
    n_val = int(len(train_rows) * config.validation_fraction)
    fit_rows, val_rows = train_rows[n_val:], train_rows[:n_val]  # train_rows is already shuffled
    histories, codes = None, None
    if config.history_length:
        if "item_id" not in prep:
            raise ConfigError("a history input needs an item_id feature in the item tower (features.toml)")
        codes = item_code_map(prep)
        histories = history.from_interactions(ds.interactions.iloc[train_rows], pd.Index(ds.users["user_id"]),
                                              codes, config.history_length, config.seed)
    rows = [Rows(ds, r, log_q, histories, codes) for r in (fit_rows, val_rows, test_rows)]
    return TrainingData(users, items, prep, len(train_rows), len(test_rows), *rows, histories=histories)


def item_code_map(prep: dict[str, dict]) -> pd.Series:
    """item_id -> its index in the item_id vocabulary + 1 (0 is the OOV bucket), as StringLookup maps it."""
    vocabulary = prep["item_id"]["vocabulary"]
    return pd.Series(np.arange(1, len(vocabulary) + 1, dtype=np.int32), index=vocabulary)


def gather(table: dict[str, tf.Tensor], positions) -> dict[str, tf.Tensor]:
    """The rows `positions` (B,) of every column of an encoded table."""
    return {k: tf.gather(v, positions) for k, v in table.items()}


def user_columns(data: TrainingData, positions, history=None) -> dict[str, tf.Tensor]:
    """The user encoder's inputs for `positions` (B,): the gathered feature columns, plus the
    history window (B, N) when the model has one."""
    cols = gather(data.users, positions)
    if data.histories is not None:
        cols["history"] = history
    return cols


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
