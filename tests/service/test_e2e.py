"""The HTTP contract against a real `recsys serve` process on a free loopback port."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.service.conftest import EVERY_ITEM_KINDS, INDEX_KINDS
from tests.service.servers import MAX_K


def recommend(client, **body):
    return client.post("/recommend", json=body)


def test_health_and_docs(server):
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] == 200
    assert server.get("/docs").status_code == 200
    assert "/recommend" in server.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("each_index", INDEX_KINDS, indirect=True)
def test_happy_path(each_index):
    r = recommend(each_index, user_id=1, k=5)
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == "1" and body["objective"] == "ctcvr"
    assert body["model_version"] == each_index.get("/readyz").json()["model_version"]
    items = body["items"]
    assert len(items) == 5 and len({i["item_id"] for i in items}) == 5
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    for i in items:
        assert set(i) == {"item_id", "score", "p_click", "p_conversion", "similarity"}
        assert 0 <= i["p_click"] <= 1 and 0 <= i["p_conversion"] <= 1
        assert abs(i["score"] - i["p_click"] * i["p_conversion"]) < 1e-6


@pytest.mark.parametrize("each_index", EVERY_ITEM_KINDS, indirect=True)
def test_every_index_kind_answers_like_flat_when_it_finds_every_candidate(each_index, server):
    """K' = max(k, 200 candidates) covers the 200-item catalogue, and the heads score the stored
    embeddings: whichever index found the candidates, the items and probabilities are flat's."""
    for body in ({"user_id": 1, "k": 20}, {"user_id": 9, "k": 50, "objective": "cvr", "exclude_seen": True}):
        got, flat = recommend(each_index, **body).json()["items"], recommend(server, **body).json()["items"]
        assert [i["item_id"] for i in got] == [i["item_id"] for i in flat]
        assert [i["p_click"] for i in got] == pytest.approx([i["p_click"] for i in flat], rel=1e-6)


def test_int_and_string_ids_are_the_same_user(server):
    assert recommend(server, user_id=7, k=10).json() == recommend(server, user_id="7", k=10).json()


@pytest.mark.parametrize("each_index", EVERY_ITEM_KINDS, indirect=True)
def test_last_user_and_last_item(each_index):
    r = recommend(each_index, user_id=100, k=MAX_K)
    assert r.status_code == 200
    ids = [i["item_id"] for i in r.json()["items"]]
    assert len(ids) == 200 and len(set(ids)) == 200 and "200" in ids


@pytest.mark.parametrize("each_index", INDEX_KINDS, indirect=True)
@pytest.mark.parametrize("objective, field", [("ctr", "p_click"), ("cvr", "p_conversion"), ("similarity", "similarity")])
def test_objectives_rank_by_their_score(each_index, objective, field):
    items = recommend(each_index, user_id=3, k=20, objective=objective).json()["items"]
    values = [i[field] for i in items]
    assert values == sorted(values, reverse=True) and [i["score"] for i in items] == values


@pytest.mark.parametrize("each_index", EVERY_ITEM_KINDS, indirect=True)
def test_exclude_seen(each_index, seed_data):
    inter = pd.read_csv(seed_data / "interactions.csv")
    user = int(inter["user_id"].value_counts().index[0])
    seen = set(inter.loc[inter["user_id"] == user, "item_id"].astype(str))
    items = recommend(each_index, user_id=user, k=MAX_K, exclude_seen=True).json()["items"]
    ids = {i["item_id"] for i in items}
    assert not ids & seen and len(ids) == 200 - len(seen)
    assert seen <= {i["item_id"] for i in recommend(each_index, user_id=user, k=MAX_K).json()["items"]}


@pytest.mark.parametrize("user_id", [101, "101", 0, "nobody"])
def test_unknown_user_is_404(server, user_id):
    r = recommend(server, user_id=user_id, k=5)
    assert r.status_code == 404
    assert r.json()["error"] == "unknown_user" and str(user_id) in r.json()["message"]


@pytest.mark.parametrize("body", [
    {"user_id": 1, "k": 0},
    {"user_id": 1, "k": -3},
    {"user_id": 1, "k": MAX_K + 1},
    {"user_id": 1, "k": "5"},
    {"user_id": 1, "k": 1.5},
    {"user_id": 1, "k": None},
    {"k": 5},
    {"user_id": None, "k": 5},
    {"user_id": True, "k": 5},
    {"user_id": 1.0, "k": 5},
    {"user_id": "", "k": 5},
    {"user_id": "x" * 129, "k": 5},
    {"user_id": "1\x00", "k": 5},
    {"user_id": [1], "k": 5},
    {"user_id": 1, "k": 5, "objective": "revenue"},
    {"user_id": 1, "k": 5, "exclude_seen": "yes"},
    {"user_id": 1, "k": 5, "unexpected": 1},
])
def test_invalid_bodies_are_422(server, body):
    r = recommend(server, **body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and r.json()["message"]


@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2]", b"", b"null", b'{"user_id": 1, "k": NaN}'])
def test_malformed_json_is_422(server, raw):
    r = server.post("/recommend", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_unknown_route_and_method_are_json(server):
    assert server.get("/nope").json()["error"] == "not_found"
    r = server.get("/recommend")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_admin_endpoint_is_off_without_a_token(server):
    for headers in ({}, {"Authorization": "Bearer anything-at-all-really"}):
        r = server.post("/admin/reload", headers=headers)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert "RECSYS_ADMIN_TOKEN" in r.json()["message"]
