"""`recsys train --distributed`: two worker processes on loopback train one model together."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from recsys.artifacts.errors import ConfigError
from recsys.model.training import multiworker
from tests.conftest import ROOT
from tests.service.servers import free_port

RECSYS = [sys.executable, "-m", "recsys"]


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def simulate(out, seed: int = 0):
    subprocess.run([*RECSYS, "simulate", "--profile", "realistic", "--users", "400", "--items", "300",
                    "--interactions", "8000", "--seed", str(seed), "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def small_realistic(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("mw") / "data")


def run_workers(datas, tmp_path, *args: str, timeout: float = 240) -> list[tuple[int, str, str]]:
    """`recsys train --distributed` on loopback, worker i on datas[i]; (exit code, stdout, stderr) each."""
    ports = [free_port() for _ in datas]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    procs = [subprocess.Popen([*RECSYS, "train", "--data", str(data), "--out", str(tmp_path / f"out{i}"),
                               "--distributed", *args], cwd=ROOT, env={**env, "TF_CONFIG": tf_config(ports, i)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, data in enumerate(datas)]
    deadline = time.monotonic() + timeout  # one deadline for all: a hang costs `timeout`, not a multiple
    try:
        outputs = [p.communicate(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


@pytest.mark.slow  # multi-process: two training workers over loopback
def test_two_workers_train_one_model(small_realistic, tmp_path):
    results = run_workers([small_realistic] * 2, tmp_path, "--epochs", "3", "--batch-size", "256")
    fingerprints, losses = [], []
    for i, (code, out, err) in enumerate(results):
        assert code == 0, f"worker {i}:\n{err[-3000:]}"
        lines = [line for line in err.splitlines() if line.strip()]
        assert all(line.startswith(f"worker {i}/2: ") for line in lines), lines[:3]
        fingerprints.append(re.search(r"weights sha256 ([0-9a-f]{64})", err).group(1))
        losses.append([float(x) for x in re.findall(r"epoch \d+/3  ctr_loss ([\d.]+)", err)])
        result = json.loads(out.strip().splitlines()[-1])
        assert (result["version"] is None) == (i == 1)  # only the chief writes a version
    assert fingerprints[0] == fingerprints[1]  # bit-identical weights: one model, trained together
    assert losses[0] == losses[1] and len(losses[0]) == 3
    assert losses[0][-1] < losses[0][0]  # the all-reduced click loss went down
    assert len(list((tmp_path / "out0").iterdir())) == 1 and not (tmp_path / "out1").exists()


@pytest.mark.slow  # multi-process: two training workers over loopback
def test_workers_with_different_data_are_refused(small_realistic, tmp_path):
    other = simulate(tmp_path / "other", seed=1)
    for i, (code, _, err) in enumerate(run_workers([small_realistic, other], tmp_path, timeout=120)):
        assert code == 2, err[-2000:]
        assert f"recsys: error: worker {i}: the workers loaded different data sets" in err
    assert not (tmp_path / "out0").exists()


def test_without_tf_config_it_is_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    r = subprocess.run([*RECSYS, "train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--distributed"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("recsys: error: --distributed needs TF_CONFIG")


@pytest.mark.parametrize("value, message", [
    ("{not json", "TF_CONFIG is not a cluster spec"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "index in 0..0"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "only `worker`"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
])
def test_a_bad_tf_config_is_refused_with_the_reason(value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        multiworker.read_tf_config({"TF_CONFIG": value})


def test_read_tf_config_and_shard():
    assert multiworker.read_tf_config({"TF_CONFIG": tf_config([1, 2, 3], 2)}) == (2, 3)
    with pytest.raises(ConfigError):
        multiworker.read_tf_config({})
    batch = {"user": np.arange(10), "click": np.arange(10) % 2}
    parts = [multiworker.shard(batch, i, 3) for i in range(3)]
    assert sorted(np.concatenate([p["user"] for p in parts]).tolist()) == list(range(10))
    assert parts[1]["user"].tolist() == [1, 4, 7]
