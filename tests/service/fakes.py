"""A deliberately slow stand-in for the Recommender, injected through create_app(load=...)."""

from __future__ import annotations

import threading
import time

import numpy as np

from recsys.service.errors import UnknownUser
from recsys.service.recommender import Scored


class SlowRecommender:
    """Answers after `delay` seconds with k fixed items; counts the calls it is computing."""

    def __init__(self, version: str = "slow-1", delay: float = 0.5, items: int = 50):
        self.version = version
        self.delay = delay
        self.item_count = items
        self.computing = 0
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

    def popular(self, k: int) -> Scored:
        n = min(k, self.item_count)
        return Scored(np.array([str(i) for i in range(n)]), np.ones(n), None, None, None, fallback="popular")


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
