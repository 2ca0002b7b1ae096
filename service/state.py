"""The one reference to the served model, and how it is loaded and swapped.

A load (at start, on POST /admin/reload, on SIGHUP) builds a fresh Recommender from the
version to serve, opened afresh: every checksum verified, model and index checked to belong
together, a smoke query run. The first load takes the version `recsys serve` opened before
the port opened instead (`State.opened`), so start-up verifies it once. Only then is the reference swapped, in one assignment; requests already
holding the old object finish with it. A failed load leaves the old version serving and
records why. Loads are serialised by a lock.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

from recsys.artifacts.catalogue import Catalogue
from recsys.artifacts.errors import DataError
from recsys.artifacts.events import EventLog
from recsys.artifacts.version import Version
from recsys.service.errors import ReloadFailed, ReloadInProgress
from recsys.artifacts.host import release_free_memory
from recsys.service.observability import Metrics
from recsys.service.recommender import Recommender
from recsys.service.settings import Settings

log = logging.getLogger("recsys.service")


def load_recommender(settings: Settings, version: Version | None = None) -> Recommender:
    """A recommender over `version`, else over the version to serve opened now; raises on
    anything wrong with it."""
    version = version or Version.open(settings.artifacts, settings.version, need_index=True)
    rec = Recommender(version, settings)
    store = open_catalogue(settings)
    if store is not None:  # the catalogue as it is now, not as the training data had it
        rec.catalogue.apply_state(*store.state())
        store.close()
    rec.smoke_test()
    return rec


def open_catalogue(settings: Settings) -> Catalogue | None:
    """The catalogue store, or None when there is none and none can be created (a read-only
    artifact root without RECSYS_CATALOGUE_DB): the versions then serve as trained."""
    path = settings.catalogue_path
    try:
        return Catalogue(path)
    except DataError as e:
        if path.exists():
            raise
        log.warning("no catalogue store (%s): serving the catalogue as trained; POST /admin/items is off", e)
        return None


def open_events(settings: Settings) -> EventLog | None:
    """The event log, or None when there is none and none can be created (a read-only artifact
    root without RECSYS_EVENTS_DB): users' histories are then the stored ones and POST /events
    answers 503."""
    path = settings.events_path
    try:
        return EventLog(path)
    except DataError as e:
        if path.exists():
            raise
        log.warning("no event log (%s): online histories stay empty; POST /events is off", e)
        return None


Loader = Callable[[Settings, Version | None], Recommender]


class State:
    def __init__(self, settings: Settings, load: Loader = load_recommender, metrics: Metrics | None = None):
        self.settings = settings
        self._load = load
        self.metrics = metrics or Metrics()
        self.recommender: Recommender | None = None
        self.opened: Version | None = None  # opened and checked already: the next load uses it once
        self.error: str | None = None      # why the last load failed (None after a success)
        self.draining = False              # set on SIGTERM / shutdown: /readyz answers 503
        self.on_fatal: Callable[[str], None] | None = None  # called when the first load fails
        self.after_admin_reload: Callable[[], None] | None = None  # a worker tells its supervisor
        self.on_first_load: Callable[[Recommender], None] | None = None  # says where the service listens
        # user_id -> the items of the user's logged events (this worker's OnlineHistory): every
        # recommender loaded here gets it, at start and on each reload.
        self.online_history: Callable[[str], list[str]] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """The first load (in a background thread); a failure is fatal when `on_fatal` is set."""
        try:
            self.reload()
        except ReloadFailed:
            if self.on_fatal is not None:
                self.on_fatal(self.error)

    def reload(self, wait: bool = True) -> dict:
        """Load the version to serve into a fresh object and swap it in; ReloadFailed if it won't
        load; with `wait` False, ReloadInProgress if another load is running."""
        if not self._lock.acquire(blocking=wait):
            raise ReloadInProgress("reload in progress; retry once it has finished")
        try:
            return self._reload()
        finally:
            self._lock.release()

    def _reload(self) -> dict:
        """The load and the swap, under the lock."""
        old = self.recommender
        version, self.opened = self.opened, None
        try:
            rec = self._load(self.settings, version)
        except Exception as e:  # noqa: BLE001 - any failure leaves the old version serving
            self.error = str(e) if str(e) else type(e).__name__
            self.metrics.reloads.labels(outcome="failed").inc()
            still = f"still serving {old.version}" if old is not None else "nothing is served"
            log.error("model load failed, %s: %s", still, self.error)
            raise ReloadFailed(f"reload refused, {still}: {self.error}") from None
        if self.online_history is not None:
            rec.online_history = self.online_history
        self.recommender = rec  # the swap
        if old is not None:
            old.release()  # its files may now be pruned; it answers from memory
        # The model's long-lived objects (hundreds of thousands at 1M items) would otherwise
        # be traversed by every full garbage collection: a pause of tens of ms in the middle
        # of requests (the load benchmark's p99 at 32 connections halved with this). Frozen
        # objects are skipped; unfreezing first lets this collection free what a previous
        # model left in reference cycles.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        release_free_memory()
        self.error = None
        self.metrics.reloads.labels(outcome="loaded").inc()
        self.metrics.serving(rec.version)
        self.metrics.catalogue(rec.item_count, len(rec.catalogue.unavailable))
        log.info("serving model version %s (%d items)%s", rec.version, rec.item_count,
                 f", was {old.version}" if old is not None else "")
        if old is None and self.on_first_load is not None:
            self.on_first_load(rec)
        return {"status": "reloaded", "model_version": rec.version,
                "previous_version": old.version if old is not None else None}

    def reload_in_background(self) -> None:
        """For SIGHUP: reload without blocking the signal handler; the outcome goes to the log."""
        def run():
            try:
                self.reload()
            except ReloadFailed:
                pass  # logged by reload()

        threading.Thread(target=run, name="model-reload", daemon=True).start()
