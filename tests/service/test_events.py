"""POST /events against a served history model: the token, all or nothing, a click changing
the user's next list in every worker, a logged batch surviving kill -9, and the log trained on."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

import httpx
import pandas as pd
import pytest

from tests.conftest import recsys
from tests.service.servers import TOKEN, start_serve, wait_until

EVENTS_TOKEN = "test-events-token-0123456789"
AUTH = {"Authorization": f"Bearer {EVENTS_TOKEN}"}


def logged(db) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT user_id, item_id, event FROM events ORDER BY seq").fetchall()


def listed(client: httpx.Client, user: str) -> list[tuple[str, float]]:
    r = client.post("/recommend", json={"user_id": user, "k": 20})
    assert r.status_code == 200, r.text
    return [(i["item_id"], i["score"]) for i in r.json()["items"]]


def clicks(user: str, items) -> dict:
    return {"events": [{"user_id": user, "item_id": i, "event": "click"} for i in items]}


@pytest.fixture(scope="module")
def served(history_root, tmp_path_factory):
    """(client, events db) of a server of the history model with the events token set."""
    db = tmp_path_factory.mktemp("events") / "events.db"
    server = start_serve(history_root, RECSYS_EVENTS_TOKEN=EVENTS_TOKEN, RECSYS_EVENTS_DB=str(db))
    server.wait_ready()
    with httpx.Client(base_url=server.base, timeout=10) as client:
        yield client, db
    server.kill()


def test_events_are_off_without_a_token_and_refused_with_a_wrong_one(server, served):
    r = server.post("/events", json=clicks("1", ["1"]))  # the default server: no RECSYS_EVENTS_TOKEN
    assert r.status_code == 404 and "RECSYS_EVENTS_TOKEN" in r.json()["message"]
    client, db = served
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Bearer {TOKEN}"}):
        r = client.post("/events", json=clicks("1", ["1"]), headers=headers)
        assert r.status_code == 401 and "RECSYS_EVENTS_TOKEN" in r.json()["message"], r.text
    assert logged(db) == []


@pytest.mark.parametrize("bad, where", [
    ({"user_id": "u", "item_id": "1", "event": "view"}, "events[3].event"),
    ({"user_id": "", "item_id": "1", "event": "click"}, "events[3].user_id"),
    ({"user_id": "u", "item_id": 1.5, "event": "click"}, "events[3].item_id"),
    ({"user_id": "u", "item_id": "x" * 129, "event": "click"}, "events[3].item_id"),
    ({"user_id": "u", "item_id": "1", "event": "click", "timestamp": "today"}, "events[3].timestamp"),
    ({"user_id": "u", "item_id": "1", "event": "click", "timestamp": 1e400}, "events[3].timestamp"),
    ({"user_id": "u", "item_id": "1", "event": "click", "price": 3}, "events[3].price"),
    ({"user_id": "u", "item_id": "1"}, "events[3].event"),
    ("click", "events[3]"),
])
def test_a_batch_with_one_bad_event_is_refused_whole_naming_it(served, bad, where):
    client, db = served
    body = clicks("all-or-nothing", ["1", "2", "3"])
    body["events"].append(bad)
    # 1e400: valid JSON that parses to infinity
    r = client.post("/events", content=json.dumps(body).replace("Infinity", "1e400"),
                    headers=AUTH | {"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(f"{where}: "), r.json()
    assert not [e for e in logged(db) if e[0] == "all-or-nothing"]


def test_batches_beyond_the_maximum_are_refused(served):
    client, db = served
    r = client.post("/events", json=clicks("too-many", ["1"] * 10_001), headers=AUTH)
    assert r.status_code == 422 and "at most 10000 events" in r.json()["message"], r.text
    assert not [e for e in logged(db) if e[0] == "too-many"]


def test_a_click_changes_the_users_next_list_and_the_metrics_count_it(served):
    client, db = served
    user = client.get("/model").json()["sample_users"][1]
    before = listed(client, user)
    assert listed(client, user) == before  # nothing else changes it
    r = client.post("/events", json={"events": [{"user_id": user, "item_id": 7, "event": "click"},
                                                {"user_id": int(user), "item_id": "8", "event": "conversion",
                                                 "timestamp": time.time() - 5}]}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"accepted": 2}, r.text
    after = listed(client, user)  # the worker that logged the events answers once it holds them
    assert after != before
    assert [e for e in logged(db) if e[0] == user] == [(user, "7", "click"), (user, "8", "conversion")]
    metrics = client.get("/metrics").text
    assert "recsys_events_accepted_total 2.0" in metrics and "recsys_events_last_seq 2.0" in metrics


def test_a_new_user_known_only_by_events_is_served(served):
    client, _ = served
    assert client.post("/recommend", json={"user_id": "only-events", "k": 5}).status_code == 404
    assert client.post("/events", json=clicks("only-events", ["3", "4"]), headers=AUTH).status_code == 200
    r = client.post("/recommend", json={"user_id": "only-events", "k": 5})
    assert r.status_code == 200 and len(r.json()["items"]) == 5 and "fallback" not in r.json()


def test_events_older_than_the_online_history_keeps_are_logged_but_not_used(served):
    client, db = served
    user = client.get("/model").json()["sample_users"][2]
    before = listed(client, user)
    old = time.time() - 2 * 86_400  # beyond the default max age of one day
    r = client.post("/events", json={"events": [{"user_id": user, "item_id": i, "event": "click", "timestamp": old}
                                                for i in ("11", "12", "13")]}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"accepted": 3}
    assert len([e for e in logged(db) if e[0] == user]) == 3
    assert listed(client, user) == before


@pytest.mark.slow  # two server processes, one after the other
def test_an_acknowledged_batch_survives_kill_9_and_rebuilds_the_history(history_root, tmp_path):
    db = tmp_path / "events.db"
    server = start_serve(history_root, RECSYS_EVENTS_TOKEN=EVENTS_TOKEN, RECSYS_EVENTS_DB=str(db))
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=10) as client:
            user = client.get("/model").json()["sample_users"][3]
            before = listed(client, user)
            body = clicks(user, ["21", "22", "23"])
            body["events"].append({"user_id": "new-before-the-kill", "item_id": "24", "event": "conversion"})
            r = client.post("/events", json=body, headers=AUTH)
            server.proc.kill()  # SIGKILL right after the answer
            assert r.status_code == 200 and r.json() == {"accepted": 4}
    finally:
        server.kill()
    assert logged(db) == [(user, i, "click") for i in ("21", "22", "23")] + [("new-before-the-kill", "24",
                                                                             "conversion")]
    again = start_serve(history_root, RECSYS_EVENTS_TOKEN=EVENTS_TOKEN, RECSYS_EVENTS_DB=str(db))
    try:
        again.wait_ready()
        with httpx.Client(base_url=again.base, timeout=10) as client:
            # The restarted worker reads the last day's events before it serves them.
            wait_until(lambda: listed(client, user) != before, timeout=5)
            r = client.post("/recommend", json={"user_id": "new-before-the-kill", "k": 5})
            assert r.status_code == 200 and "fallback" not in r.json(), r.text
    finally:
        again.kill()


@pytest.mark.slow  # multi-process: two server workers
def test_every_worker_serves_an_event_within_a_second(history_root, tmp_path):
    db = tmp_path / "events.db"
    server = start_serve(history_root, "--workers", "2", RECSYS_EVENTS_TOKEN=EVENTS_TOKEN, RECSYS_EVENTS_DB=str(db),
                         RECSYS_LOG_LEVEL="info", RECSYS_LOG_FORMAT="text")
    try:
        server.wait_ready()
        wait_until(lambda: server.output().count("serving model version") == 2, timeout=60)  # both loaded

        def fresh(method, path, **kw):  # a connection of its own: the kernel spreads them over the workers
            with httpx.Client(base_url=server.base, timeout=10) as c:
                return getattr(c, method)(path, **kw)

        user = fresh("get", "/model").json()["sample_users"][4]
        body = {"user_id": user, "k": 20}
        before = {tuple(i["item_id"] for i in fresh("post", "/recommend", json=body).json()["items"])
                  for _ in range(10)}
        assert len(before) == 1  # both workers agree
        assert fresh("post", "/events", json=clicks(user, ["31", "32", "33"]), headers=AUTH).status_code == 200
        time.sleep(1.0)
        after = [tuple(i["item_id"] for i in fresh("post", "/recommend", json=body).json()["items"])
                 for _ in range(30)]
        assert not before & set(after), "a worker still served the list from before the events"
        assert len(set(after)) == 1
    finally:
        server.kill()


@pytest.mark.slow  # trains a model
def test_the_log_exports_into_a_data_set_that_trains(history_root, tmp_path):
    db = tmp_path / "log" / "events.db"
    db.parent.mkdir()
    server = start_serve(history_root, RECSYS_EVENTS_TOKEN=EVENTS_TOKEN, RECSYS_EVENTS_DB=str(db))
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=10) as client:
            user = client.get("/model").json()["sample_users"][0]
            events = [{"user_id": user, "item_id": "5", "event": "click"},
                      {"user_id": user, "item_id": "5", "event": "conversion"},
                      {"user_id": user, "item_id": "6", "event": "conversion"},
                      {"user_id": "not-a-user", "item_id": "5", "event": "click"},
                      {"user_id": user, "item_id": "not-an-item", "event": "click"}]
            assert client.post("/events", json={"events": events}, headers=AUTH).json() == {"accepted": 5}
    finally:
        server.kill()
    data = tmp_path / "data"
    shutil.copytree(history_root.parent / "data", data)
    out = recsys("events", "export", "--artifacts", str(history_root), "--events-db", str(db),
                 "--out", str(data / "events.csv"))
    assert '"exported": 5' in out.stdout
    exported = pd.read_csv(data / "events.csv", dtype=str)
    assert list(exported.columns) == ["user_id", "item_id", "event", "timestamp"] and len(exported) == 5
    trained = recsys("train", "--data", str(data), "--out", str(tmp_path / "artifacts"), "--epochs", "1",
                     "--history-length", "5")
    # Click + conversion of item 5 are one interaction, the lone conversion of 6 another.
    assert ("events.csv: 5 events -> 2 positive interactions; dropped 1 of unknown users, 1 of unknown items"
            in trained.stderr), trained.stderr
    # Bad input: one line, exit 2.
    for args in (["--artifacts", str(tmp_path / "nowhere"), "--out", str(data / "events.csv")],
                 ["--artifacts", str(history_root), "--events-db", str(db), "--out", str(data / "events.txt")]):
        bad = recsys("events", "export", *args, check=False)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("recsys: error: ")
