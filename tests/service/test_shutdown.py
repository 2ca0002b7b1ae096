"""Graceful shutdown of the real serve loop: SIGTERM with a request in flight."""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.service.servers import ServeProcess, free_port, wait_until


@pytest.fixture
def slow_server(seed_artifacts):
    """service.server.serve (what `recsys serve` runs) with a recommender that takes 3 s."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_ARTIFACTS=str(seed_artifacts), RECSYS_PORT=str(port), RECSYS_DRAIN_SECONDS="1",
               RECSYS_LOG_LEVEL="info")
    server = ServeProcess([sys.executable, "-m", "tests.service.fakes", "3.0"], port, env)
    server.wait_ready(timeout=30)
    yield server
    server.kill()


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(slow_server):
    base = slow_server.base
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=base, timeout=10) as client:
        in_flight = pool.submit(httpx.post, f"{base}/recommend", json={"user_id": 1, "k": 4}, timeout=20)
        wait_until(lambda: "recsys_in_flight 1.0" in client.get("/metrics").text)
        os.kill(slow_server.proc.pid, signal.SIGTERM)
        signalled = time.monotonic()
        # Draining: not ready any more, but still alive and answering.
        r = wait_until(lambda: (r := client.get("/readyz")).status_code == 503 and r)
        assert r.json() == {"error": "not_ready", "message": "shutting down"}
        assert client.get("/healthz").status_code == 200
        done = in_flight.result()
    assert done.status_code == 200 and len(done.json()["items"]) == 4
    assert slow_server.proc.wait(timeout=20) == 0
    assert time.monotonic() - signalled >= 1.0  # the drain was honoured
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=2)
    log = slow_server.output()
    assert "closing the listener in 1s" in log and "Finished server process" in log
