"""Start-up refuses artifacts it cannot serve, with the reason, instead of serving garbage."""

from __future__ import annotations

import pytest

from recsys.artifacts import store
from recsys.cli import main
from tests.artifacts.versions import clone_version, edit_index_manifest, flip_byte
from tests.conftest import recsys
from tests.service.servers import start_serve

V1 = "20300101T000000000000"


@pytest.fixture
def root(seed_artifacts, tmp_path):
    clone_version(store.resolve(seed_artifacts, need_index=True), tmp_path, V1)
    store.set_current(tmp_path, V1)
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


def test_a_corrupt_file_found_while_loading_stops_the_server_with_the_reason(root):
    flip_byte(root / V1 / "users.parquet", offset=50)
    server = start_serve(root, RECSYS_LOG_LEVEL="error", RECSYS_LOG_FORMAT="text")
    try:
        code = server.proc.wait(timeout=60)
        out = server.output()
    finally:
        server.kill()
    assert code == 2
    assert out.strip().splitlines()[-1] == (f"recsys: error: model failed to load: {root / V1}: "
                                            "file users.parquet does not match its checksum")
