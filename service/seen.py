"""Each training user's interacted items as index rows, for `exclude_seen`.

Stored as one array grouped by user and an offset per user (CSR): a few bytes a pair, where
a dict of per-user arrays costs ~1 KB a user in Python objects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.artifacts.positions import Positions

EMPTY = np.empty(0, np.int64)


class SeenRows:
    """`get(user_id)` -> (M,) int64 index rows that user interacted with (empty if none)."""

    def __init__(self, user_ids: pd.Series | np.ndarray, rows: np.ndarray):
        """One (user_id, row) pair per element of the two (P,) arrays (ids as strings)."""
        codes, users = pd.factorize(user_ids)
        order = np.argsort(codes, kind="stable")
        self._rows = np.asarray(rows, np.int64)[order]
        self._starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(users)))])
        self._users = Positions(np.asarray(users, dtype=object))

    def __len__(self) -> int:
        """Users with at least one row."""
        return len(self._starts) - 1

    def get(self, user_id: str) -> np.ndarray:
        u = self._users.get(user_id)
        return EMPTY if u is None else self._rows[self._starts[u]:self._starts[u + 1]]
