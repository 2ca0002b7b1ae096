"""The live catalogue through real servers: changes served within a poll, all or nothing,
durable across kill -9, followed by every worker, kept by a newly trained version."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import numpy as np
import pytest

from recsys.artifacts.version import Version
from tests.service.servers import TOKEN, start_serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALL = 300  # more than the seed catalogue's 200 items: k = ALL returns every eligible item


def served(client, user_id, k=ALL) -> list[str]:
    r = client.post("/recommend", json={"user_id": user_id, "k": k})
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def item_row(version: Version, item_id: str) -> dict:
    items = version.table("item")
    return {name: (float(col[items.position[item_id]]) if col.dtype.kind == "f" else str(col[items.position[item_id]]))
            for name, col in items.columns.items()}


@pytest.fixture
def live(seed_artifacts, tmp_path):
    server = start_serve(seed_artifacts, "--max-k", str(ALL), RECSYS_ADMIN_TOKEN=TOKEN,
                         RECSYS_CATALOGUE_DB=str(tmp_path / "catalogue.db"))
    server.wait_ready()
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            yield server, client
    finally:
        server.stop()
        server.kill()


def test_unavailable_items_are_never_served_while_requests_stream(live):
    _, client = live
    users = ["1", "2", "3", "4"]
    before = served(client, "1")
    assert len(before) == 200
    gone = before[:20]  # the best items of user 1: certain to be served until the change
    returned = threading.Event()
    stop = threading.Event()
    after: list[list[str]] = []
    failures: list[str] = []

    def hammer():
        with httpx.Client(base_url=client.base_url, timeout=10) as c:
            while not stop.is_set():
                started_after = returned.is_set()
                for u in users:
                    r = c.post("/recommend", json={"user_id": u, "k": ALL})
                    if r.status_code != 200:
                        failures.append(r.text)
                    elif started_after:
                        after.append([i["item_id"] for i in r.json()["items"]])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    r = client.post("/admin/items", json={"unavailable": gone}, headers=AUTH)
    returned.set()
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 20, "items": 200, "unavailable": 20}
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    assert not failures
    assert len(after) >= 4  # requests that started after the answer (how many depends on the machine's load)
    for items in after:
        assert not set(items) & set(gone)
        assert len(items) == 180  # exactly the available ones, k being larger than the catalogue
    assert client.get(f"/admin/items/{gone[0]}", headers=AUTH).json()["status"] == "unavailable"

    r = client.post("/admin/items", json={"available": gone[:5]}, headers=AUTH)
    assert r.json() == {"applied": 5, "items": 200, "unavailable": 15}
    assert set(gone[:5]) <= set(served(client, "1"))


def test_a_new_item_is_served_by_its_attributes(live, seed_artifacts):
    _, client = live
    version = Version.open(seed_artifacts, need_index=True)
    attrs = item_row(version, "3")
    attrs.pop("item_id")
    r = client.post("/admin/items", json={"upsert": [{"item_id": "new-77", **attrs}]}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 1, "items": 201, "unavailable": 0}
    items = client.post("/recommend", json={"user_id": "1", "k": ALL}).json()["items"]
    new = [i for i in items if i["item_id"] == "new-77"]
    assert len(items) == 201 and len(new) == 1
    # Its vector is the item tower's on these attributes with the OOV id: u·v matches.
    tower = version.numpy_tower("item")
    cols = {name: np.array([attrs[name]], np.float32) if isinstance(attrs[name], float)
            else np.array([str(attrs[name])], dtype=object) for name in attrs}
    cols["item_id"] = np.array(["new-77"], dtype=object)
    users = version.table("user")
    u = version.numpy_tower("user")(users.rows([users.position["1"]]))[0]
    assert new[0]["similarity"] == pytest.approx(float(u @ tower(cols)[0]), abs=1e-4)
    got = client.get("/admin/items/new-77", headers=AUTH).json()
    assert got == {"item_id": "new-77", "status": "available", "attributes": attrs}

    # New attributes for an existing item: one row still, its old vector no longer served.
    old = next(i for i in items if i["item_id"] == "3")
    changed = dict(attrs, item_price=attrs["item_price"] + 500)
    assert client.post("/admin/items", json={"upsert": [{"item_id": 3, **changed}]}, headers=AUTH).status_code == 200
    items = client.post("/recommend", json={"user_id": "1", "k": ALL}).json()["items"]
    threes = [i for i in items if i["item_id"] == "3"]
    assert len(items) == 201 and len(threes) == 1 and threes[0]["similarity"] != old["similarity"]
    assert client.get("/admin/items/3", headers=AUTH).json()["attributes"] == changed


def test_a_bad_batch_applies_nothing_and_names_its_first_bad_entry(live, seed_artifacts):
    _, client = live
    version = Version.open(seed_artifacts, need_index=True)
    attrs = item_row(version, "3")
    attrs.pop("item_id")
    cases = [
        ({"upsert": [{"item_id": "ok-1", **attrs}], "unavailable": ["1", "no-such-item"]},
         "unavailable[1]: item_id: 'no-such-item' is not in the catalogue"),
        ({"upsert": [{"item_id": "ok-1", **attrs}, {"item_id": "ok-2", **dict(attrs, item_price="cheap")}]},
         "upsert[1]: item_price: must be a finite number"),
        ({"upsert": [{"item_id": "ok-1", **{k: v for k, v in attrs.items() if k != "item_brand"}}]},
         "upsert[0]: item_brand: missing; an upsert needs every item feature"),
        ({"upsert": [{"item_id": "ok-1", "colour": "red", **attrs}]}, "upsert[0]: colour: not an item feature"),
        ({"delete": ["1"], "available": [True]}, "available.0"),
    ]
    for body, message in cases:
        r = client.post("/admin/items", json=body, headers=AUTH)
        assert r.status_code == 422, r.text
        assert message in r.json()["message"]
    assert client.get("/admin/items/ok-1", headers=AUTH).status_code == 404
    assert client.get("/admin/items/1", headers=AUTH).json()["status"] == "available"
    assert len(served(client, "1")) == 200
    r = client.post("/admin/items", json={"unavailable": ["1"]})
    assert r.status_code == 401
    r = client.post("/admin/items", json={"delete": ["1"]}, headers=AUTH)
    assert r.json() == {"applied": 1, "items": 199, "unavailable": 0}
    assert client.get("/admin/items/1", headers=AUTH).status_code == 404
    assert "1" not in served(client, "2")
    metrics = client.get("/metrics").text
    assert 'recsys_catalogue_changes_total{op="delete"} 1.0' in metrics
    assert "recsys_catalogue_items 199.0" in metrics


def test_admin_items_are_off_without_a_token(seed_artifacts, tmp_path):
    server = start_serve(seed_artifacts, RECSYS_CATALOGUE_DB=str(tmp_path / "c.db"))
    server.wait_ready()
    try:
        with httpx.Client(base_url=server.base) as client:
            assert client.post("/admin/items", json={"delete": ["1"]}).status_code == 404
            assert client.get("/admin/items/1").status_code == 404
    finally:
        server.stop()
        server.kill()


def test_an_acknowledged_change_survives_kill_9(seed_artifacts, tmp_path):
    db = str(tmp_path / "catalogue.db")
    server = start_serve(seed_artifacts, RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_CATALOGUE_DB=db)
    server.wait_ready()
    with httpx.Client(base_url=server.base) as client:
        assert client.post("/admin/items", json={"unavailable": ["7"], "delete": ["8"]},
                           headers=AUTH).status_code == 200
    os.kill(server.proc.pid, signal.SIGKILL)
    server.kill()
    again = start_serve(seed_artifacts, "--max-k", str(ALL), RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_CATALOGUE_DB=db)
    again.wait_ready()
    try:
        with httpx.Client(base_url=again.base) as client:
            assert client.get("/admin/items/7", headers=AUTH).json()["status"] == "unavailable"
            assert client.get("/admin/items/8", headers=AUTH).status_code == 404
            items = served(client, "1")
            assert len(items) == 198 and not {"7", "8"} & set(items)
            assert client.get("/readyz").json()["items"] == 199
    finally:
        again.stop()
        again.kill()


@pytest.mark.slow  # multi-process: two server workers
def test_two_workers_both_serve_a_change_within_a_second(seed_artifacts, tmp_path):
    server = start_serve(seed_artifacts, "--workers", "2", "--max-k", str(ALL), RECSYS_ADMIN_TOKEN=TOKEN,
                         RECSYS_CATALOGUE_DB=str(tmp_path / "catalogue.db"))
    server.wait_ready(timeout=240)  # two processes loading a model on a shared machine
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            top = served(client, "1")[:10]
            assert client.post("/admin/items", json={"unavailable": top}, headers=AUTH).status_code == 200
        time.sleep(1.0)  # the bound: every worker serves the change within 1 s of the answer
        writer, other = 0, 0
        for _ in range(40):  # a new connection may land on either worker
            with httpx.Client(base_url=server.base, timeout=10) as fresh:
                assert not set(served(fresh, "1")) & set(top)
                metrics = fresh.get("/metrics").text
            assert "recsys_catalogue_unavailable 10.0" in metrics
            # Only the worker that answered the POST counted it: it tells the two apart.
            if 'route="/admin/items",status="200"' in metrics:
                writer += 1
            else:
                other += 1
        assert writer and other, (writer, other)
    finally:
        server.stop()
        server.kill()
