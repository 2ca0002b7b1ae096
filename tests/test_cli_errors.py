"""Every way a user can get a command wrong ends in one line `recsys: error: ...` and exit 2,
never a traceback. Each case: a setup that returns the argv (and optional environment or a
file-size limit), run as a real subprocess."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recsys.artifacts import version as layout
from tests.artifacts.versions import clone_version
from tests.conftest import ROOT

V = "20300301T000000000000"


def run(argv: list[str], env: dict | None = None, fsize: int | None = None) -> subprocess.CompletedProcess:
    def limit():  # a full disk: writes past `fsize` bytes fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    return subprocess.run([sys.executable, "-m", "recsys", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**full_env, **(env or {})}, preexec_fn=limit if fsize else None)


def assert_one_error_line(proc: subprocess.CompletedProcess, quiet: bool, expect: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in lines if line.startswith("recsys: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    if quiet:  # nothing ran before the error: it is all there is
        assert lines == errors, proc.stderr
    assert expect in errors[0], errors[0]


@pytest.fixture(scope="module")
def root(seed_artifacts, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    clone_version(layout.resolve(seed_artifacts, need_index=True), root, V)
    layout.set_current(root, V)
    return root


def data_copy(seed_data, tmp_path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(seed_data, out)
    return out


def huge_user_value(seed_data, tmp_path):
    d = data_copy(seed_data, tmp_path)
    users = pd.read_csv(d / "users.csv")
    numeric = next(c for c in users.columns if c != "user_id" and pd.api.types.is_numeric_dtype(users[c]))
    users[numeric] = users[numeric].astype(float)
    users.loc[3, numeric] = 1e300  # finite in float64, inf in float32
    users.to_csv(d / "users.csv", index=False)
    return ["train", "--data", str(d), "--out", str(tmp_path / "a")], {}


def one_interaction(seed_data, tmp_path):
    d = data_copy(seed_data, tmp_path)
    pd.read_csv(d / "interactions.csv").head(1).to_csv(d / "interactions.csv", index=False)
    return ["train", "--data", str(d), "--out", str(tmp_path / "a")], {}


def nested_toml(seed_data, tmp_path):
    d = data_copy(seed_data, tmp_path)
    (d / "features.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    return ["train", "--data", str(d), "--out", str(tmp_path / "a")], {}


def unreadable_toml(seed_data, tmp_path):
    d = data_copy(seed_data, tmp_path)
    (d / "features.toml").unlink()
    (d / "features.toml").mkdir()  # unreadable even by root
    return ["train", "--data", str(d), "--out", str(tmp_path / "a")], {}


def version_copy(root, tmp_path) -> Path:
    r = tmp_path / "root"
    shutil.copytree(root, r)
    return r


def manifest_null(root, tmp_path):
    r = version_copy(root, tmp_path)
    (r / V / "manifest.json").write_text("null")
    return r


def manifest_unreadable(root, tmp_path):
    r = version_copy(root, tmp_path)
    (r / V / "manifest.json").write_bytes(b"\xff\xfe{")
    return r


def busy_port(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    busy_port.sock = sock  # held until the module ends
    return sock.getsockname()[1]


def other_data_set(tmp_path):
    out = tmp_path / "realistic"
    proc = run(["simulate", "--profile", "realistic", "--users", "300", "--items", "400", "--interactions", "3000",
                "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    return out


# name -> (setup(seed_data, root, tmp_path) -> (argv, env), quiet, text the error line holds, file-size limit)
CASES = {
    "learning rate nan": (lambda d, r, t: (["train", "--data", "x", "--out", "y", "--learning-rate", "nan"], {}),
                          True, "argument --learning-rate: expected a finite number, got 'nan'", None),
    "retrieval weight inf": (lambda d, r, t: (["train", "--data", "x", "--out", "y", "--retrieval-weight", "inf"], {}),
                             True, "argument --retrieval-weight: expected a finite number", None),
    "train seed -1": (lambda d, r, t: (["train", "--data", "x", "--out", "y", "--seed", "-1"], {}),
                      True, "argument --seed: expected an integer in 0..", None),
    "train seed 2**40": (lambda d, r, t: (["train", "--data", "x", "--out", "y", "--seed", str(2**40)], {}),
                         True, "argument --seed", None),
    "simulate seed -5": (lambda d, r, t: (["simulate", "--seed", "-5", "--out", str(t / "s")], {}),
                         True, "argument --seed", None),
    "simulate funnel on the seed profile": (
        lambda d, r, t: (["simulate", "--funnel", "sparse", "--out", str(t / "s")], {}),
        True, "--funnel applies to the realistic profile only", None),
    "simulate unknown funnel": (lambda d, r, t: (["simulate", "--profile", "realistic", "--funnel", "dense",
                                                  "--out", str(t / "s")], {}), True, "argument --funnel", None),
    "unknown flag": (lambda d, r, t: (["train", "--data", "x", "--out", "y", "--epochz", "3"], {}),
                     True, "unrecognized arguments: --epochz 3", None),
    "missing flag": (lambda d, r, t: (["build-index"], {}), True, "the following arguments are required", None),
    "unknown command": (lambda d, r, t: (["trian"], {}), True, "invalid choice: 'trian'", None),
    "no command": (lambda d, r, t: ([], {}), True, "the following arguments are required: COMMAND", None),
    "bad choice": (lambda d, r, t: (["build-index", "--artifacts", "a", "--index", "lsh"], {}),
                   True, "argument --index: invalid choice", None),
    "train out is a file": (lambda d, r, t: (["train", "--data", str(d), "--out", "/etc/hostname"], {}),
                            True, "/etc/hostname: exists and is not a directory", None),
    "simulate out in /proc": (lambda d, r, t: (["simulate", "--out", "/proc/x"], {}), True, "/proc/x", None),
    "users.csv value beyond float32": (lambda d, r, t: huge_user_value(d, t), True,
                                       "data row 4, column", None),
    "one interaction": (lambda d, r, t: one_interaction(d, t), False, "at least 2 and 1 are needed", None),
    "features.toml nested 100k deep": (lambda d, r, t: nested_toml(d, t), True, "nested too deep", None),
    "features.toml unreadable": (lambda d, r, t: unreadable_toml(d, t), True, "features.toml: unreadable", None),
    "build-index manifest null": (lambda d, r, t: (["build-index", "--artifacts", str(manifest_null(r, t))], {}),
                                  True, "expected a JSON object, got null", None),
    "build-index manifest unreadable": (
        lambda d, r, t: (["build-index", "--artifacts", str(manifest_unreadable(r, t)), "--version", V], {}),
        True, "manifest.json: unreadable", None),
    "serve manifest unreadable": (lambda d, r, t: (["serve", "--artifacts", str(manifest_unreadable(r, t)),
                                                    "--port", "0"], {}), True, "manifest.json: unreadable", None),
    "build-index version outside the root": (
        lambda d, r, t: (["build-index", "--artifacts", str(r), "--version", f"../other/{V}"], {}),
        True, "is not a version name", None),
    "build-index absolute version": (lambda d, r, t: (["build-index", "--artifacts", str(r), "--version",
                                                       str(r / V)], {}), True, "is not a version name", None),
    "serve RECSYS_VERSION outside the root": (
        lambda d, r, t: (["serve", "--artifacts", str(r), "--port", "0"], {"RECSYS_VERSION": f"../../x/{V}"}),
        True, "is not a version name", None),
    "serve busy port": (lambda d, r, t: (["serve", "--artifacts", str(r), "--port", str(busy_port(t))], {}),
                        True, "cannot listen on 127.0.0.1:", None),
    "serve unresolvable host": (lambda d, r, t: (["serve", "--artifacts", str(r), "--host", "no-such-host.invalid",
                                                  "--port", "0"], {}), True, "cannot be resolved", None),
    "evaluate another data set": (lambda d, r, t: (["evaluate", "--artifacts", str(r), "--data",
                                                    str(other_data_set(t)), "--max-users", "50"], {}),
                                  False, "is this the data set the model was trained on?", None),
    "build-index disk full": (lambda d, r, t: (["build-index", "--artifacts", str(version_copy(r, t)),
                                                "--version", V], {}), False, "cannot write the index", 16_000),
    "train disk full": (lambda d, r, t: (["train", "--data", str(d), "--out", str(t / "a"), "--epochs", "1"], {}),
                        False, "cannot write the version", 20_000),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_command_line_is_one_error_line_and_exit_2(case, seed_data, root, tmp_path):
    setup, quiet, expect, fsize = CASES[case]
    argv, env = setup(seed_data, root, tmp_path)
    assert_one_error_line(run(argv, env, fsize), quiet, expect)


def test_a_diverging_training_writes_no_version(seed_data, tmp_path):
    proc = run(["train", "--data", str(seed_data), "--out", str(tmp_path / "a"), "--epochs", "1",
                "--learning-rate", "1e30", "--retrieval-weight", "1e30"])
    assert_one_error_line(proc, False, "training diverged")
    assert layout.list_versions(tmp_path / "a") == []


def test_build_index_refuses_non_finite_item_vectors(root, tmp_path):
    r = version_copy(root, tmp_path)
    layout.set_current(r, V)
    before = layout.index_dir(r / V)
    items = pd.read_parquet(r / V / "items.parquet")
    numeric = [c for c in items.columns if c != "item_id" and pd.api.types.is_numeric_dtype(items[c])]
    assert numeric, "the seed items need a numeric feature for this case"
    items.loc[0, numeric[0]] = float("inf")  # what a NaN model gives for every item, planted in one
    items.to_parquet(r / V / "items.parquet", index=False)
    manifest = json.loads((r / V / "manifest.json").read_text())
    layout.write_manifest(r / V, {k: v for k, v in manifest.items() if k != "files"}, skip=("index",))
    proc = run(["build-index", "--artifacts", str(r), "--version", V])
    assert_one_error_line(proc, False, "non-finite vectors for 1 of")
    assert layout.index_dir(r / V) == before and layout.read_current(r) == V


def can_mount() -> bool:
    probe = Path("/tmp") / f"recsys-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    except FileNotFoundError:
        return False
    finally:
        probe.rmdir()


@pytest.fixture
def readonly_root(root, tmp_path):
    if not can_mount():
        pytest.skip("mounting a tmpfs is not permitted here (needs root / CAP_SYS_ADMIN)")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], check=True)
    try:
        shutil.copytree(root, mnt, dirs_exist_ok=True)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_build_index_on_a_read_only_root(readonly_root):
    proc = run(["build-index", "--artifacts", str(readonly_root), "--version", V])
    assert_one_error_line(proc, True, "Read-only file system")


def test_train_into_a_read_only_root(seed_data, readonly_root):
    proc = run(["train", "--data", str(seed_data), "--out", str(readonly_root), "--epochs", "1"])
    assert_one_error_line(proc, False, "Read-only file system")
    assert layout.list_versions(readonly_root) == [readonly_root / V]


@pytest.fixture
def immutable_root(root, tmp_path):
    """A root in which no file can be created (chattr +i; root ignores permission bits), its version writable."""
    r = version_copy(root, tmp_path)
    (r / "current").unlink()  # so build-index has a pointer to write
    if subprocess.run(["chattr", "+i", str(r)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    try:
        yield r
    finally:
        subprocess.run(["chattr", "-i", str(r)], check=False)


def test_build_index_where_current_cannot_be_switched(immutable_root):
    """The index is written into the version, then switching `current` fails: one line, exit 2,
    no `current` appeared, and the version still loads."""
    r = immutable_root
    proc = run(["build-index", "--artifacts", str(r), "--version", V])
    assert_one_error_line(proc, False, "Operation not permitted")
    assert layout.read_current(r) is None and layout.Version.open(r, need_index=True).index().ann.ntotal > 0
