"""`recsys prune`: old versions go; `current`, the newest ones and any being served stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from recsys.artifacts import version as store
from recsys.artifacts.errors import ArtifactError
from tests.artifacts.test_current import make_version
from tests.conftest import recsys

NAMES = [f"2026010{d}T000000000000" for d in range(1, 7)]


def versions(root):
    return [v.name for v in store.list_versions(root)]


def test_keeps_the_newest_and_current(tmp_path):
    for name in NAMES:
        make_version(tmp_path, name)
    store.set_current(tmp_path, NAMES[0])  # pinned back to the oldest
    out = store.prune(tmp_path, keep=2)
    assert versions(tmp_path) == [NAMES[0], *NAMES[-2:]]
    assert out["removed"] == NAMES[1:4] and out["kept"] == versions(tmp_path) and out["in_use"] == []
    assert store.read_current(tmp_path) == NAMES[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half removed left behind
    assert store.prune(tmp_path, keep=2)["removed"] == []  # idempotent


def test_keeps_the_newest_indexed_version_without_a_pointer(tmp_path):
    make_version(tmp_path, NAMES[0])
    make_version(tmp_path, NAMES[1])
    make_version(tmp_path, NAMES[2], index=False)  # trained, not indexed yet
    store.prune(tmp_path, keep=1)
    assert versions(tmp_path) == NAMES[1:3]  # NAMES[1] is what serving falls back to


def test_a_version_held_by_another_process_survives(tmp_path):
    for name in NAMES[:4]:
        make_version(tmp_path, name)
    store.set_current(tmp_path, NAMES[3])
    held = tmp_path / NAMES[1]
    code = ("import sys, time; from recsys.artifacts.version import hold; f = hold(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(held)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        out = store.prune(tmp_path, keep=1)
        assert out["in_use"] == [NAMES[1]] and out["removed"] == [NAMES[0], NAMES[2]]
        assert versions(tmp_path) == [NAMES[1], NAMES[3]]
        store.verify(held)  # every file still there
    finally:
        proc.kill()
        proc.wait()
    assert store.prune(tmp_path, keep=1)["removed"] == [NAMES[1]]  # released with the process


def test_stale_staging_leftovers_go_fresh_ones_stay(tmp_path):
    make_version(tmp_path, NAMES[0])
    old = tmp_path / f".{NAMES[1]}.tmp-abc"
    (old / "user_tower").mkdir(parents=True)
    (old / "user_tower" / "w.npz").write_bytes(b"x")
    fresh = tmp_path / f".{NAMES[2]}.tmp-def"
    fresh.mkdir()
    hour_ago = time.time() - store.STALE_SECONDS - 60
    for p in (old / "user_tower" / "w.npz", old / "user_tower", old):
        os.utime(p, (hour_ago, hour_ago))
    # A staging directory whose top level is old but which is still being written is kept.
    busy = tmp_path / f".{NAMES[3]}.tmp-ghi"
    busy.mkdir()
    (busy / "new").write_bytes(b"x")
    os.utime(busy, (hour_ago, hour_ago))
    out = store.prune(tmp_path, keep=1)
    assert out["stale_removed"] == [old.name] and not old.exists() and fresh.exists() and busy.exists()


def test_bad_input(tmp_path):
    with pytest.raises(ArtifactError, match="at least 1"):
        store.prune(tmp_path, keep=0)
    with pytest.raises(ArtifactError, match="artifact root not found"):
        store.prune(tmp_path / "missing", keep=1)


def test_command_line(tmp_path):
    for name in NAMES[:3]:
        make_version(tmp_path, name)
    store.set_current(tmp_path, NAMES[2])
    proc = recsys("prune", "--artifacts", str(tmp_path), "--keep", "1")
    out = json.loads(proc.stdout)
    assert out["removed"] == NAMES[:2] and out["kept"] == [NAMES[2]] and out["current"] == NAMES[2]
    for args, message in ((["--keep", "0"], "recsys: error: --keep must be at least 1, got 0"),
                          (["--keep", "2", "--artifacts", str(tmp_path / "nope")], "artifact root not found")):
        proc = recsys("prune", "--artifacts", str(tmp_path), *args, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
