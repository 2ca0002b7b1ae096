"""The event log: users' clicks and conversions since training, in a store of their own.

    ARTIFACTS/events.db     SQLite, WAL mode, synchronous=FULL
      events(seq, user_id, item_id, event, timestamp, at)    in the order accepted

Every batch is validated whole first (`validate`), then written in one transaction
(`EventLog.append`): all of it or nothing. An acknowledged batch is on disk
(synchronous=FULL), so it survives kill -9. `timestamp` is when the event happened (the
client's, else the time of acceptance), `at` when the log accepted it.

Readers (every service worker, several processes) poll `since(seq)`; `stamp()` is a cheap
check that tells them whether anything was written since their last look. Like the
catalogue store (artifacts/catalogue.py), the file is shared safely by the processes of one
host, never over a network filesystem. `recsys events export` writes the log as an
events.csv of a data directory: the next training run learns from it (docs/DATA.md).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.artifacts.errors import DataError

DATABASE = "events.db"  # in the artifact root, beside the versions: it outlives every version
EVENTS = ("click", "conversion")  # both positive interactions; a conversion implies the click
COLUMNS = ("user_id", "item_id", "event", "timestamp")  # of an exported events file
# Largest batch per POST /events: one transaction holds the writer lock for its length
# (10,000 events: ~40 ms to validate, ~55 ms to write; a batch of one ~4 ms, the fsync).
MAX_BATCH = 10_000
MAX_ID_LENGTH = 128
BUSY_TIMEOUT_S = 10.0  # a writer waits this long for another writer before failing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    timestamp REAL NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
"""


class EventError(DataError):
    """An event that cannot be logged; names the entry and the field. Nothing was logged."""

    def __init__(self, where: str, field: str, message: str):
        super().__init__(f"{where}.{field}: {message}" if field else f"{where}: {message}")
        self.where, self.field, self.reason = where, field, message


@dataclass(frozen=True)
class Event:
    user_id: str
    item_id: str
    event: str
    timestamp: float
    seq: int = 0


def _id(value, where: str, field: str) -> str:
    """An id as the data files hold it: 1 and "1" are the same id."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EventError(where, field, "must be a string or an integer")
    text = str(value)
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        raise EventError(where, field, f"must be 1-{MAX_ID_LENGTH} printable characters")
    return text


def validate(rows: Sequence[object], now: float | None = None, name: str = "events") -> list[Event]:
    """Raw events ({user_id, item_id, event, timestamp?}) -> events, or EventError for the first
    bad one, named `events[i]`. A missing timestamp is `now` (the time of acceptance)."""
    if len(rows) > MAX_BATCH:
        raise EventError(name, "", f"at most {MAX_BATCH} events per batch (got {len(rows)})")
    now = time.time() if now is None else now
    out = []
    for i, row in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(row, dict):
            raise EventError(where, "", "must be an object {user_id, item_id, event, timestamp}")
        unknown = [k for k in row if k not in COLUMNS]
        if unknown:
            raise EventError(where, str(unknown[0])[:64], f"unknown field (expected {list(COLUMNS)})")
        user_id = _id(row.get("user_id"), where, "user_id")
        item_id = _id(row.get("item_id"), where, "item_id")
        event = row.get("event")
        if event not in EVENTS:
            raise EventError(where, "event", f"must be one of {list(EVENTS)} (got {str(event)[:32]!r})")
        stamp = row.get("timestamp")
        if stamp is None:
            stamp = now
        elif isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            raise EventError(where, "timestamp", "must be a finite number (epoch seconds)")
        out.append(Event(user_id, item_id, event, float(stamp)))
    return out


class EventLog:
    """The log at `path`; one connection per thread, so a follower and writers can share it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        try:
            self._db().executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise DataError(f"{self.path}: event log unusable ({e})") from None

    @classmethod
    def at_root(cls, root: str | Path) -> EventLog:
        return cls(Path(root) / DATABASE)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # No mkdir: the log lives in an existing directory (the artifact root, or the one
            # RECSYS_EVENTS_DB names); a missing one means "no log here", not "make one".
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before append() returns
            self._local.db = db
        return db

    def append(self, events: Sequence[Event]) -> int:
        """Write validated events in one transaction; the sequence number of the last one."""
        db, at = self._db(), time.time()
        rows = [(e.user_id, e.item_id, e.event, e.timestamp, at) for e in events]
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO events (user_id, item_id, event, timestamp, at) VALUES (?, ?, ?, ?, ?)", rows)
            seq = self.last_seq()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seq

    def last_seq(self) -> int:
        return self._db().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def stamp(self) -> int:
        """Changes whenever another connection committed (PRAGMA data_version): a poll that finds
        the same stamp need not query further."""
        return self._db().execute("PRAGMA data_version").fetchone()[0]

    def first_seq_since(self, at: float) -> int:
        """The seq just before the first event accepted at or after `at` (where a follower that
        wants only recent events starts)."""
        row = self._db().execute("SELECT MIN(seq) FROM events WHERE at >= ?", (at,)).fetchone()
        return (row[0] - 1) if row[0] is not None else self.last_seq()

    def since(self, seq: int, limit: int = 10_000) -> list[Event]:
        rows = self._db().execute("SELECT user_id, item_id, event, timestamp, seq FROM events WHERE seq > ? "
                                  "ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        return [Event(*r) for r in rows]

    def export(self, out: str | Path) -> int:
        """The whole log as an events file (.csv or .parquet: user_id, item_id, event, timestamp,
        in the order accepted), written atomically; how many events."""
        out = Path(out)
        if out.suffix not in (".csv", ".parquet"):
            raise DataError(f"{out}: expected a .csv or .parquet file name (e.g. DATA/events.csv)")
        if not out.parent.is_dir():
            raise DataError(f"{out.parent}: directory not found")
        frame = pd.read_sql_query("SELECT user_id, item_id, event, timestamp FROM events ORDER BY seq", self._db(),
                                  dtype={"user_id": str, "item_id": str, "event": str, "timestamp": float})
        partial = out.with_name(f".{out.name}.partial")
        if out.suffix == ".csv":
            frame.to_csv(partial, index=False)
        else:
            frame.to_parquet(partial, index=False)
        os.replace(partial, out)  # a reader never sees half a file
        return len(frame)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
