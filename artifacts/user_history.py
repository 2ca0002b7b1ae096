"""User histories: the user tower's "history" column and each known user's stored history.

A tower trained with a history input (TrainConfig.history_length > 0) takes, beside the user
features, "history": (B, N) item ids as strings, oldest first, newest last, "" padding at the
front. `history_column` builds it from per-user id lists; the numpy and SavedModel towers
both read it the same way (unknown ids take the out-of-vocabulary row).

A version stores each training user's last N clicks of the training split
(user_history.parquet: user_id, item_id, timestamp, oldest first), so the service and the
evaluation score a user with the history the model would have seen, never a held-out row.
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
