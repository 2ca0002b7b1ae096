"""The app's lifecycle: the batching thread lives from start-up to shutdown, and readiness and
requests tell when it is gone or too slow, instead of hanging."""

from __future__ import annotations

import threading

import httpx
import pytest

from recsys.service.app import create_app
from recsys.service.settings import Settings
from tests.service.fakes import Fatal, FailingRecommender, GatedRecommender, SlowRecommender, loader
from tests.service.servers import in_process, wait_until


def batchers() -> int:
    return sum(t.name == "micro-batcher" for t in threading.enumerate())


def ready(base: str) -> httpx.Response:
    return wait_until(lambda: (r := httpx.get(f"{base}/readyz")).status_code == 200 and r)


def test_creating_apps_starts_no_thread_and_serving_one_stops_its_own():
    before = batchers()
    apps = [create_app(Settings(artifacts="/nonexistent"), loader(SlowRecommender(delay=0))) for _ in range(20)]
    assert batchers() == before and len(apps) == 20
    with in_process(apps[0]) as base:
        ready(base)
        assert batchers() == before + 1
    assert batchers() == before  # shutdown stopped it


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_a_dead_batcher_makes_readyz_and_requests_503_at_once():
    # No compute deadline worth the name: an answer can only come from the dead thread's own notice.
    app = create_app(Settings(artifacts="/nonexistent", compute_timeout=300),
                     loader(FailingRecommender(Fatal("the batching thread dies"))))
    with in_process(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        assert ready(base).json()["model_version"] == "failing-1"
        first = client.post("/recommend", json={"user_id": 1, "k": 3})  # kills the thread
        assert first.status_code == 503 and first.headers["retry-after"] == "1"
        assert first.json() == {"error": "not_ready", "message": "batcher stopped; restart the service"}
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["message"] == "batcher stopped; restart the service"
        again = client.post("/recommend", json={"user_id": 2, "k": 3})
        assert again.status_code == 503 and again.json()["error"] == "not_ready"
        assert client.get("/healthz").status_code == 200  # the process is alive; it is not ready


def test_an_answer_not_computed_within_the_deadline_is_a_503():
    gated = GatedRecommender()
    app = create_app(Settings(artifacts="/nonexistent", compute_timeout=0.2), loader(gated))
    with in_process(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        ready(base)
        try:
            r = client.post("/recommend", json={"user_id": 1, "k": 3})  # the gate stays shut
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json() == {"error": "overloaded",
                                "message": "overloaded: no answer computed within 0.2 s; retry later"}
            assert gated.computing == 1  # it was computing, not refused before
        finally:
            gated.gate.set()
        wait_until(lambda: gated.computing == 0)
        assert client.post("/recommend", json={"user_id": 1, "k": 3}).status_code == 200  # and it recovers
        assert client.get("/readyz").status_code == 200
