"""The served catalogue as the store says it is now: a version's items plus later changes.

    store changes -> embed upserts (numpy item tower) -> append index rows -> flip eligibility

An upsert is embedded from its attributes by the version's item tower (an id the model never
saw gets the tower's out-of-vocabulary id row) and appended to the index; the item's old row,
if any, becomes ineligible. `unavailable` and `delete` make the item's row ineligible,
`available` eligible again. Not thread-safe: the service applies changes on its batching
thread, between batches, because FAISS `add` must not run beside a search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from recsys.artifacts.catalogue import Change
from recsys.artifacts.feature_store import FeatureStore
from recsys.artifacts.numpy_tower import NumpyTower
from recsys.index.searcher import Searcher
from recsys.service.filters import ItemAttributes

log = logging.getLogger("recsys.service")


class LiveCatalogue:
    """Which index row serves each item, and which items are unavailable or deleted."""

    def __init__(self, searcher: Searcher, tower: NumpyTower, items: FeatureStore, attributes: ItemAttributes):
        self.searcher = searcher
        self.item_attributes = attributes  # row-aligned with the index: appended; `available` = may be served
        self.tower = tower
        self.items = items             # the version's catalogue: row i of the index is items.ids[i]
        self.moved: dict[str, int] = {}  # item -> its row, for items upserted since the version
        self.attributes: dict[str, dict] = {}  # raw attributes of upserted items
        self.unavailable: set[str] = set()
        self.deleted: set[str] = set()
        self.size = len(items)
        self.seq = 0                   # the store's last change applied here
        self.applied = {op: 0 for op in ("upsert", "unavailable", "available", "delete")}

    def row(self, item_id: str) -> int | None:
        if item_id in self.deleted:
            return None
        row = self.moved.get(item_id)
        return row if row is not None else self.items.position.get(item_id)

    def status(self, item_id: str) -> str | None:
        if self.row(item_id) is None:
            return None
        return "unavailable" if item_id in self.unavailable else "available"

    def apply(self, changes: Sequence[Change], seq: int | None = None) -> None:
        """Apply changes in order (one tower call and one index add for all upserts)."""
        upserts = [c for c in changes if c.op == "upsert" and self._embeddable(c)]
        new_rows = iter(self._add(upserts)) if upserts else iter(())
        embedded = {id(c) for c in upserts}
        for c in changes:
            old = self.row(c.item_id)
            if c.op == "upsert":
                if id(c) not in embedded:
                    continue
                row = next(new_rows)
                if old is not None:
                    self._eligible(old, False)
                elif c.item_id in self.deleted or c.item_id not in self.items.position:
                    self.size += 1
                self.deleted.discard(c.item_id)
                self.moved[c.item_id] = row
                self.attributes[c.item_id] = c.attributes
                if c.item_id in self.unavailable:
                    self._eligible(row, False)
            elif old is None:
                continue  # on an item this version does not hold (validated against another version)
            elif c.op == "unavailable":
                self.unavailable.add(c.item_id)
                self._eligible(old, False)
            elif c.op == "available":
                self.unavailable.discard(c.item_id)
                self._eligible(old, True)
            elif c.op == "delete":
                self._eligible(old, False)
                self.unavailable.discard(c.item_id)
                self.deleted.add(c.item_id)
                self.size -= 1
            self.applied[c.op] += 1
        if changes:
            self.seq = max(self.seq, seq if seq is not None else changes[-1].seq)

    def apply_state(self, state: Sequence[tuple[str, str, dict | None]], seq: int) -> None:
        """Bring a freshly loaded version to the store's current state (before it serves)."""
        changes = []
        for item_id, status, attributes in state:
            if attributes is not None:
                changes.append(Change(item_id, "upsert", attributes))
            if status != "available":
                changes.append(Change(item_id, "unavailable" if status == "unavailable" else "delete"))
        self.apply(changes, seq)
        self.seq = seq

    def _eligible(self, row: int, value: bool) -> None:
        self.item_attributes.set_available([row], value)

    def _embeddable(self, change: Change) -> bool:
        missing = [f["name"] for f in self.tower.features if f["name"] != "item_id" and f["name"] not in change.attributes]
        if missing:  # written for a model with other item features: keep the item as this version has it
            log.warning("item %r: stored attributes lack %s; served as this version holds it", change.item_id, missing)
        return not missing

    def _add(self, upserts: Sequence[Change]) -> np.ndarray:
        # One set of plain arrays (not a DataFrame: a few rows' work on the serving thread)
        # for the tower and the attribute columns alike.
        ids = np.asarray([c.item_id for c in upserts], dtype=object)
        columns = {"item_id": ids}
        for f in self.tower.features:
            name = f["name"]
            if name != "item_id":
                values = [c.attributes[name] for c in upserts]
                columns[name] = (np.asarray(values, np.float32) if f["kind"] == "numeric"
                                 else np.asarray([str(v) for v in values], dtype=object))
        rows = self.searcher.add(self.tower(columns), ids)
        if not np.array_equal(self.item_attributes.append(columns), rows):
            raise RuntimeError("item attributes and index rows diverged")
        return rows

    def raw_attributes(self, item_id: str) -> dict:
        """The item's attributes as the data files hold them."""
        if item_id in self.attributes:
            return dict(self.attributes[item_id])
        pos = self.items.position[item_id]
        return {name: (float(col[pos]) if col.dtype.kind == "f" else str(col[pos]))
                for name, col in self.items.columns.items() if name != self.items.key}
