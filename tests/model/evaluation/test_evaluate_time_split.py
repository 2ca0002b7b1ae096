"""Training with the time split and `recsys evaluate` hold out the same rows, and evaluate says so."""

import json

import numpy as np
import pytest

from recsys.artifacts.version import Version
from recsys.model.data.dataset import load_dataset, split_rows
from tests.conftest import recsys


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("time-split")
    data = root / "data"
    recsys("simulate", "--profile", "realistic", "--users", "300", "--items", "120", "--interactions", "9000",
           "--out", str(data))
    artifacts = root / "artifacts"
    recsys("train", "--data", str(data), "--out", str(artifacts), "--epochs", "1", "--split", "time")
    out = json.loads(recsys("evaluate", "--artifacts", str(artifacts), "--data", str(data), "--k", "10").stdout)
    return data, artifacts, out


def test_evaluate_holds_out_the_rows_training_held_out(trained):
    data, artifacts, out = trained
    manifest = Version.open(artifacts).manifest
    assert manifest["config"]["split"] == "time" and out["split"] == "time"
    ds = load_dataset(data)
    _, test = split_rows(ds.interactions, "time", manifest["config"]["test_size"], manifest["config"]["seed"])
    assert out["n_rows"] == len(test)
    # The AUCs the Keras model measured on its held-out rows in training, from the exported model on evaluate's.
    for key in ("ctr_auc", "cvr_auc", "ctcvr_auc"):
        assert abs(out[key] - manifest["metrics"][key]) < 1e-3, key
    # Held out by time: the evaluated rows are each user's latest.
    inter = ds.interactions.assign(held=np.isin(np.arange(len(ds.interactions)), test))
    by_user = inter.groupby("user_id")
    assert (by_user.apply(lambda r: r.loc[~r["held"], "timestamp"].max() <= r.loc[r["held"], "timestamp"].min()
                          if r["held"].any() and (~r["held"]).any() else True)).all()


def test_item_knn_ranks_beside_the_model_and_cold_users_are_counted(trained):
    data, artifacts, out = trained
    knn = out["baselines"]["item_knn"]
    assert 0 <= knn["recall@10"] <= 1 and "true_ndcg@50_by_ctcvr" in knn and "ctr_auc" not in knn
    cold = out["cold_users"]
    # Independently: the ranked users (every user with a held-out click here) with at most 2 training clicks.
    ds = load_dataset(data)
    cfg = Version.open(artifacts).manifest["config"]
    train, test = split_rows(ds.interactions, "time", cfg["test_size"], cfg["seed"])
    held, kept = ds.interactions.iloc[test], ds.interactions.iloc[train]
    ranked = held.loc[held["click"] == 1, "user_id"].unique()
    clicks = kept[kept["click"] == 1].groupby("user_id").size().reindex(ranked).fillna(0)
    assert out["users_ranked"] == len(ranked) and cold["users_ranked"] == int((clicks <= 2).sum()) > 0
    assert {"model", "popularity", "item_knn", "random", "oracle"} <= set(cold)
    assert 0 <= cold["item_knn"]["recall@10"] <= 1
