"""Reloads never hold up anything else: a second reload is refused at once while one runs, and
metrics and probes answer while a load is blocked (on an Event the test controls)."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn

from recsys.service.app import create_app
from recsys.service.observability import JsonFormatter, request_context
from recsys.service.server import Server
from recsys.service.settings import Settings
from tests.service.fakes import SlowRecommender
from tests.service.servers import TOKEN, in_process, wait_until

RELOADS = 60  # more than the thread pool's 40 threads: a reload holding a pool thread would starve it


class BlockingLoads:
    """The first load is instant; every later one enters, then waits for `gate`."""

    def __init__(self):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, _settings, _version=None):
        self.calls += 1
        if self.calls > 1:
            self.entered.set()
            assert self.gate.wait(60), "the test never opened the gate"
        return SlowRecommender(version=f"v{self.calls}", delay=0)


def test_concurrent_reloads_get_409_at_once_and_never_block_metrics_or_probes():
    loads = BlockingLoads()
    app = create_app(Settings(artifacts="/nonexistent", admin_token=TOKEN), loads)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with in_process(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200)
        with ThreadPoolExecutor(RELOADS) as pool:
            first = pool.submit(client.post, "/admin/reload", headers=auth)
            assert loads.entered.wait(30)  # the first reload is inside its (blocked) load
            others = [pool.submit(client.post, "/admin/reload", headers=auth) for _ in range(RELOADS - 1)]
            refused = [f.result() for f in others]  # all answered while the first is still blocked
            metrics, health, ready = client.get("/metrics"), client.get("/healthz"), client.get("/readyz")
            blocked = not loads.gate.is_set() and not first.done()
            loads.gate.set()
            done = first.result()
    assert blocked
    assert [r.status_code for r in refused] == [409] * (RELOADS - 1)
    assert {r.json()["error"] for r in refused} == {"reload_in_progress"}
    assert metrics.status_code == health.status_code == ready.status_code == 200
    assert ready.json()["model_version"] == "v1"  # the old version served throughout
    assert done.status_code == 200 and done.json() == {"status": "reloaded", "model_version": "v2",
                                                       "previous_version": "v1"}
    assert loads.calls == 2  # the refused ones never loaded anything


def test_the_sigterm_log_line_carries_no_request_id_of_the_request_it_interrupted():
    app = create_app(Settings(artifacts="/nonexistent"), BlockingLoads())
    server = Server(uvicorn.Config(app), app.state.recsys, drain_seconds=30)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(JsonFormatter().format(record))  # formatted when logged
    logger = logging.getLogger("recsys.service")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    token = request_context.set({"request_id": "interrupted-request"})  # a signal lands mid-request
    try:
        server.handle_exit(signal.SIGTERM, None)
        line = next(line for line in lines if "SIGTERM" in line)
        assert "request_id" not in line
    finally:
        request_context.reset(token)
        logger.removeHandler(handler)
        logger.setLevel(previous)
        if server._drain is not None:
            server._drain.cancel()
