"""Recurring filters' prepared subsets (index.prepared), least recently used out first,
within a byte budget: shops send the same few filters over and over (a category page, a price
band), and a prepared subset turns their search from a pass over the index into a scan of the
members near the query. Like a search engine's filter cache, an entry is the filter's
matching rows only (the service applies availability and exclusions per request), and a filter
is prepared on its second request, not its first: one-off filters are compiled and forgotten.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from recsys.index.prepared import Subset

# Filters remembered as "not worth preparing" (too few or too many rows) or as seen once cost
# a few bytes each; this bounds how many of each are kept.
MAX_ENTRIES = 4096


class SubsetCache:
    """`get(key, build)`: the subset cached under `key` (None: not worth preparing), built by
    `build()` when the key is missed a second time; `replace(key, value)` after the caller
    found it stale."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self._entries: OrderedDict[Hashable, Subset | None] = OrderedDict()
        self._seen_once: OrderedDict[Hashable, bool] = OrderedDict()  # keys missed once, oldest first
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, build: Callable[[], Subset | None]) -> Subset | None:
        """The subset under `key`; on its first miss only None (the caller compiles the filter
        for this request), on a second one `build()`: preparing costs 1-40 ms at 1M items, a
        loss for a filter that never comes back."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
            if self._seen_once.pop(key, None) is None:
                self._seen_once[key] = True
                if len(self._seen_once) > MAX_ENTRIES:
                    self._seen_once.popitem(last=False)
                return None
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
                gone, out = self._entries.popitem(last=False)
                self._bytes -= out.nbytes if out is not None else 0
                self._seen_once[gone] = True  # it did recur: prepared again on its next miss
            while len(self._seen_once) > MAX_ENTRIES:
                self._seen_once.popitem(last=False)
        return value

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
