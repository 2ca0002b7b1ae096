"""A reload of the served version after it broke: 409, the served version keeps serving, the
reason said; never a silent fallback to an older version. Through a real `recsys serve`."""

from __future__ import annotations

import json
import os
import shutil
import signal

import httpx
import pytest

from recsys.artifacts import version as layout
from tests.artifacts.versions import clone_version
from tests.service.servers import TOKEN, start_serve, wait_until

V1, V2 = "20300201T000000000000", "20300202T000000000000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def trained(seed_artifacts):
    return layout.resolve(seed_artifacts, need_index=True)


@pytest.fixture(scope="module")
def root(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("broken-reload")
    clone_version(trained, root, V1)
    clone_version(trained, root, V2)
    layout.set_current(root, V2)
    return root


@pytest.fixture(scope="module")
def server(root):
    server = start_serve(root, RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_LOG_LEVEL="info")
    server.wait_ready()
    yield server
    server.kill()


@pytest.fixture
def client(server, root, trained):
    """Serving a whole V2 again (a previous case damaged it)."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
        shutil.rmtree(root / V2, ignore_errors=True)
        clone_version(trained, root, V2)
        layout.set_current(root, V2)
        r = client.post("/admin/reload", headers=AUTH)
        assert r.status_code == 200 and r.json()["model_version"] == V2, r.text
        yield client


def still_serving_v2(client) -> None:
    assert client.get("/readyz").json()["model_version"] == V2
    r = client.post("/recommend", json={"user_id": 7, "k": 5})
    assert r.status_code == 200 and r.json()["model_version"] == V2 and len(r.json()["items"]) == 5


def write(path, text):
    os.chmod(path, 0o644)
    path.write_text(text)


DAMAGE = {  # what was done to the served V2 -> what the refusal says
    "manifest deleted": (lambda v: (v / "manifest.json").unlink(), "not a complete version"),
    "index manifest deleted": (lambda v: (v / "index" / "manifest.json").unlink(), "has no complete index"),
    "index deleted": (lambda v: shutil.rmtree(v / "index"), "has no complete index"),
    "version deleted": (lambda v: shutil.rmtree(v), "not a complete version"),
    "manifest {}": (lambda v: write(v / "manifest.json", "{}"), "field 'files': missing"),
    "manifest null": (lambda v: write(v / "manifest.json", "null"), "expected a JSON object, got null"),
    "manifest without version": (
        lambda v: write(v / "manifest.json", json.dumps({k: x for k, x in json.loads(
            (v / "manifest.json").read_text()).items() if k != "version"})), "field 'version': missing"),
    "index manifest dim a string": (
        lambda v: write(v / "index" / "manifest.json", json.dumps(dict(json.loads(
            (v / "index" / "manifest.json").read_text()), dim="32"))), "field 'dim': Input should be a valid integer"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_reload_of_the_broken_served_version_is_refused(client, root, case):
    damage, reason = DAMAGE[case]
    damage(root / V2)
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 409, r.text
    message = r.json()["message"]
    assert f"still serving {V2}" in message and reason in message, message
    assert V1 not in message.replace(str(root), "")  # no word of the older version
    still_serving_v2(client)


def test_sighup_after_the_served_version_is_deleted_keeps_serving_it(client, server, root):
    shutil.rmtree(root / V2)
    mark = len(server.output())
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_until(lambda: "model load failed" in server.output()[mark:], timeout=30)
    assert f"names {V2}, which is not a complete version" in server.output()[mark:]
    still_serving_v2(client)
