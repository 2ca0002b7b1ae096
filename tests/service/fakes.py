"""Stand-ins for the Recommender, injected through create_app(load=...): a slow one, one that
computes only when a test opens its gate, and one that fails."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np

from recsys.service.domain import UnknownUser
from recsys.service.recommender import Scored
from recsys.service.subset_cache import SubsetCache


class SlowRecommender:
    """Answers after `delay` seconds with k fixed items; counts the calls it is computing."""

    def __init__(self, version: str = "slow-1", delay: float = 0.5, items: int = 50):
        self.version = version
        self.delay = delay
        self.item_count = items
        self.computing = 0
        self.catalogue = SimpleNamespace(seq=0, unavailable=())  # the live catalogue, never changed here
        self.subsets = SubsetCache(0)  # the filter cache /metrics reads; these never filter
        self._lock = threading.Lock()

    def recommend(self, user_id, k, objective=None, exclude_seen=False, user_features=None) -> Scored:
        if user_id == "nobody":
            raise UnknownUser("unknown user_id 'nobody'")
        with self._lock:
            self.computing += 1
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.computing -= 1
        k = min(k, self.item_count)
        score = np.linspace(1, 0, k)
        return Scored(np.array([str(i) for i in range(k)]), score, score, score, score, overfetched=3)

    def recommend_batch(self, queries) -> list:
        """Like the real one: one computation (one `delay`) for the whole batch."""
        with self._lock:
            self.computing += len(queries)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.computing -= len(queries)
        out = []
        for q in queries:
            if q.user_id == "nobody":
                out.append(UnknownUser("unknown user_id 'nobody'"))
                continue
            k = min(q.k, self.item_count)
            score = np.linspace(1, 0, k)
            out.append(Scored(np.array([str(i) for i in range(k)]), score, score, score, score, overfetched=3))
        return out

    def release(self) -> None:
        """Like the real one after a swap; there are no files to let go of."""

    def popular(self, k: int) -> Scored:
        n = min(k, self.item_count)
        return Scored(np.array([str(i) for i in range(n)]), np.ones(n), None, None, None, fallback="popular")


class GatedRecommender(SlowRecommender):
    """Every batch waits for `gate` to open: a test, not a clock, decides when work finishes.
    `batches` holds the size of each batch it entered."""

    def __init__(self, version: str = "gated-1", items: int = 50):
        super().__init__(version, delay=0.0, items=items)
        self.gate = threading.Event()
        self.batches: list[int] = []

    def recommend_batch(self, queries) -> list:
        with self._lock:
            self.computing += len(queries)
            self.batches.append(len(queries))
        try:
            if not self.gate.wait(60):  # a failsafe against a hung test, never reached when it passes
                raise RuntimeError("the test never opened the gate")
        finally:
            with self._lock:
                self.computing -= len(queries)
        return super().recommend_batch(queries)


class Fatal(BaseException):
    """Not an Exception: nothing in the service catches it, so it kills the batching thread."""


class FailingRecommender(SlowRecommender):
    """recommend_batch raises `error` (a bug, or something fatal to the thread running it)."""

    def __init__(self, error: BaseException, version: str = "failing-1"):
        super().__init__(version, delay=0.0)
        self.error = error

    def recommend_batch(self, queries) -> list:
        raise self.error


def loader(*recommenders):
    """A load(settings, version) function handing out `recommenders` in turn (an Exception is raised)."""
    queue = list(recommenders)

    def load(_settings, _version=None):
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return load


if __name__ == "__main__":
    # A `recsys serve` whose model is the slow fake: the shutdown test runs this as a process.
    import sys

    from recsys.service.server import serve
    from recsys.service.settings import Settings

    delay = float(sys.argv[1])
    serve(Settings(), load=loader(SlowRecommender(delay=delay)))
