"""Shared fixtures: the article's data set, trained once, indexed once, for the session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def recsys(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `recsys` command line in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "recsys", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"recsys {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def seed_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "seed"
    recsys("simulate", "--profile", "seed", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def seed_artifacts(seed_data, tmp_path_factory) -> Path:
    """An artifact root with one trained and indexed version of the article's model."""
    root = tmp_path_factory.mktemp("artifacts")
    recsys("train", "--data", str(seed_data), "--out", str(root), "--epochs", "3")
    recsys("build-index", "--artifacts", str(root))
    return root
