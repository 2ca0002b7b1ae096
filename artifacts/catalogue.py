"""The live catalogue: item changes made after training, in a store of their own.

    ARTIFACTS/catalogue.db     SQLite, WAL mode, synchronous=FULL
      changes(seq, item_id, op, attributes, at)     the log, in the order applied
      items(item_id, status, attributes, seq)       the current state of every changed item

An item a version's catalogue holds and no change touched is available with its trained
attributes; the store holds only what changed since. Every batch is validated whole first
(`validate`), then written in one transaction (`Catalogue.apply`): all of it or nothing.
An acknowledged batch is on disk (synchronous=FULL), so it survives kill -9.

Readers (every service worker, several processes) poll `changes_since(seq)`; `stamp()` is a
cheap check that tells them whether anything was written since their last look. Several
processes on one host share the file safely (WAL). SQLite over a network filesystem is not
safe: for replicas on several hosts, give each host its own copy fed with the same change
files (`recsys catalogue apply`), or move the store to a server database.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import DataError
from recsys.artifacts.features import KEYS, Feature

DATABASE = "catalogue.db"  # in the artifact root, beside the versions: it outlives every version
OPS = ("upsert", "unavailable", "available", "delete")
STATUSES = ("available", "unavailable", "deleted")
# Largest batch per POST /admin/items: one transaction holds the writer lock for its length
# (10,000 upserts take ~0.1 s); bigger batches go through `recsys catalogue apply`.
MAX_BATCH = 10_000
MAX_ID_LENGTH = 128
MAX_VALUE_LENGTH = 128
BUSY_TIMEOUT_S = 10.0  # a writer waits this long for another writer before failing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    op TEXT NOT NULL,
    attributes TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    attributes TEXT,
    seq INTEGER NOT NULL
);
"""


_STATUS_AFTER = {"unavailable": "unavailable", "available": "available", "delete": "deleted"}


class CatalogueError(DataError):
    """A change that cannot be applied; names the entry and the field. Nothing was applied."""

    def __init__(self, where: str, field: str, message: str):
        super().__init__(f"{where}: {field}: {message}")
        self.where, self.field, self.reason = where, field, message


@dataclass(frozen=True)
class Change:
    """One validated change: `attributes` (raw values by feature name) for an upsert only."""

    item_id: str
    op: str
    attributes: dict | None = None
    seq: int = 0


def item_id_of(value, where: str) -> str:
    """An id as the data files hold it: 1 and "1" are the same id."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, float)):
        raise CatalogueError(where, "item_id", "must be a string or an integer")
    text = str(value)
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        raise CatalogueError(where, "item_id", f"must be 1-{MAX_ID_LENGTH} printable characters")
    return text


def attributes_of(row: dict, features: Sequence[Feature], where: str) -> dict:
    """The attributes of one upsert, checked against the item tower's features: every feature
    present, none unknown, each of its kind (numbers finite; ids and categories strings or
    integers, kept as strings)."""
    key = KEYS["item"]
    expected = {f.name: f for f in features if f.name != key}
    for name in row:
        if name != key and name not in expected:
            raise CatalogueError(where, str(name)[:64], f"not an item feature of this model (expected {sorted(expected)})")
    out = {}
    for name, f in expected.items():
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise CatalogueError(where, name, "missing; an upsert needs every item feature")
        if f.is_numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise CatalogueError(where, name, "must be a finite number")
            out[name] = float(value)
        else:
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # a CSV column of integers with gaps reads as floats
            if isinstance(value, bool) or not isinstance(value, (int, str)) or len(str(value)) > MAX_VALUE_LENGTH \
                    or not str(value).isprintable():
                raise CatalogueError(where, name, f"must be a string of at most {MAX_VALUE_LENGTH} printable "
                                                  "characters or an integer")
            out[name] = str(value)
    return out


def validate(rows: Iterable[tuple[str, str, object, dict | None]], features: Sequence[Feature],
             status_of) -> list[Change]:
    """Rows (where, op, item_id, attribute row) -> changes, or CatalogueError for the first bad one.

    `status_of(item_id)` is the item's status before the batch ("available", "unavailable",
    "deleted" or None for an id never seen); a change on an unknown or deleted item other than
    an upsert is refused. Later rows see the effect of earlier ones.
    """
    changes, status = [], {}
    for where, op, raw_id, row in rows:
        if op not in OPS:
            raise CatalogueError(where, "op", f"must be one of {list(OPS)} (got {str(op)[:32]!r})")
        item_id = item_id_of(raw_id, where)
        now = status[item_id] if item_id in status else status_of(item_id)
        if op == "upsert":
            changes.append(Change(item_id, op, attributes_of(row or {}, features, where)))
            status[item_id] = "available" if now in (None, "deleted") else now
            continue
        if now in (None, "deleted"):
            raise CatalogueError(where, "item_id", f"{item_id!r} is not in the catalogue")
        changes.append(Change(item_id, op))
        status[item_id] = _STATUS_AFTER[op]
    return changes


def read_changes(path: str | Path, features: Sequence[Feature]) -> list[tuple[str, str, object, dict]]:
    """A change file (CSV or Parquet: item_id, op, attribute columns) as `validate` rows, each
    named by its line ("row 2" is the first line after a CSV header)."""
    path = Path(path)
    kinds = {f.name: f for f in features}
    if path.suffix not in (".csv", ".parquet"):
        raise DataError(f"{path}: expected a .csv or .parquet file")
    try:
        if path.suffix == ".csv":
            text = {n for n, f in kinds.items() if not f.is_numeric} | {"item_id", "op"}
            frame = pd.read_csv(path, dtype={n: str for n in text}, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    for column in ("item_id", "op"):
        if column not in frame.columns:
            raise DataError(f"{path}: no column {column!r} (columns: item_id, op, item attributes)")
    unknown = [c for c in frame.columns if c not in ("item_id", "op") and c not in kinds]
    if unknown:
        raise DataError(f"{path}: column {unknown[0]!r} is not an item feature of this model "
                        f"(expected {sorted(n for n in kinds if n != 'item_id')})")
    for name, f in kinds.items():
        if f.is_numeric and name in frame.columns and not pd.api.types.is_numeric_dtype(frame[name]):
            bad = pd.to_numeric(frame[name], errors="coerce").isna() & frame[name].notna()
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise CatalogueError(f"row {line}", name, "must be a finite number")
    first = 2 if path.suffix == ".csv" else 1
    names = [c for c in frame.columns if c != "op"]
    columns = [frame[c].tolist() for c in names]
    rows = [dict(zip(names, values)) for values in zip(*columns)]
    return [(f"row {i + first}", op, row.get("item_id"), row) for i, (op, row) in enumerate(zip(frame["op"].tolist(), rows))]


class Catalogue:
    """The store at `path`; one connection per thread, so a poller and a writer can share it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        try:
            with self._db() as db:
                db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise DataError(f"{self.path}: catalogue store unusable ({e})") from None

    @classmethod
    def at_root(cls, root: str | Path) -> Catalogue:
        return cls(Path(root) / DATABASE)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # No mkdir: the store lives in an existing directory (the artifact root, or the one
            # RECSYS_CATALOGUE_DB names); a missing one means "no store here", not "make one".
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before apply() returns
            self._local.db = db
        return db

    def status(self, item_id: str) -> str | None:
        row = self._db().execute("SELECT status FROM items WHERE item_id = ?", (item_id,)).fetchone()
        return row[0] if row else None

    def statuses(self, item_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(item_ids))
        out, db = {}, self._db()
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(db.execute(f"SELECT item_id, status FROM items WHERE item_id IN ({marks})", chunk))
        return out

    def item(self, item_id: str) -> tuple[str, dict | None] | None:
        """(status, attributes of its last upsert or None) of a changed item; None if never changed."""
        row = self._db().execute("SELECT status, attributes FROM items WHERE item_id = ?", (item_id,)).fetchone()
        return (row[0], json.loads(row[1]) if row[1] else None) if row else None

    def apply(self, changes: Sequence[Change]) -> int:
        """Write validated changes in one transaction; the sequence number of the last one."""
        db, at = self._db(), time.time()
        logged = [(c.item_id, c.op, json.dumps(c.attributes) if c.attributes is not None else None, at)
                  for c in changes]
        try:
            db.execute("BEGIN IMMEDIATE")  # the writer lock: sequence numbers below are contiguous
            first = self.last_seq() + 1
            db.executemany("INSERT INTO changes (item_id, op, attributes, at) VALUES (?, ?, ?, ?)", logged)
            # Each item's state after the batch, walked in order, then one row per item.
            final = {i: [status, None] for i, status in self.statuses(c[0] for c in logged).items()}
            for n, (item_id, op, attrs, _) in enumerate(logged):
                state = final.setdefault(item_id, ["available", None])
                if op == "upsert":
                    state[0] = "available" if state[0] == "deleted" else state[0]
                    state[1] = attrs
                else:
                    state[0] = _STATUS_AFTER[op]
                state.append(first + n)
            db.executemany("INSERT INTO items (item_id, status, attributes, seq) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT(item_id) DO UPDATE SET status = excluded.status, seq = excluded.seq, "
                           "attributes = COALESCE(excluded.attributes, attributes)",
                           [(i, st[0], st[1], st[-1]) for i, st in final.items() if len(st) > 2])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self.last_seq()

    def last_seq(self) -> int:
        return self._db().execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]

    def stamp(self) -> int:
        """Changes whenever another connection committed (PRAGMA data_version): a poll that finds
        the same stamp need not query further."""
        return self._db().execute("PRAGMA data_version").fetchone()[0]

    def changes_since(self, seq: int, limit: int = 100_000) -> list[Change]:
        rows = self._db().execute("SELECT seq, item_id, op, attributes FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                                  (seq, limit)).fetchall()
        return [Change(i, op, json.loads(a) if a else None, s) for s, i, op, a in rows]

    def state(self) -> tuple[list[tuple[str, str, dict | None]], int]:
        """Every changed item (item_id, status, attributes of its last upsert) and the last seq,
        read in one snapshot: what a freshly loaded version applies before it serves."""
        db = self._db()
        db.execute("BEGIN")
        try:
            rows = db.execute("SELECT item_id, status, attributes FROM items").fetchall()
            seq = self.last_seq()
        finally:
            db.execute("COMMIT")
        return [(i, s, json.loads(a) if a else None) for i, s, a in rows], seq

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
