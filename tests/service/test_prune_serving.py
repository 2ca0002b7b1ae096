"""`recsys prune` next to a real `recsys serve`: the version being served is never removed, even
when `current` already names another; once a reload moves off it, it can go."""

from __future__ import annotations

import os
import signal

import httpx

from recsys.artifacts import version as store
from tests.artifacts.versions import clone_version
from tests.service.servers import start_serve, wait_until

V1, V2, V3 = (f"2031010{i}T000000000000" for i in range(1, 4))


def test_prune_spares_the_served_version_until_a_reload_leaves_it(seed_artifacts, tmp_path):
    trained = store.resolve(seed_artifacts, need_index=True)
    for name in (V1, V2, V3):
        clone_version(trained, tmp_path, name)
    store.set_current(tmp_path, V1)
    server = start_serve(tmp_path)
    try:
        server.wait_ready()
        store.set_current(tmp_path, V3)  # the next version is published, not yet loaded
        out = store.prune(tmp_path, keep=1)
        assert out["removed"] == [V2] and out["in_use"] == [V1]
        with httpx.Client(base_url=server.base, timeout=30) as client:
            assert client.post("/recommend", json={"user_id": 1, "k": 3}).json()["model_version"] == V1
            os.kill(server.proc.pid, signal.SIGHUP)
            wait_until(lambda: client.get("/readyz").json().get("model_version") == V3, timeout=30)
            wait_until(lambda: store.prune(tmp_path, keep=1)["removed"] == [V1], timeout=10)
            assert [v.name for v in store.list_versions(tmp_path)] == [V3]
            assert client.post("/recommend", json={"user_id": 1, "k": 3}).json()["model_version"] == V3
    finally:
        server.kill()
