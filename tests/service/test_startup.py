"""Start-up refuses artifacts it cannot serve, with the reason, instead of serving garbage."""

from __future__ import annotations

import pytest

from recsys.artifacts import version as layout
from recsys.cli import main
from recsys.service.settings import Settings
from recsys.service.state import State, load_recommender
from tests.artifacts.versions import clone_version, edit_index_manifest, flip_byte
from tests.conftest import recsys
from tests.service.servers import start_serve

V1 = "20300101T000000000000"


@pytest.fixture
def root(seed_artifacts, tmp_path):
    clone_version(layout.resolve(seed_artifacts, need_index=True), tmp_path, V1)
    layout.set_current(tmp_path, V1)
    return tmp_path


@pytest.mark.parametrize("field, value, reason", [
    ("dim", 16, "dim 16 (model: 32)"),
    ("count", 199, "count 199 (model: 200)"),
    ("metric", "l2", "metric 'l2' (model: 'inner_product')"),
])
def test_a_mismatched_pair_is_refused_before_the_port_opens(root, capsys, field, value, reason):
    edit_index_manifest(root / V1, **{field: value})
    assert main(["serve", "--artifacts", str(root), "--port", "1"]) == 2  # port 1: it never gets that far
    err = capsys.readouterr().err.strip()
    assert err == f"recsys: error: {root / V1}: the index does not belong to this model: {reason}"


def test_an_index_of_another_model_version_is_refused_by_the_command(root):
    edit_index_manifest(root / V1, model_version="20290101T000000000000")
    proc = recsys("serve", "--artifacts", str(root), "--port", "1", check=False, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("the index does not belong to this model: "
                                        f"model_version '20290101T000000000000' (model: '{V1}')")


def test_a_corrupt_file_is_refused_before_the_port_opens(root):
    flip_byte(root / V1 / "users.parquet", offset=50)
    proc = recsys("serve", "--artifacts", str(root), "--port", "1", check=False, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"recsys: error: {root / V1}: file users.parquet does not match its checksum"


def test_a_file_that_fails_to_load_stops_the_server_with_the_reason(root):
    """Checksums match (the manifest was written over a broken file), so the failure comes from
    the first load, after the port opened."""
    (root / V1 / "users.parquet").write_bytes(b"not parquet")
    manifest = layout.read_manifest(root / V1)
    manifest.pop("files")
    layout.write_manifest(root / V1, manifest, skip=(layout.INDEX_DIR,))
    server = start_serve(root, RECSYS_LOG_LEVEL="error", RECSYS_LOG_FORMAT="text")
    try:
        code = server.proc.wait(timeout=60)
        out = server.output()
    finally:
        server.kill()
    assert code == 2
    assert out.strip().splitlines()[-1].startswith(f"recsys: error: model failed to load: "
                                                   f"{root / V1 / 'users.parquet'}: unreadable")


def test_the_first_load_uses_the_version_opened_before_the_port_and_a_reload_opens_afresh(root, monkeypatch):
    opened = layout.Version.open(root, need_index=True)
    verified = []
    verify = layout.verify
    monkeypatch.setattr(layout, "verify", lambda directory, *args: verified.append(directory) or verify(directory, *args))
    state = State(Settings(artifacts=root), load_recommender)
    state.opened = opened
    state.start()
    assert state.error is None and state.recommender.version == V1 and verified == []
    state.reload()
    assert state.recommender.version == V1 and verified == [root / V1, root / V1 / layout.INDEX_DIR]
