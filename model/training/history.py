"""User histories for training: each row's most recent positives, never the row's own label.

    positives   the training split's clicks, per user, by time (or in a seeded random order
                when the data has no timestamp), as item codes (the item_id vocabulary index)
    window      for a row: the user's last N positives strictly before the row's time; without
                timestamps, N of the user's training clicks other than the row's own item

A batch's history is a (B, N) int32 gather from one CSR array, -1 padding at the front
(oldest first, newest last, the order the service sends them in).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAD = -1


class Histories:
    """The training split's positives per user, in the order histories take them.

    offsets  (n_users + 1,) int64  user u's positives are items[offsets[u]:offsets[u + 1]]
    items    (P,) int32            item codes (vocabulary index; 0 = out of vocabulary)
    times    (P,) float64          their timestamps (NaN without a timestamp column)
    """

    def __init__(self, user_pos: np.ndarray, item_codes: np.ndarray, times: np.ndarray | None,
                 n_users: int, length: int, seed: int):
        self.length = length
        self.timed = times is not None
        if times is None:  # no time: a fixed random order, so a user's "last N" is a random N of them
            key = np.random.default_rng([seed, 2]).permutation(len(user_pos)).astype(np.float64)
        else:
            key = np.asarray(times, np.float64)
        order = np.lexsort((np.arange(len(user_pos)), key, user_pos))
        self.items = np.asarray(item_codes, np.int32)[order]
        self.times = key[order] if self.timed else np.full(len(order), np.nan)
        self.users = np.asarray(user_pos, np.int64)[order]
        self.offsets = np.zeros(n_users + 1, np.int64)
        np.cumsum(np.bincount(self.users, minlength=n_users), out=self.offsets[1:])

    def ends(self, user_pos: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """(R,) int64: for each row, the end of its window in `items` (exclusive): after the
        user's last positive strictly before the row's time, or after all of them without time."""
        user_pos = np.asarray(user_pos, np.int64)
        if not self.timed or times is None:
            return self.offsets[user_pos + 1]
        # Positions are sorted by (user, time): search the composite integer key (user, time rank),
        # exact for any timestamps (a float key user * span + time would round epoch seconds).
        row_times = np.asarray(times, np.float64)
        _, ranks = np.unique(np.concatenate([self.times, row_times]), return_inverse=True)
        width = np.int64(ranks.max() + 1 if len(ranks) else 1)
        keys = self.users * width + ranks[:len(self.times)]
        return np.searchsorted(keys, user_pos * width + ranks[len(self.times):], side="left")

    def window(self, user_pos: np.ndarray, ends: np.ndarray, own_items: np.ndarray | None) -> np.ndarray:
        """(B, N) int32 item codes, PAD where the user has fewer positives; `own_items` (B,)
        are masked out of each row's window (a row without timestamps must not see its label)."""
        n = self.length
        starts = self.offsets[np.asarray(user_pos, np.int64)]
        pos = np.asarray(ends, np.int64)[:, None] - n + np.arange(n)[None, :]
        valid = pos >= starts[:, None]
        out = np.where(valid, self.items[np.clip(pos, 0, max(len(self.items) - 1, 0))] if len(self.items)
                       else PAD, PAD).astype(np.int32)
        if own_items is not None:
            out[out == np.asarray(own_items, np.int32)[:, None]] = PAD
        return _pad_front(out)


def _pad_front(x: np.ndarray) -> np.ndarray:
    """Move each row's PAD entries to the front, keeping the others' order (oldest first)."""
    order = np.argsort(x != PAD, axis=1, kind="stable")
    return np.take_along_axis(x, order, axis=1)


def from_interactions(inter: pd.DataFrame, user_index: pd.Index, item_codes: pd.Series, length: int,
                      seed: int) -> Histories:
    """Histories of the clicks among `inter` (the training split's rows).

    user_index  the user table's ids (positions are rows of it); item_codes: item_id -> code.
    """
    clicks = inter[inter["click"] == 1]
    times = clicks["timestamp"].to_numpy(np.float64) if "timestamp" in clicks.columns else None
    return Histories(user_index.get_indexer(clicks["user_id"]), item_codes.reindex(clicks["item_id"]).fillna(0)
                     .to_numpy(np.int32), times, len(user_index), length, seed)
