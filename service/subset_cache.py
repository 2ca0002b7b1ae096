"""Recurring filters' prepared subsets (index.prepared), least recently used out first,
within a byte budget: shops send the same few filters over and over (a category page, a price
band), and a prepared subset turns their search from a pass over the index into a scan of the
members near the query. Like a search engine's filter cache, an entry is the filter's
matching rows only; the service applies availability and exclusions per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from recsys.index.prepared import Subset

# Filters remembered as "not worth preparing" (too few or too many rows) cost a few bytes
# each; this bounds how many are kept.
MAX_ENTRIES = 4096


class SubsetCache:
    """`get(key, build)`: the subset cached under `key` (None: not worth preparing), built by
    `build()` on a miss; `replace(key, value)` after the caller found it stale."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self._entries: OrderedDict[Hashable, Subset | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, build: Callable[[], Subset | None]) -> Subset | None:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
        return self.replace(key, build())  # built outside the lock: a miss must not stall other lookups

    def replace(self, key: Hashable, value: Subset | None) -> Subset | None:
        """Keep `value` under `key`; what is kept (None for a filter too big to prepare)."""
        if value is not None and value.nbytes > self.budget // 4:
            value = None  # one filter may not take over the cache: it is compiled per request
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= old.nbytes if old is not None else 0
            self._entries[key] = value
            self._bytes += value.nbytes if value is not None else 0
            while self._entries and (self._bytes > self.budget or len(self._entries) > MAX_ENTRIES):
                _, out = self._entries.popitem(last=False)
                self._bytes -= out.nbytes if out is not None else 0
        return value

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
