"""The command line: real subprocesses, one error line and a non-zero exit on bad input."""

import json
import os
import subprocess
import sys

import pytest

from recsys.artifacts import version as layout
from tests.conftest import ROOT, recsys


@pytest.mark.parametrize("args", [
    ["train", "--data", "/nonexistent/data", "--out", "/tmp/recsys-unused"],
    ["build-index", "--artifacts", "/nonexistent/artifacts"],
    ["serve", "--artifacts", "/nonexistent/artifacts"],
    ["evaluate", "--artifacts", "/nonexistent/artifacts", "--data", "/nonexistent/data"],
    ["serve", "--artifacts", "/nonexistent/artifacts", "--port", "70000"],
])
def test_bad_input_is_one_line_and_exit_2(args):
    proc = recsys(*args, check=False)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("recsys: error:"), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["train", "--data", "x", "--out", "y", "--epochs", "0"], ["simulate"], ["nope"]])
def test_bad_flags_exit_2(args):
    proc = recsys(*args, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_broken_dataset_is_one_line(seed_data, tmp_path):
    import shutil

    data = tmp_path / "d"
    shutil.copytree(seed_data, data)
    (data / "interactions.csv").write_text("user_id,item_id,click,conversion\n1,1,0,1\n")
    proc = recsys("train", "--data", str(data), "--out", str(tmp_path / "a"), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"recsys: error: {data / 'interactions.csv'}: 1 row(s) have a conversion without a click"
    assert not (tmp_path / "a").exists() or layout.list_versions(tmp_path / "a") == []


@pytest.mark.parametrize("module", ["recsys.index.build_index", "index.build_index"])  # installed, and a checkout
def test_module_entry_point_of_build_index_is_the_command(module):
    proc = subprocess.run([sys.executable, "-m", module, "--artifacts", "/nonexistent"], cwd=ROOT,
                          capture_output=True, text=True)
    command = recsys("build-index", "--artifacts", "/nonexistent", check=False)
    assert proc.returncode == command.returncode == 2
    assert proc.stderr == command.stderr and proc.stderr.startswith("recsys: error: /nonexistent: artifact root")


def test_evaluate_reports_the_training_metrics(seed_artifacts, seed_data):
    out = json.loads(recsys("evaluate", "--artifacts", str(seed_artifacts), "--data", str(seed_data)).stdout)
    manifest = layout.read_manifest(layout.resolve(seed_artifacts))
    assert out["rows"] == "held-out split" and out["n_rows"] == 200 and out["split"] == "random"
    # The exported SavedModels + numpy heads reproduce the AUCs the Keras model measured in training.
    for key in ("ctr_auc", "cvr_auc", "ctcvr_auc"):
        assert abs(out[key] - manifest["metrics"][key]) < 1e-3, key
    for k in (10, 50, 100):
        assert 0 <= out[f"recall@{k}"] <= 1 and 0 <= out[f"ndcg@{k}"] <= 1
    assert out["recall@10"] <= out["recall@50"] <= out["recall@100"]


def test_train_writes_a_complete_version(seed_artifacts):
    version = layout.resolve(seed_artifacts, need_index=True)
    manifest = layout.verify(version)
    assert manifest["version"] == version.name and manifest["embedding_dim"] == 32
    assert {"user_tower/saved_model.pb", "item_tower/saved_model.pb", "heads.npz", "users.parquet",
            "items.parquet"} <= set(manifest["files"])
    assert len(manifest["data"]["fingerprint"]) == 16 and manifest["config"]["cvr_loss"] == "masked"
    layout.verify(version / "index")


def test_help_and_flag_errors_do_not_load_tensorflow():
    code = ("import sys\nfrom recsys.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['train', '--data', 'x', '--out', 'y', '--cvr-loss', 'no']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code in (0, 2), e.code\n"
            "print('tensorflow' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "False"
    assert "invalid choice: 'no'" in proc.stderr


def test_an_error_after_tensorflow_loaded_is_still_one_line(seed_data, tmp_path):
    """Without TF_CPP_MIN_LOG_LEVEL in the environment: the command line sets it before TensorFlow loads."""
    import os
    import shutil

    data = tmp_path / "d"
    shutil.copytree(seed_data, data)
    (data / "interactions.csv").write_text("user_id,item_id,click,conversion\n1,1,0,1\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = ("import sys\nfrom recsys.cli import main\ncode = main(sys.argv[1:])\n"
            "print('tensorflow' in sys.modules)\nsys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code, "train", "--data", str(data), "--out", str(tmp_path / "a")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and proc.stdout == "True\n"  # the failing command had loaded TensorFlow
    assert proc.stderr == f"recsys: error: {data / 'interactions.csv'}: 1 row(s) have a conversion without a click\n"


@pytest.mark.parametrize(("flag", "value", "rule"), [
    ("--learning-rate", "-0.1", "must be greater than 0"), ("--learning-rate", "0", "must be greater than 0"),
    ("--retrieval-weight", "-1", "must be 0 or more"), ("--epochs", "0", "expected a positive integer"),
    ("--id-dropout", "1", "must be at least 0 and below 1"), ("--id-dropout", "-0.1", "must be at least 0 and below 1"),
])
def test_range_checks_fail_before_tensorflow_loads(flag, value, rule):
    code = ("import sys\nfrom recsys.cli import main\n"
            f"try:\n    main(['train', '--data', 'x', '--out', 'y', {flag!r}, {value!r}])\n"
            "except SystemExit as e:\n    assert e.code == 2, e.code\n"
            "print('tensorflow' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-1] == "False"
    assert f"argument {flag}: {rule}, got '{value}'" in lines[-2]


def test_version_prints_the_package_version():
    from importlib.metadata import version

    assert recsys("--version").stdout.strip() == f"recsys {version('recsys')}"


@pytest.mark.parametrize("command", [["simulate"], ["convert", "movielens"], ["train"], ["build-index"],
                                     ["evaluate"], ["recommend"], ["serve"], ["report"]])
def test_every_subcommand_help_says_what_it_does_and_its_defaults(command):
    from recsys.cli import parser

    help_text = " ".join(recsys(*command, "--help").stdout.split())
    p = parser(command[0])
    sub = p._subparsers._group_actions[0].choices[command[0]]
    if len(command) > 1:
        sub = sub._subparsers._group_actions[0].choices[command[1]]
    for action in sub._actions:
        if action.option_strings and action.help is not None and action.default not in (None, False) \
                and action.dest != "help":
            assert "default" in (action.help or ""), f"{command} {action.option_strings} hides its default"
    if command == ["train"]:
        assert "preset default: article 10, default 20" in help_text


def test_evaluate_json_is_rounded_and_says_where_metrics_mislead(seed_artifacts, seed_data):
    out = json.loads(recsys("evaluate", "--artifacts", str(seed_artifacts), "--data", str(seed_data)).stdout)

    def floats(value):
        if isinstance(value, float):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from floats(v)

    assert all(round(x, 4) == x for x in floats(out))
    assert out["notes"] and any("AUC" in n for n in out["notes"])


def test_manifest_training_time_is_the_whole_command(seed_artifacts):
    training = layout.read_manifest(layout.resolve(seed_artifacts))["training"]
    assert training["seconds"] > training["fit_seconds"] > 0
    assert set(training["optimizer"]) == {"embedding_tables", "dense_weights"}


# Run as if TensorFlow were not installed (the serving image): a finder ahead of all others
# refuses the name, as a missing package would.
WITHOUT_TENSORFLOW = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoTensorFlow())
from recsys.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how", [["--user-tower", "savedmodel"], []])
def test_savedmodel_user_tower_is_refused_without_tensorflow(tmp_path, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    if not how:
        env["RECSYS_USER_TOWER"] = "savedmodel"
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, "serve", "--artifacts", str(tmp_path),
                           "--port", "1", *how], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("recsys: error: --user-tower savedmodel needs TensorFlow, which this installation "
                           "does not have (serving image); use numpy\n")


def test_numpy_serving_path_imports_no_tensorflow(seed_artifacts):
    code = (WITHOUT_TENSORFLOW.split("from recsys.cli")[0]
            + "from recsys.service.state import load_recommender\n"
              "from recsys.service.settings import Settings\n"
              f"rec = load_recommender(Settings(artifacts={str(seed_artifacts)!r}))\n"
              "assert 'tensorflow' not in sys.modules\n"
              "print(rec.version)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == layout.resolve(seed_artifacts, need_index=True).name


def test_every_subcommand_s_help_opens_with_what_it_does():
    import argparse

    from recsys import cli

    def commands(p: argparse.ArgumentParser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield name, sub
                    yield from commands(sub)

    found = dict(commands(cli.parser("")))
    assert {"train", "build-index", "serve", "apply", "movielens"} <= set(found)
    assert [name for name, sub in found.items() if not sub.description] == []
