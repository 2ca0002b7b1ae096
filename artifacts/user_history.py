"""User histories: the user tower's "history" column and each known user's stored history.

A tower trained with a history input (TrainConfig.history_length > 0) takes, beside the user
features, "history": (B, N) item ids as strings, oldest first, newest last, "" padding at the
front. `history_column` builds it from per-user id lists; the numpy and SavedModel towers
both read it the same way (unknown ids take the out-of-vocabulary row).

A version stores each user's last N clicks of the data it was trained from
(user_history.parquet: user_id, item_id, timestamp, oldest first): the history the service
starts from. An evaluation builds its own from the rows it may see (`latest_clicks` over the
training split, or over all the data when the held-out rows come after it), so a held-out
row never scores itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

COLUMN = "history"
PAD = ""


def history_column(histories: Sequence[Sequence[str]], length: int) -> np.ndarray:
    """(B, length) object array of item ids: each history's last `length` ids, right-aligned."""
    out = np.full((len(histories), max(length, 1)), PAD, dtype=object)
    for i, ids in enumerate(histories):
        tail = list(ids)[-length:] if length else []
        if tail:
            out[i, length - len(tail):] = tail
    return out


def latest_clicks(interactions: pd.DataFrame, length: int, seed: int = 0) -> pd.DataFrame:
    """Each user's last `length` clicks, oldest first: (user_id, item_id, timestamp) rows grouped
    by user. By timestamp (ties in row order); without one, a seeded random `length` of them."""
    clicks = interactions.loc[interactions["click"] == 1, [c for c in ("user_id", "item_id", "timestamp")
                                                           if c in interactions.columns]]
    if "timestamp" in clicks.columns:
        key = clicks["timestamp"].to_numpy(np.float64)
    else:
        key = np.random.default_rng(seed).permutation(len(clicks)).astype(np.float64)
        clicks = clicks.assign(timestamp=np.nan)
    users = clicks["user_id"].astype(str).to_numpy(dtype=object)
    order = np.lexsort((np.arange(len(clicks)), key, users))
    ordered = clicks.iloc[order].astype({"user_id": str, "item_id": str})
    return ordered.groupby("user_id", sort=False).tail(length)[["user_id", "item_id", "timestamp"]] \
        .reset_index(drop=True)


class StoredHistories:
    """user_id -> that user's stored history (item ids, oldest first)."""

    def __init__(self, frame: pd.DataFrame, length: int):
        self.length = length
        ids = frame["item_id"].astype(str).to_numpy(dtype=object)
        users = frame["user_id"].astype(str).to_numpy(dtype=object)
        # Rows are grouped by user, oldest first (the writer's order): slice, don't group.
        self._by_user: dict[str, list[str]] = {}
        if len(users):
            starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
            for s, e in zip(starts, np.r_[starts[1:], len(users)]):
                self._by_user[users[s]] = ids[s:e].tolist()

    def get(self, user_id: str) -> list[str]:
        return self._by_user.get(user_id, [])

    def column(self, user_ids) -> np.ndarray:
        """The "history" column (B, length) of these users' stored histories."""
        return history_column([self.get(str(u)) for u in user_ids], self.length)

    def __len__(self) -> int:
        return len(self._by_user)
