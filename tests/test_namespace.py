"""What `pip install .` puts into site-packages: the one `recsys` namespace, every module in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a copy of the sources (the build leaves build/ and egg-info behind)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name in ("pyproject.toml", config["project"]["readme"]):
        shutil.copy(ROOT / name, src / name)
    for folder in set(config["tool"]["setuptools"]["package-dir"].values()):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # No build isolation: setuptools comes from the dev extra, so no download and ~2 s.
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           str(src), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [built] = out.glob("recsys-*.whl")
    with zipfile.ZipFile(built) as whl:
        yield whl


def test_the_wheel_installs_one_top_level_name(wheel):
    top = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"recsys"}
    assert not [n for n in wheel.namelist() if n.endswith(".pth")]  # no path hooks adding other names
    [meta] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "recsys = recsys.cli:main" in wheel.read(meta).decode()


def test_every_package_folder_is_in_the_wheel(wheel):
    """A sub-package left out of pyproject's `packages` list would be missing from an install."""
    names = set(wheel.namelist())
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    expected = set()
    for package, folder in package_dir.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                expected.add("/".join((*package.split("."), *path.relative_to(ROOT / folder).parts)))
    assert {"recsys/service/app.py", "recsys/model/training/train.py", "recsys/cli.py"} <= expected
    assert not (missing := sorted(expected - names)), f"not in the wheel (add them to `packages`): {missing}"
