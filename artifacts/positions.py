"""id -> position maps for millions of ids, at a few bytes an id.

A dict of N string keys holds an int object and a slot per key (~75 bytes an entry at 1M
ids); a pandas Index over the ids' own object array holds only its hash table (~40), and a
lookup stays a hash probe (~0.3 µs).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd


class Positions:
    """`ids` (N,) distinct -> 0..N-1, plus ids added later (`add`). Mapping-like: `get`, `in`, `[]`."""

    def __init__(self, ids: np.ndarray | Positions):
        """`ids`, or another map whose initial ids (and hash table) this one shares; ids added
        later stay each map's own."""
        self._index = ids._index if isinstance(ids, Positions) else pd.Index(ids, dtype=object, copy=False)
        self._added: dict[Hashable, int] = {}
        if len(self._index) and not isinstance(ids, Positions):
            # Build the hash table now (~0.2 s and ~33 MB per 1M ids), at load: pandas builds
            # it at the first lookup, which would stall whichever request or change comes first.
            self._index.get_loc(self._index[0])

    def __len__(self) -> int:
        return len(self._index) + len(self._added)

    def get(self, key: Hashable, default: int | None = None) -> int | None:
        try:
            return int(self._index.get_loc(key))
        except (KeyError, TypeError):
            return self._added.get(key, default)

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key) is not None

    def __getitem__(self, key: Hashable) -> int:
        pos = self.get(key)
        if pos is None:
            raise KeyError(key)
        return pos

    def add(self, key: Hashable, position: int) -> None:
        """Map a new id (one not among the initial ids) to `position`."""
        if key in self:
            raise KeyError(f"{key!r} is mapped already")
        self._added[key] = position
