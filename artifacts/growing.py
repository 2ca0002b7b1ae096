"""An array appended to in small pieces (live upserts: ten rows into a million).

Capacity doubles when full, so an append copies only the new rows, not the N before them
(np.concatenate would copy all N each time: milliseconds at 1M rows, on the serving thread).
"""

from __future__ import annotations

import numpy as np


class Growing:
    """(N, ...) rows of one dtype; `array` is a view of the first N (writes go through)."""

    def __init__(self, rows: np.ndarray):
        self._data = rows
        self._n = len(rows)

    def __len__(self) -> int:
        return self._n

    @property
    def array(self) -> np.ndarray:
        return self._data[:self._n]

    def extend(self, rows: np.ndarray) -> None:
        need = self._n + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data), 1024), *self._data.shape[1:]), self._data.dtype)
            grown[:self._n] = self._data[:self._n]
            self._data = grown
        self._data[self._n:need] = rows
        self._n = need
