"""The event log: validation of a whole batch, one transaction per batch, readers following it, export."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from recsys.artifacts.errors import DataError
from recsys.artifacts.events import MAX_BATCH, Event, EventError, EventLog, validate


def test_validation_reads_ids_as_strings_and_names_the_first_bad_event():
    events = validate([{"user_id": 1, "item_id": "a", "event": "click", "timestamp": 5},
                       {"user_id": "1", "item_id": 2, "event": "conversion"}], now=100.0)
    assert events == [Event("1", "a", "click", 5.0), Event("1", "2", "conversion", 100.0)]
    good = {"user_id": "u", "item_id": "i", "event": "click"}
    for bad, message in [({**good, "event": "view"}, r"events\[2\]\.event: must be one of \['click', 'conversion'\]"),
                         ({**good, "user_id": True}, r"events\[2\]\.user_id: must be a string or an integer"),
                         ({**good, "item_id": "x" * 129}, r"events\[2\]\.item_id: must be 1-128"),
                         ({**good, "item_id": "a\nb"}, r"events\[2\]\.item_id: must be 1-128 printable"),
                         ({**good, "timestamp": float("nan")}, r"events\[2\]\.timestamp: must be a finite number"),
                         ({**good, "timestamp": "1"}, r"events\[2\]\.timestamp"),
                         ({**good, "extra": 1}, r"events\[2\]\.extra: unknown field"),
                         (["u", "i", "click"], r"events\[2\]: must be an object")]:
        with pytest.raises(EventError, match=message):
            validate([good, good, bad])
    with pytest.raises(EventError, match=f"at most {MAX_BATCH} events"):
        validate([good] * (MAX_BATCH + 1))


def test_a_batch_is_one_transaction_and_readers_follow_the_log(tmp_path):
    log = EventLog(tmp_path / "e.db")
    reader = EventLog(tmp_path / "e.db")  # another connection, as another process would hold
    stamp = reader.stamp()
    assert log.append(validate([{"user_id": "u", "item_id": "a", "event": "click"}] * 2)) == 2
    assert reader.stamp() != stamp
    assert [(e.seq, e.item_id) for e in reader.since(0)] == [(1, "a"), (2, "a")]
    with pytest.raises(sqlite3.Error):  # a failure inside the batch leaves nothing of it
        log.append([Event("u", "b", "click", 1.0), Event("u", None, "click", 1.0)])
    assert reader.last_seq() == 2 and reader.since(2) == []
    assert reader.first_seq_since(0) == 0 and reader.first_seq_since(1e12) == 2


def test_export_writes_the_log_as_an_events_file(tmp_path):
    log = EventLog(tmp_path / "e.db")
    log.append(validate([{"user_id": 7, "item_id": "007", "event": "conversion", "timestamp": 1.5}]))
    assert log.export(tmp_path / "events.csv") == 1
    frame = pd.read_csv(tmp_path / "events.csv", dtype={"user_id": str, "item_id": str})
    assert frame.to_dict("records") == [{"user_id": "7", "item_id": "007", "event": "conversion", "timestamp": 1.5}]
    assert log.export(tmp_path / "events.parquet") == 1
    assert pd.read_parquet(tmp_path / "events.parquet")["item_id"].tolist() == ["007"]
    for bad in (tmp_path / "events.txt", tmp_path / "missing" / "events.csv"):
        with pytest.raises(DataError):
            log.export(bad)


def test_a_log_in_a_missing_directory_is_an_error_not_created(tmp_path):
    with pytest.raises(DataError, match="event log unusable"):
        EventLog(tmp_path / "missing" / "e.db")
    assert not (tmp_path / "missing").exists()
