"""service.subset_cache: least recently used out first, within the byte budget."""

from __future__ import annotations

import numpy as np

from recsys.index.prepared import Subset
from recsys.service.subset_cache import SubsetCache


def subset(rows: int) -> Subset:
    return Subset(rows, rows, rows=np.arange(rows), vectors=np.zeros((rows, 4), np.float32))


def test_the_least_recently_used_goes_first_and_the_budget_holds():
    size = subset(100).nbytes
    cache = SubsetCache(budget_bytes=4 * size)
    built = []
    for key in "abcde":                                      # first sightings: nothing built
        assert cache.get(key, lambda: built.append("too soon")) is None
    for key in "abcd":
        cache.get(key, lambda key=key: built.append(key) or subset(100))
    assert built == list("abcd") and cache.nbytes == 4 * size
    cache.get("a", lambda: built.append("a again"))          # a hit: a is now the newest
    cache.get("e", lambda: subset(100))                      # over budget: b (the oldest) goes
    assert cache.nbytes <= cache.budget and len(cache) == 4
    cache.get("b", lambda: built.append("b again") or subset(100))
    cache.get("a", lambda: built.append("a again"))
    assert built == list("abcd") + ["b again"]
    assert (cache.hits, cache.misses) == (2, 11)


def test_a_filter_too_big_for_a_quarter_of_the_budget_is_remembered_as_not_prepared():
    cache = SubsetCache(budget_bytes=subset(100).nbytes)
    for key in ("big", "small"):
        cache.get(key, lambda: subset(1))                    # seen once
    assert cache.get("big", lambda: subset(50)) is None
    assert cache.get("big", lambda: subset(1)) is None       # remembered: not built again
    assert cache.nbytes == 0
    assert cache.get("small", lambda: subset(10)) is not None
    cache.replace("small", None)
    assert cache.nbytes == 0
