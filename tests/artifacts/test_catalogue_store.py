"""The catalogue store: validation, one transaction per batch, state and change log, several readers."""

from __future__ import annotations

import sqlite3

import pytest

from recsys.artifacts.catalogue import Catalogue, CatalogueError, Change, validate
from recsys.artifacts.features import Feature

FEATURES = (Feature("item_id", "item", "id"), Feature("item_category", "item", "categorical"),
            Feature("item_price", "item", "numeric"))


def rows(*entries):
    return [(f"row {i}", op, item_id, attrs) for i, (op, item_id, attrs) in enumerate(entries, 2)]


def test_validation_reads_ids_as_strings_and_later_rows_see_earlier_ones():
    changes = validate(rows(("upsert", 1, {"item_id": 1, "item_category": 7, "item_price": 3}),
                            ("unavailable", "1", None), ("delete", "1", None), ("upsert", "1", {
                                "item_id": "1", "item_category": "a", "item_price": 1.5})), FEATURES, lambda i: None)
    assert [(c.item_id, c.op) for c in changes] == [("1", "upsert"), ("1", "unavailable"), ("1", "delete"),
                                                    ("1", "upsert")]
    assert changes[0].attributes == {"item_category": "7", "item_price": 3.0}
    with pytest.raises(CatalogueError, match=r"row 3: item_id: '1' is not in the catalogue"):
        validate(rows(("delete", 1, None), ("available", 1, None)), FEATURES, lambda i: "available")
    for attrs, message in [({"item_category": "a"}, "item_price: missing"),
                           ({"item_category": "a", "item_price": float("inf")}, "item_price: must be a finite number"),
                           ({"item_category": True, "item_price": 1}, "item_category: must be a string"),
                           ({"item_category": "a", "item_price": 1, "x": 2}, "x: not an item feature")]:
        with pytest.raises(CatalogueError, match=message):
            validate(rows(("upsert", "9", attrs)), FEATURES, lambda i: None)
    with pytest.raises(CatalogueError, match="item_id: must be a string or an integer"):
        validate(rows(("delete", 1.5, None)), FEATURES, lambda i: "available")


def test_a_batch_is_one_transaction_and_readers_follow_the_log(tmp_path):
    store = Catalogue(tmp_path / "c.db")
    assert store.apply([Change("a", "upsert", {"p": 1}), Change("b", "unavailable")]) == 2
    reader = Catalogue(tmp_path / "c.db")  # another connection, as another process would hold
    assert [(c.seq, c.item_id, c.op) for c in reader.changes_since(0)] == [(1, "a", "upsert"), (2, "b", "unavailable")]
    with pytest.raises(sqlite3.Error):  # a failure inside the batch leaves nothing of it
        store.apply([Change("c", "upsert", {"p": 2}), Change(None, "delete")])
    assert reader.last_seq() == 2 and reader.item("c") is None
    store.apply([Change("a", "unavailable"), Change("a", "delete"), Change("a", "upsert", {"p": 3})])
    assert reader.item("a") == ("available", {"p": 3})
    state, seq = reader.state()
    assert seq == 5 and sorted(state) == [("a", "available", {"p": 3}), ("b", "unavailable", None)]
    assert reader.statuses(["a", "b", "zz"]) == {"a": "available", "b": "unavailable"}
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
