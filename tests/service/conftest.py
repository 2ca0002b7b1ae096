"""A `recsys serve` with default settings (but max_k 200) on the session's trained artifacts."""

from __future__ import annotations

import httpx
import pytest

from tests.service.servers import MAX_K, start_serve


@pytest.fixture(scope="session")
def default_server(seed_artifacts):
    server = start_serve(seed_artifacts, RECSYS_MAX_K=str(MAX_K))
    server.wait_ready()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def server(default_server):
    """An HTTP client of the default server."""
    with httpx.Client(base_url=default_server.base, timeout=10) as client:
        yield client
