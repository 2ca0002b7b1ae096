"""model/evaluation/learnability.py and its bench: the revealed copy holds the world's parameters, and
the equations' oracle is the world's own truth on the held-out rows."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.learnability import main
from recsys.model.data.dataset import load_dataset, split
from recsys.model.evaluation.learnability import equations, has_priors, reveal
from recsys.artifacts.metrics import auc
from recsys.model.data.world import World
from tests.conftest import recsys


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    out = tmp_path_factory.mktemp("learnability") / "data"
    recsys("simulate", "--profile", "realistic", "--users", "400", "--items", "300", "--interactions", "20000",
           "--seed", "5", "--out", str(out))
    return out


def test_the_revealed_copy_holds_the_worlds_parameters_and_no_ids(realistic, tmp_path):
    world, original = World.load(realistic), load_dataset(realistic)
    reveal(world, original, tmp_path / "revealed")
    revealed = load_dataset(tmp_path / "revealed")
    assert not [f for f in revealed.spec.features if f.kind == "id"]
    items = revealed.items.set_index(revealed.items["item_id"].astype(int))
    taste = items[[f"true_item_taste_{k}" for k in range(world.item_taste.shape[1])]].to_numpy()
    assert np.allclose(taste, world.item_taste[items.index - 1], atol=1e-6)
    assert np.allclose(items["true_quality"], world.item_quality[items.index - 1])
    users = revealed.users.set_index(revealed.users["user_id"].astype(int))
    assert np.allclose(users["true_user_taste_3"], world.user_taste[users.index - 1, 3], atol=1e-6)
    assert {"region", "age", "device"} <= set(revealed.users.columns)  # what the features imply stays
    assert revealed.interactions[["user_id", "item_id", "click", "conversion"]].astype(str).equals(
        original.interactions[["user_id", "item_id", "click", "conversion"]].astype(str))


def test_the_equations_oracle_is_the_worlds_truth_on_the_held_out_rows(realistic):
    world, ds = World.load(realistic), load_dataset(realistic)
    result = equations(world, ds, test_size=0.2, seed=42, truth=pd.read_parquet(realistic / "truth.parquet"))
    rows = ds.interactions.iloc[split(len(ds.interactions), 0.2, 42)[1]]
    clicked = rows[rows["click"] == 1]
    # The truth at each row's time (conversions do not depend on the session's intent).
    truth = world.p_conversion(clicked["user_id"].astype(int), clicked["item_id"].astype(int),
                               at=clicked["timestamp"].to_numpy())
    assert result["oracle"]["cvr_auc"] == pytest.approx(auc(clicked["conversion"].to_numpy(), truth), abs=1e-4)
    # Without truth.parquet: the world at the rows' times (their intent, which only clicks feel, unknown).
    assert equations(world, ds, 0.2, 42)["oracle"]["cvr_auc"] == result["oracle"]["cvr_auc"]
    assert result["held_out"] == {"rows": len(rows), "clicks": len(clicked)}
    # Without each user's own deviations the conversion equations can only lose ranking power.
    assert result["equations"]["cvr_auc"] < result["oracle"]["cvr_auc"]


@pytest.mark.slow  # a quality run: trains two models
def test_it_trains_both_copies_and_prints_json(realistic, capsys):
    assert main(["--data", str(realistic)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"observed", "revealed", "equations", "oracle", "held_out"}
    for name in ("observed", "revealed"):
        assert set(result[name]) == {"ctr_auc", "cvr_auc", "ctcvr_auc"}
        assert all(0.0 < x < 1.0 for x in result[name].values())


def test_has_priors(realistic, tmp_path):
    assert has_priors(realistic) and not has_priors(tmp_path)


def test_a_directory_without_a_world_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "world.npz not found" in err
