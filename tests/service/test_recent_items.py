"""A model whose user tower takes a history, served: recent_items, new users served from them,
unknown ids counted."""

from __future__ import annotations

import httpx
import pytest

from tests.service.conftest import HISTORY
from tests.service.servers import start_serve


@pytest.fixture(scope="module")
def client(history_root):
    server = start_serve(history_root)
    server.wait_ready()
    with httpx.Client(base_url=server.base, timeout=10) as c:
        yield c
    server.kill()


def items(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def test_the_model_card_says_the_history_length(client):
    assert client.get("/model").json()["history_length"] == HISTORY


def test_a_new_user_with_only_recent_items_gets_a_personalised_list(client):
    catalogue = client.get("/model").json()
    assert catalogue["items"] == 200
    a = client.post("/recommend", json={"user_id": "new-a", "k": 20, "recent_items": ["1", "2", "3"]})
    b = client.post("/recommend", json={"user_id": "new-b", "k": 20, "recent_items": [150, 151, 152]})
    assert "fallback" not in a.json() and "fallback" not in b.json()
    assert all(i["p_click"] is not None for i in a.json()["items"])
    assert items(a) != items(b)
    # The same session items give the same list whatever the new user's id (both the OOV id row).
    assert items(client.post("/recommend", json={"user_id": "new-c", "k": 20, "recent_items": ["1", "2", "3"]})) \
        == items(a)
    # Without any history, a new user is still unknown.
    r = client.post("/recommend", json={"user_id": "new-d", "k": 20})
    assert r.status_code == 404 and "recent_items" in r.json()["message"]


def test_recent_items_change_a_known_users_list_and_unknown_ids_are_counted(client):
    user = client.get("/model").json()["sample_users"][0]
    plain = client.post("/recommend", json={"user_id": user, "k": 20})
    assert "recent_items_ignored" not in plain.json()
    session = client.post("/recommend", json={"user_id": user, "k": 20,
                                              "recent_items": ["7", "8", "9", "no-such-item", "nor-this"]})
    assert session.json()["recent_items_ignored"] == 2
    assert [i["score"] for i in session.json()["items"]] != [i["score"] for i in plain.json()["items"]]
    # Only unknown ids: the stored history alone, the same list as without recent_items.
    unknown = client.post("/recommend", json={"user_id": user, "k": 20, "recent_items": ["no-such-item"]})
    assert unknown.json()["recent_items_ignored"] == 1 and items(unknown) == items(plain)


def test_recent_items_are_validated(client):
    for bad in (["x"] * 1001, [""], [1.5], "1,2"):
        r = client.post("/recommend", json={"user_id": "1", "k": 5, "recent_items": bad})
        assert r.status_code == 422, (bad, r.text)
        assert "recent_items" in r.text
