"""One query's failure never fails another query of its batch: a real server, a real model, a
fault planted in one query's processing, and 40 normal requests alongside it."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from recsys.artifacts.version import Version
from recsys.service.app import create_app
from recsys.service.domain import InvalidRequest, Query, RequestError
from recsys.service.recommender import NonFiniteVector, Recommender
from recsys.service.settings import Settings
from tests.service.servers import in_process

PLANTED = "planted-fault"
FEATURES = {"user_age": 30, "user_gender": "female", "user_occupation": "student", "city_code": "3",
            "device_type": "mobile"}


class BatchFault(Recommender):
    """Fails the whole batch (its user-tower step) whenever the planted query is in it."""

    def user_vectors(self, queries):
        if any(q.user_id == PLANTED for q in queries):
            raise RuntimeError("planted fault in the user-tower step")
        return super().user_vectors(queries)


class SelectFault(Recommender):
    """Fails only the planted query's own top-k selection."""

    def _select(self, q, *args):
        if q.user_id == PLANTED:
            raise RuntimeError("planted fault in the selection step")
        return super()._select(q, *args)


async def burst(base: str, odd: dict, normal: int = 40) -> tuple[httpx.Response, list[httpx.Response]]:
    """`normal` stored-user requests and `odd`, all at once, each on its own connection."""
    limits = httpx.Limits(max_connections=normal + 1)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        calls = [client.post("/recommend", json={"user_id": i % 50 + 1, "k": 5}) for i in range(normal)]
        calls.insert(normal // 2, client.post("/recommend", json=odd))
        out = await asyncio.gather(*calls)
    return out[normal // 2], out[: normal // 2] + out[normal // 2 + 1:]


@pytest.mark.parametrize("kind", [BatchFault, SelectFault])
def test_a_planted_fault_fails_only_its_own_query(seed_artifacts, kind):
    # Room for the whole burst in one batch, and time for it to gather.
    settings = Settings(artifacts=seed_artifacts, batch_size=64, batch_delay_ms=20, max_in_flight=64)
    app = create_app(settings, lambda s, v=None: kind(v or Version.open(s.artifacts, need_index=True), s))
    with in_process(app) as base:
        httpx.get(f"{base}/readyz", timeout=60)
        for _ in range(3):  # batches form differently each round
            odd, others = asyncio.run(burst(base, {"user_id": PLANTED, "user_features": FEATURES, "k": 5}))
            assert [r.status_code for r in others] == [200] * 40, [r.text for r in others if r.status_code != 200]
            assert all(len(r.json()["items"]) == 5 for r in others)
            assert odd.status_code == 500 and odd.json() == {"error": "internal",
                                                             "message": "internal error; see the service log"}
            assert odd.headers["x-request-id"]
        metrics = httpx.get(f"{base}/metrics").text
        count = next(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("recsys_batch_size_count"))
        assert count < 3 * 41, "the burst never shared a batch: nothing was tested"


@pytest.fixture(scope="module")
def rec(seed_artifacts) -> Recommender:
    return Recommender(Version.open(seed_artifacts, need_index=True), Settings())


def poisoned(tower, bad_rows: int):
    """`tower` whose output's first `bad_rows` rows are NaN (a model or arithmetic fault)."""
    def run(columns):
        out = tower(columns).copy()
        out[:bad_rows] = np.nan
        return out
    return run


def test_a_non_finite_stored_user_vector_is_a_server_error_never_searched(rec, monkeypatch):
    monkeypatch.setattr(rec, "user_tower", poisoned(rec.user_tower, 1))  # the batch's first stored user
    out = rec.recommend_batch([Query("1", 5), Query("2", 5), Query("3", 5)])
    assert isinstance(out[0], NonFiniteVector) and not isinstance(out[0], RequestError)
    assert [len(o.item_ids) for o in out[1:]] == [5, 5]


def test_a_non_finite_new_user_vector_is_the_request_s_error(rec, monkeypatch):
    monkeypatch.setattr(rec, "user_tower", poisoned(rec.user_tower, 1))  # every cold start: one row
    [out] = rec.recommend_batch([Query("new-1", 5, user_features=FEATURES)])
    assert isinstance(out, InvalidRequest) and "non-finite" in out.message
