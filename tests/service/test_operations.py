"""Operations against a real `recsys serve`: hot reload (HTTP and SIGHUP), refused reloads of damaged
or mismatched artifacts, an interrupted build-index, the popular fallback, metrics and logs.

The artifact root holds copies of the session's trained version under new names; every test
starts by serving V1 and leaves the server serving V1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import pandas as pd
import pytest

from recsys.artifacts import version as layout
from tests.artifacts.versions import clone_version, edit_index_manifest, flip_byte, snapshot, truncate
from tests.conftest import ROOT, recsys
from tests.service.servers import TOKEN, start_serve, wait_until

V1, V2, V3, V4, V5, V6 = (f"2030010{i}T000000000000" for i in range(1, 7))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"user_id": 7, "k": 20}


@pytest.fixture(scope="module")
def root(seed_artifacts, tmp_path_factory):
    root = tmp_path_factory.mktemp("ops-artifacts")
    trained = layout.resolve(seed_artifacts, need_index=True)
    clone_version(trained, root, V1)
    clone_version(trained, root, V2)
    layout.set_current(root, V1)
    return root


@pytest.fixture(scope="module")
def server(root):
    server = start_serve(root, RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_UNKNOWN_USER_FALLBACK="popular",
                         RECSYS_LOG_LEVEL="info")
    server.wait_ready()
    yield server
    server.kill()


@pytest.fixture
def client(server, root):
    with httpx.Client(base_url=server.base, timeout=30) as client:
        serve(client, root, V1)
        yield client
        serve(client, root, V1)


def serve(client: httpx.Client, root, version: str) -> None:
    layout.set_current(root, version)
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["model_version"] == version, r.text


def answer(client: httpx.Client) -> dict:
    r = client.post("/recommend", json=BODY)
    assert r.status_code == 200, r.text
    return r.json()


def test_admin_endpoint_needs_the_bearer_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}):
        r = client.post("/admin/reload", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
        assert r.json()["error"] == "unauthorized"
    assert client.get("/readyz").json()["model_version"] == V1


def test_reload_switches_to_the_current_version(client, root):
    before = answer(client)
    layout.set_current(root, V2)
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"status": "reloaded", "model_version": V2, "previous_version": V1}
    assert client.get("/readyz").json()["model_version"] == V2
    after = answer(client)
    assert after["model_version"] == V2 and after["items"] == before["items"]  # V2 is a copy of V1's model
    assert f'recsys_model_info{{version="{V2}"}} 1.0' in client.get("/metrics").text
    assert f'version="{V1}"' not in client.get("/metrics").text


@pytest.mark.parametrize("damage", ["truncate the new version's index", "flip a byte of the served version's index"])
def test_a_damaged_index_is_refused_and_the_old_version_answers_identically(client, root, damage):
    if damage.startswith("truncate"):
        clone_version(layout.resolve(root, V1), root, V3)
        before = answer(client)
        truncate(root / V3 / "index" / "index.faiss")
        layout.set_current(root, V3)
        served, bad_file = V1, "index.faiss"
    else:
        clone_version(layout.resolve(root, V1), root, V4)
        serve(client, root, V4)
        before = answer(client)
        flip_byte(root / V4 / "index" / "embeddings.npy", offset=200)
        served, bad_file = V4, "embeddings.npy"
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 409 and r.json()["error"] == "reload_failed"
    assert r.json()["message"].startswith(f"reload refused, still serving {served}: ")
    assert f"file {bad_file} does not match its checksum" in r.json()["message"]
    assert client.get("/readyz").json()["model_version"] == served
    assert answer(client) == before


def test_a_mismatched_model_index_pair_is_refused_on_reload(client, root):
    clone_version(layout.resolve(root, V1), root, V5)
    edit_index_manifest(root / V5, model_version=V1)  # V1's index filed under V5
    before = answer(client)
    layout.set_current(root, V5)
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 409
    assert "the index does not belong to this model: model_version" in r.json()["message"]
    assert f"'{V1}' (model: '{V5}')" in r.json()["message"]
    assert answer(client) == before


KILL_AFTER_STAGING = """
import os, signal, sys
from recsys.artifacts import version as layout
from recsys.cli import main

write_manifest = layout.write_manifest

def write_manifest_then_die(*args, **kwargs):
    write_manifest(*args, **kwargs)  # the staged index is now whole, manifest and all, but not renamed
    os.kill(os.getpid(), signal.SIGKILL)

layout.write_manifest = write_manifest_then_die
sys.exit(main(["build-index", *sys.argv[1:]]))
"""


def test_a_killed_build_index_leaves_the_served_version_unchanged(client, root):
    clone_version(layout.resolve(root, V1), root, V6, index=False)  # newer than V1, not indexed yet
    before, files, versions = answer(client), snapshot(root), layout.list_versions(root)
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_STAGING, "--artifacts", str(root), "--version", V6],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    staged = [p for p in (root / V6).iterdir() if p.name.startswith(".index.tmp-")]
    assert len(staged) == 1 and (staged[0] / "manifest.json").is_file()  # killed at the worst moment
    assert not (root / V6 / "index").exists() and not layout.has_index(root / V6)
    assert snapshot(root) == files and layout.list_versions(root) == versions
    assert layout.read_current(root) == V1 and layout.resolve(root, need_index=True).name == V1
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["model_version"] == V1
    assert answer(client) == before
    # Running it again completes the index and switches `current`; a reload then serves it.
    recsys("build-index", "--artifacts", str(root), "--version", V6)
    assert layout.read_current(root) == V6
    layout.verify(root / V6 / "index")
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["model_version"] == V6
    assert answer(client)["items"] == before["items"]


def test_sighup_reloads(client, server, root):
    layout.set_current(root, V2)
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_until(lambda: client.get("/readyz").json()["model_version"] == V2, timeout=30)
    assert answer(client)["model_version"] == V2


def test_requests_during_reloads_all_succeed(client, root):
    results, stop = [], threading.Event()

    def hammer():
        with httpx.Client(base_url=client.base_url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/recommend", json=BODY)
                results.append((r.status_code, r.json().get("model_version")))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        # Requests run before, during and after the swaps, however fast the reloads are.
        wait_until(lambda: len(results) >= 10, timeout=30)
        for version in (V2, V1):
            serve(client, root, version)
            done = len(results)
            wait_until(lambda done=done: len(results) >= done + 10, timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(results) >= 20
    assert {status for status, _ in results} == {200}
    assert {version for _, version in results} == {V1, V2}


def test_unknown_users_get_popular_items_when_configured(client, seed_data):
    r = client.post("/recommend", json={"user_id": "nobody", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] == "popular" and body["model_version"] == V1
    inter = pd.read_csv(seed_data / "interactions.csv").drop_duplicates(["user_id", "item_id"])
    share = inter["item_id"].astype(str).value_counts() / inter["user_id"].nunique()
    assert [set(i) for i in body["items"]] == [{"item_id", "score"}] * 5
    assert [i["score"] for i in body["items"]] == pytest.approx(sorted(share.to_numpy(), reverse=True)[:5])
    assert body["items"][0]["item_id"] == share.idxmax()
    # Known users and new users with features still get model scores, not the fallback.
    assert "fallback" not in answer(client)


def test_metrics_in_prometheus_format(client):
    answer(client)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (f'recsys_model_info{{version="{V1}"}} 1.0', "recsys_batch_size_count ",
                 'recsys_candidates_overfetched_bucket{le="100.0"} ',
                 'recsys_request_duration_seconds_bucket{le="0.25",method="POST",route="/recommend",status="200"} ',
                 'recsys_requests_total{method="POST",route="/recommend",status="200"} ',
                 'recsys_requests_total{method="POST",route="/admin/reload",status="401"} ',
                 'recsys_reloads_total{outcome="failed"} '):
        assert line in text, line
    # 20 items from max(k, candidates=200) candidates over 200 items: 180 over-fetched each time.
    assert 'recsys_candidates_overfetched_bucket{le="50.0"} 0.0' in text


def test_json_logs_carry_the_request_id_and_no_personal_data_but_the_user_id(client, server):
    features = {"user_age": 41, "user_gender": "female", "user_occupation": "teacher",
                "city_code": "secret-city-4711", "device_type": "mobile"}
    r = client.post("/recommend", json={"user_id": "new-user-1", "k": 3, "user_features": features},
                    headers={"X-Request-ID": "ops-test-42"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "ops-test-42" and "fallback" not in r.json()
    r = client.post("/recommend", json=BODY, headers={"X-Request-ID": "bad id; " + "x" * 100})
    generated = r.headers["x-request-id"]
    assert len(generated) == 32 and "bad" not in generated
    lines = wait_until(lambda: [json.loads(ln) for ln in server.output().splitlines() if ln.startswith("{")
                                and ("ops-test-42" in ln or generated in ln)] or None)
    tagged = [ln for ln in lines if ln.get("request_id") == "ops-test-42" and ln["logger"] == "recsys.access"]
    assert tagged and tagged[0]["user_id"] == "new-user-1" and tagged[0]["status"] == 200
    assert tagged[0]["route"] == "/recommend" and tagged[0]["latency_ms"] > 0 and tagged[0]["model_version"] == V1
    log = server.output()
    assert "secret-city-4711" not in log and "127.0.0.1" not in log.replace("http://127.0.0.1", "")


def test_sigterm_exits_0(root):
    """A server of its own: the module's server must outlive this test, whatever the order."""
    server = start_serve(root, RECSYS_LOG_LEVEL="info")
    try:
        server.wait_ready()
        assert server.stop() == 0
        assert "Finished server process" in server.output()
    finally:
        server.kill()
