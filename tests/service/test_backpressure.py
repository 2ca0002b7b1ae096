"""Backpressure and hot swaps, with a deliberately slow recommender in a real in-process server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from recsys.service.app import create_app
from recsys.service.errors import ReloadFailed
from recsys.service.settings import Settings
from tests.service.fakes import SlowRecommender, loader
from tests.service.servers import TOKEN, in_process, wait_until


def settings(**kw) -> Settings:
    return Settings(artifacts="/nonexistent", admin_token=TOKEN, **kw)


def post_all(base: str, n: int, timeout: float = 30) -> list[tuple[int, float, httpx.Response]]:
    """n concurrent POST /recommend, released together; (status, seconds, response) of each."""
    clients = [httpx.Client(base_url=base, timeout=timeout) for _ in range(n)]
    for c in clients:  # connect first, so the timings below are the requests' alone
        c.get("/healthz")
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        start = time.perf_counter()
        r = clients[i].post("/recommend", json={"user_id": i, "k": 3})
        return r.status_code, time.perf_counter() - start, r

    try:
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for c in clients:
            c.close()


def ready(base: str) -> str:
    return wait_until(lambda: httpx.get(f"{base}/readyz").json().get("model_version"))


def test_exactly_the_excess_is_refused_at_once():
    max_in_flight, max_queue, excess = 2, 3, 4
    slow = SlowRecommender(delay=1.0)  # long enough that all requests arrive while the first are computing
    app = create_app(settings(max_in_flight=max_in_flight, max_queue=max_queue, queue_timeout=10), loader(slow))
    with in_process(app) as base:
        ready(base)
        results = post_all(base, max_in_flight + max_queue + excess)
        statuses = sorted(s for s, _, _ in results)
        assert statuses == [200] * (max_in_flight + max_queue) + [503] * excess
        for status, seconds, r in results:
            if status == 503:
                assert r.headers["retry-after"] == "1" and r.json()["error"] == "overloaded"
                assert seconds < 0.5, seconds  # refused at once, not after waiting
            else:
                assert len(r.json()["items"]) == 3
        # Requests queue behind the two slots: the last admitted ones waited for a slot.
        assert max(sec for s, sec, _ in results if s == 200) >= 2.0
        metrics = httpx.get(f"{base}/metrics").text
        assert f'recsys_rejected_total{{reason="overloaded"}} {float(excess)}' in metrics
        assert 'recsys_requests_total{method="POST",route="/recommend",status="503"} 4.0' in metrics


def test_queue_wait_is_bounded_and_probes_answer_under_load():
    slow = SlowRecommender(delay=1.5)
    app = create_app(settings(max_in_flight=1, max_queue=4, queue_timeout=0.2), loader(slow))
    with in_process(app) as base:
        ready(base)
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(post_all, base, 3)
            wait_until(lambda: slow.computing == 1)
            start = time.perf_counter()  # probes and metrics are not queued behind /recommend
            assert httpx.get(f"{base}/readyz").status_code == 200
            assert httpx.get(f"{base}/healthz").status_code == 200
            assert "recsys_in_flight 1.0" in httpx.get(f"{base}/metrics").text
            assert time.perf_counter() - start < 0.5
            results = future.result()
        assert sorted(s for s, _, _ in results) == [200, 503, 503]
        for status, seconds, r in results:
            if status == 503:
                assert 0.2 <= seconds < 1.0 and "no slot free within 0.2 s" in r.json()["message"]


def test_requests_in_flight_during_a_swap_finish_on_the_old_model():
    old, new = SlowRecommender("v-old", delay=1.0), SlowRecommender("v-new", delay=0.0)
    app = create_app(settings(), loader(old, new))
    with in_process(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert ready(base) == "v-old"
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(client.post, "/recommend", json={"user_id": 1, "k": 2})
            wait_until(lambda: old.computing == 1)
            r = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            assert r.json() == {"status": "reloaded", "model_version": "v-new", "previous_version": "v-old"}
            assert old.computing == 1  # the swap did not wait for, or break, the request in flight
            assert client.post("/recommend", json={"user_id": 1, "k": 2}).json()["model_version"] == "v-new"
            done = in_flight.result()
        assert done.status_code == 200 and done.json()["model_version"] == "v-old"
        assert 'recsys_model_info{version="v-new"} 1.0' in client.get("/metrics").text


def test_a_failed_reload_keeps_the_old_model_and_says_why():
    good = SlowRecommender("v-good", delay=0.0)
    app = create_app(settings(), loader(good, RuntimeError("index.faiss does not match its checksum")))
    with in_process(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert ready(base) == "v-good"
        r = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 409 and r.json()["error"] == "reload_failed"
        assert r.json()["message"] == ("reload refused, still serving v-good: "
                                       "index.faiss does not match its checksum")
        assert client.get("/readyz").json()["model_version"] == "v-good"
        assert client.post("/recommend", json={"user_id": 1, "k": 2}).json()["model_version"] == "v-good"
        assert 'recsys_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text


def test_a_first_load_failure_is_reported_by_readyz():
    app = create_app(settings(), loader(RuntimeError("no version with an index")))
    with in_process(app) as base:
        r = wait_until(lambda: (r := httpx.get(f"{base}/readyz")).json().get("message", "").endswith("index") and r)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["message"] == "model failed to load: no version with an index"


def test_state_reload_raises_reload_failed_directly():
    from recsys.service.state import State

    state = State(settings(), loader(SlowRecommender("a", 0), ValueError("broken")))
    state.reload()
    with pytest.raises(ReloadFailed, match="still serving a: broken"):
        state.reload()
    assert state.recommender.version == "a" and state.error == "broken"
