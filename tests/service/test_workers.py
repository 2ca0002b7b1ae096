"""`recsys serve --workers 2`: one port, two processes, reloads reach both, clean and failed stops."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

import pytest

from tests.service.servers import TOKEN, start_serve, wait_until


def workers_of(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.slow  # multi-process: two server workers
def test_two_workers_serve_one_port_reload_together_and_stop_cleanly(seed_artifacts):
    server = start_serve(seed_artifacts, "--workers", "2", RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_LOG_LEVEL="info",
                         RECSYS_LOG_FORMAT="text")
    try:
        server.wait_ready()
        workers = wait_until(lambda: len(w := workers_of(server.proc.pid)) == 2 and w, timeout=30)
        wait_until(lambda: server.output().count("serving model version") == 2, timeout=60)  # both loaded
        with httpx.Client(base_url=server.base, timeout=10) as client:
            for user in range(1, 41):
                r = client.post("/recommend", json={"user_id": user, "k": 5})
                assert r.status_code == 200 and len(r.json()["items"]) == 5
            r = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200 and r.json()["status"] == "reloaded"
        # The worker that answered reloaded; the supervisor made the other one reload too.
        wait_until(lambda: server.output().count(", was ") == 2, timeout=60)
        os.kill(server.proc.pid, signal.SIGHUP)  # SIGHUP to the supervisor reaches every worker
        wait_until(lambda: server.output().count(", was ") == 4, timeout=60)
        assert server.stop() == 0
        assert all(not Path(f"/proc/{w}").exists() or b"zombie" in Path(f"/proc/{w}/status").read_bytes().lower()
                   for w in workers)
    finally:
        server.kill()


@pytest.mark.slow  # multi-process: two server workers
def test_a_worker_that_dies_stops_the_service_with_its_reason(seed_artifacts):
    server = start_serve(seed_artifacts, "--workers", "2")
    try:
        server.wait_ready()
        workers = wait_until(lambda: len(w := workers_of(server.proc.pid)) == 2 and w, timeout=30)
        os.kill(workers[0], signal.SIGKILL)
        assert server.proc.wait(timeout=60) == 2
        out = server.output()
        assert f"recsys: error: worker {workers[0]} exited with code -9" in out
    finally:
        server.kill()


@pytest.mark.slow  # multi-process: two server workers
def test_workers_stop_when_the_supervisor_is_killed_and_the_port_is_free_again(seed_artifacts):
    server = start_serve(seed_artifacts, "--workers", "2")
    again = None
    try:
        server.wait_ready()
        workers = wait_until(lambda: len(w := workers_of(server.proc.pid)) == 2 and w, timeout=30)
        server.proc.kill()  # SIGKILL: the supervisor forwards nothing
        server.proc.wait()

        def gone(pid: int) -> bool:
            try:
                return b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()
            except FileNotFoundError:
                return True
        wait_until(lambda: all(gone(w) for w in workers), timeout=30)
        # Nothing holds the port: a restarted service binds it and serves.
        again = start_serve(seed_artifacts, port=server.port)
        again.wait_ready()
        with httpx.Client(base_url=again.base, timeout=10) as client:
            assert client.post("/recommend", json={"user_id": 1, "k": 5}).status_code == 200
    finally:
        server.kill()
        if again is not None:
            again.kill()
