"""Backpressure and hot swaps in a real in-process server, with a recommender that finishes
only when the test opens its gate: the checks count what was admitted, queued and refused
while nothing could finish, instead of timing requests on a busy host."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from recsys.service.app import create_app
from recsys.service.errors import ReloadFailed
from recsys.service.settings import Settings
from tests.service.fakes import GatedRecommender, SlowRecommender, loader
from tests.service.servers import TOKEN, in_process, wait_until


def settings(**kw) -> Settings:
    # A gated request waits as long as its test keeps the gate shut: no compute deadline.
    return Settings(artifacts="/nonexistent", admin_token=TOKEN, **{"compute_timeout": 300, **kw})


def post_all(base: str, n: int, timeout: float = 60) -> list[Future]:
    """n concurrent POST /recommend, released together; a future (status, seconds, response) each."""
    clients = [httpx.Client(base_url=base, timeout=timeout) for _ in range(n)]
    for c in clients:  # connect first, so every request is on its way at once
        c.get("/healthz")
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        start = time.perf_counter()
        try:
            r = clients[i].post("/recommend", json={"user_id": i, "k": 3})
        finally:
            clients[i].close()
        return r.status_code, time.perf_counter() - start, r

    pool = ThreadPoolExecutor(n)
    futures = [pool.submit(one, i) for i in range(n)]
    pool.shutdown(wait=False)
    return futures


def metric(base: str, line: str) -> bool:
    return line in httpx.get(f"{base}/metrics").text.splitlines()


def ready(base: str) -> str:
    return wait_until(lambda: httpx.get(f"{base}/readyz").json().get("model_version"))


def test_exactly_the_excess_is_refused_at_once():
    max_in_flight, max_queue, excess = 2, 3, 4
    gated = GatedRecommender()  # nothing finishes until the gate opens
    app = create_app(settings(max_in_flight=max_in_flight, max_queue=max_queue, queue_timeout=60), loader(gated))
    with in_process(app) as base:
        ready(base)
        futures = post_all(base, max_in_flight + max_queue + excess)
        # While no request can finish: the excess is answered, the rest are computing or queued.
        wait_until(lambda: sum(f.done() for f in futures) == excess, timeout=30)
        assert metric(base, f"recsys_in_flight {float(max_in_flight)}")
        assert metric(base, f"recsys_queued {float(max_queue)}")
        assert metric(base, f'recsys_rejected_total{{reason="overloaded"}} {float(excess)}')
        refused = [f.result() for f in futures if f.done()]
        for status, _, r in refused:
            assert status == 503 and r.headers["retry-after"] == "1" and r.json()["error"] == "overloaded"
        gated.gate.set()
        results = [f.result() for f in futures]
        assert sorted(s for s, _, _ in results) == [200] * (max_in_flight + max_queue) + [503] * excess
        assert all(len(r.json()["items"]) == 3 for s, _, r in results if s == 200)
        assert sum(gated.batches) == max_in_flight + max_queue  # the queued ones computed after a slot freed
        assert metric(base, 'recsys_requests_total{method="POST",route="/recommend",status="503"} 4.0')


def test_queue_wait_is_bounded_and_probes_answer_under_load():
    gated = GatedRecommender()
    app = create_app(settings(max_in_flight=1, max_queue=4, queue_timeout=0.2), loader(gated))
    with in_process(app) as base:
        ready(base)
        futures = post_all(base, 3)
        wait_until(lambda: gated.computing == 1)
        # The two behind the one computing time out in the queue while it is still computing.
        wait_until(lambda: sum(f.done() for f in futures) == 2, timeout=30)
        assert gated.computing == 1
        for status, seconds, r in (f.result() for f in futures if f.done()):
            assert status == 503 and "no slot free within 0.2 s" in r.json()["message"]
            assert seconds >= 0.2  # they did wait their queue_timeout first
        # Probes and metrics are not queued behind /recommend: they answer while it computes.
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert metric(base, "recsys_in_flight 1.0")
        assert metric(base, 'recsys_rejected_total{reason="queue_timeout"} 2.0')
        gated.gate.set()
        assert sorted(f.result()[0] for f in futures) == [200, 503, 503]


def test_requests_in_flight_during_a_swap_finish_on_the_old_model():
    old, new = GatedRecommender("v-old"), GatedRecommender("v-new")
    new.gate.set()
    app = create_app(settings(), loader(old, new))
    with in_process(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        assert ready(base) == "v-old"
        with ThreadPoolExecutor(2) as pool:
            in_flight = pool.submit(client.post, "/recommend", json={"user_id": 1, "k": 2})
            wait_until(lambda: old.computing == 1)
            r = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            assert r.json() == {"status": "reloaded", "model_version": "v-new", "previous_version": "v-old"}
            assert old.computing == 1  # the swap did not wait for, or break, the request in flight
            after = pool.submit(client.post, "/recommend", json={"user_id": 1, "k": 2})  # queued behind it
            old.gate.set()
            done = in_flight.result()
        assert done.status_code == 200 and done.json()["model_version"] == "v-old"
        assert after.result().json()["model_version"] == "v-new"
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
