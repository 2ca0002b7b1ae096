"""Test helpers: real servers on free loopback ports, as subprocesses or in-process threads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

TOKEN = "test-admin-token-0123456789"
MAX_K = 200  # of the session's default server (tests/service/conftest.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """A `recsys serve` (or other) subprocess; its log goes to a file, never a pipe that can fill."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str]):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="recsys-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"server exited {self.proc.returncode}:\n{self.output()}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"server not ready within {timeout} s:\n{self.output()}")
                time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """Kill if still running and remove the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def start_serve(artifacts: Path, *args: str, port: int | None = None, **env: str) -> ServeProcess:
    """`recsys serve` on `port` (a free one by default); env given as RECSYS_* keyword arguments."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    full_env.update({"RECSYS_DRAIN_SECONDS": "0", "RECSYS_LOG_LEVEL": "warning", **env})
    return ServeProcess([sys.executable, "-m", "recsys", "serve", "--artifacts", str(artifacts), "--port", str(port),
                         *args], port, full_env)


@contextmanager
def in_process(app, settings=None):
    """Serve `app` with a real uvicorn server in a thread on a free loopback port; yield its base URL.
    With `settings`, uvicorn is configured as `recsys serve` configures it (early shedding included)."""
    import uvicorn

    from recsys.service.server import uvicorn_config

    port = free_port()
    where = {"host": "127.0.0.1", "port": port, "log_level": "warning", "access_log": False}
    config = uvicorn.Config(app, **where) if settings is None else uvicorn_config(app, settings, log_config=None,
                                                                                    **where)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("in-process server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(predicate, timeout: float = 10, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value; that value, or AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
