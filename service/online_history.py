"""Each worker's online histories: users' latest clicked or converted items from the event log.

    EventLog.since(seq) --follower thread--> OnlineHistory.add(events)
    Recommender.history(query) -> stored history + OnlineHistory(user_id) + recent_items

Bounded three ways: at most `length` items per user (the newest by timestamp), events older
than `max_age` seconds dropped (on the way in and on every lookup), at most `max_users` users
(the least recently active forgotten first). Both event kinds are positive interactions; a
conversion of an item the user's online history holds already is the click it followed, not
a new item.

The follower starts with the events accepted within `max_age` (a restarted worker gets its
histories back from the log), then polls; the worker that accepted a batch pokes it, so its
own next request sees the batch.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from recsys.artifacts.events import Event, EventLog

log = logging.getLogger("recsys.service")
BATCH = 10_000  # events read per step


class OnlineHistory:
    """user_id -> that user's recent items, oldest first; thread-safe."""

    def __init__(self, length: int, max_age: float, max_users: int, clock: Callable[[], float] = time.time):
        self.length, self.max_age, self.max_users, self.clock = length, max_age, max_users, clock
        self._users: OrderedDict[str, list[tuple[float, str]]] = OrderedDict()  # least recently active first
        self._lock = threading.Lock()

    def add(self, events: Iterable[Event]) -> None:
        oldest = self.clock() - self.max_age
        with self._lock:
            for e in events:
                if e.timestamp < oldest:
                    continue
                items = self._users.get(e.user_id)
                if items is None:
                    items = self._users[e.user_id] = []
                else:
                    self._users.move_to_end(e.user_id)
                if e.event == "conversion" and any(i == e.item_id for _, i in items):
                    continue
                bisect.insort(items, (e.timestamp, e.item_id), key=lambda p: p[0])  # in time, ties in arrival order
                del items[:-self.length]
                if len(self._users) > self.max_users:
                    self._users.popitem(last=False)

    def __call__(self, user_id: str) -> list[str]:
        items = self._users.get(user_id)  # a dict read is atomic; the list is copied under the lock
        if not items:
            return []
        oldest = self.clock() - self.max_age
        with self._lock:
            return [i for t, i in items if t >= oldest]

    def __len__(self) -> int:
        return len(self._users)


class EventFollower:
    """A thread feeding `history` from `events`: catch up on the last `max_age`, then poll."""

    def __init__(self, events: EventLog, history: OnlineHistory, interval: float,
                 on_read: Callable[[int], None] | None = None):
        self.events, self.history, self.interval = events, history, interval
        self.on_read = on_read  # called with the last seq read after each step that read events
        self.seq: int | None = None  # the last event applied; None before the catch-up
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._applied = threading.Condition()
        self._stamp: int | None = None

    def start(self) -> EventFollower:
        threading.Thread(target=self._loop, name="event-follower", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wait(self, seq: int, timeout: float) -> bool:
        """Poll now and block until event `seq` is in the history; False on timeout."""
        self._wake.set()
        with self._applied:
            return self._applied.wait_for(lambda: self.seq is not None and self.seq >= seq, timeout)

    def step(self) -> bool:
        """Apply what is new; whether anything was."""
        first = self.seq is None
        if first:
            self.seq = self.events.first_seq_since(self.history.clock() - self.history.max_age)
        else:
            stamp = self.events.stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
        batch = self.events.since(self.seq, BATCH)
        if batch:
            self.history.add(batch)
        with self._applied:
            self.seq = batch[-1].seq if batch else self.seq
            self._applied.notify_all()
        if (batch or first) and self.on_read is not None:
            self.on_read(self.seq)
        if len(batch) == BATCH:
            self._stamp = None  # more to read: don't let an unchanged stamp stop the next step
        return bool(batch)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while self.step():
                    pass
            except Exception:  # a bad poll must not stop following: log it and retry
                self._stamp = None
                log.exception("reading the event log failed; retrying")
            self._wake.wait(self.interval)
            self._wake.clear()
