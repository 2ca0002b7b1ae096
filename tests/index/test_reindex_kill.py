"""A build-index killed at any step, or run twice at once, leaves `current` and the version
it names servable."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from recsys.artifacts import version as layout
from tests.artifacts.versions import clone_version
from tests.conftest import ROOT, recsys

V1, V2 = "20260101T000000000000", "20260102T000000000000"
RENAMES = "rename,renameat,renameat2"


def servable(root) -> str:
    """The version a restart would serve, opened, verified and its index loaded."""
    opened = layout.Version.open(root, need_index=True)
    index = opened.index()
    assert index.ann.ntotal == len(index.item_ids) > 0
    return opened.name


def strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    return subprocess.run(["strace", "-f", "-o", "/dev/null", "true"], capture_output=True).returncode == 0


@pytest.fixture
def served_root(seed_artifacts, tmp_path):
    root = tmp_path / "artifacts"
    src = layout.resolve(seed_artifacts, need_index=True)
    clone_version(src, root, V1)
    clone_version(src, root, V2)
    layout.set_current(root, V2)
    return root


@pytest.mark.slow
@pytest.mark.skipif(not strace_works(), reason="strace is not installed or ptrace is not permitted here")
def test_a_reindex_killed_before_any_rename_leaves_current_servable(served_root):
    """SIGKILL at the n-th rename of `build-index --version V2` while V2 is current, for every n
    until a run gets through them all."""
    root = served_root
    for n in range(1, 20):
        proc = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={RENAMES}",
                               "-e", f"inject={RENAMES}:signal=SIGKILL:when={n}",
                               sys.executable, "-m", "recsys", "build-index", "--artifacts", str(root),
                               "--version", V2, "--index", "flat"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert layout.read_current(root) == V2, (n, proc.stderr)
        assert servable(root) == V2, n
        if proc.returncode == 0:
            break
        assert proc.returncode in (-9, 137), (n, proc.returncode, proc.stderr)
    else:
        pytest.fail("build-index never got past its renames")
    assert n >= 3, "the kill points covered staging, the index switch and `current`"
    # Nothing a killed run left is still there once a run completes: one index, no staging.
    left = sorted(p.name for p in (root / V2).iterdir() if "index" in p.name)
    assert left in ([".index.lock", "current_index", layout.index_dir(root / V2).name],), left


def test_a_second_build_index_on_the_same_version_stops_at_once(served_root):
    root = served_root
    before = layout.index_dir(root / V2)
    with layout.index_lock(root / V2):
        proc = recsys("build-index", "--artifacts", str(root), "--version", V2, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"recsys: error: {root / V2}: another build-index is writing this version's index; "
                     "wait for it to finish"], proc.stderr
    assert layout.index_dir(root / V2) == before and servable(root) == V2
    assert not [p for p in (root / V2).iterdir() if p.name.startswith(".index.") and p.is_dir()]
