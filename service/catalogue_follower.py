"""Every worker follows the catalogue store: a small thread polls it and applies new changes.

    poll max(seq) every `interval` -> changes_since(applied) -> run on the batching thread

A poll that finds nothing new costs one primary-key lookup. Changes are applied to the
recommender being served, on the batching thread between two batches (FAISS `add` must not
run beside a search), so no request sees half a change and none waits for more than one
application. A reload brings its new recommender to the store's state before it serves
(state.load_recommender); the follower then continues from that recommender's own position.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from recsys.artifacts.catalogue import Catalogue

log = logging.getLogger("recsys.service")
BATCH = 10_000  # changes applied per step: bounds how long one step holds the batching thread


class Follower:
    def __init__(self, store: Catalogue, current: Callable[[], object], run: Callable[[Callable[[], None]], None],
                 interval: float, on_applied: Callable[[object, list], None] | None = None):
        self.store = store
        self.current = current        # -> the recommender served now (or None)
        self.run = run                # runs a function on the batching thread and waits
        self.interval = interval
        self.on_applied = on_applied
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._applied = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> Follower:
        self._thread = threading.Thread(target=self._loop, name="catalogue-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poke(self) -> None:
        """Poll now (after a write by this worker)."""
        self._wake.set()

    def wait(self, seq: int, timeout: float) -> bool:
        """Block until the served recommender has applied change `seq`; False on timeout."""
        def reached():
            rec = self.current()
            return rec is not None and rec.catalogue.seq >= seq
        self.poke()
        with self._applied:
            return self._applied.wait_for(reached, timeout)

    def step(self) -> bool:
        """Apply what is new; whether anything was."""
        rec = self.current()
        if rec is None or self.store.last_seq() <= rec.catalogue.seq:
            return False
        changes = self.store.changes_since(rec.catalogue.seq, BATCH)
        self.run(lambda: rec.catalogue.apply(changes))
        if self.on_applied is not None:
            self.on_applied(rec, changes)
        with self._applied:
            self._applied.notify_all()
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while self.step():
                    pass
            except Exception:  # a bad poll must not stop following: log it and retry
                log.exception("applying catalogue changes failed; retrying")
            self._wake.wait(self.interval)
            self._wake.clear()
