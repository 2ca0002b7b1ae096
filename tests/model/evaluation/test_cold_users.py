"""The cold users' block: the same ranking metrics, over the users with few training clicks only."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from recsys.model.evaluation.evaluate import _ranking_metrics
from tests.model.evaluation.test_true_ndcg import Scorer, World


def test_cold_metrics_are_the_metrics_of_those_users_alone():
    users, items = np.array([str(u) for u in range(9)]), np.array([f"i{j}" for j in range(60)])
    world = World(users, items, seed=3)
    rng = np.random.default_rng(4)
    scores = {"ctcvr": world.ctcvr + rng.normal(scale=0.3, size=world.ctcvr.shape), "ctr": world.ctr}
    catalogue = SimpleNamespace(ids=items, position=pd.Series(np.arange(60), index=items))
    positives = pd.Series({u: {f"i{rng.integers(60)}", f"i{rng.integers(60)}"} for u in users})
    seen = {u: {f"i{rng.integers(60)}"} for u in users}
    cold = np.array([True, False, False, True, False, True, False, False, True])
    args = (positives, seen, catalogue, (5, 20), "ctcvr", world)
    out = _ranking_metrics(Scorer(scores), users, *args, batch=4, cold=cold)  # chunks mix cold and warm users
    alone = _ranking_metrics(Scorer(scores), users[cold], *args, batch=4)
    assert set(out["cold_users"]) == set(alone) and "recall@5" in alone and "true_ndcg@50_by_ctr" in alone
    for key, value in alone.items():
        assert np.isclose(out["cold_users"][key], value), key
    everyone = _ranking_metrics(Scorer(scores), users, *args, batch=4)
    assert "cold_users" not in everyone and not np.isclose(everyone["ndcg@20"], alone["ndcg@20"])
    assert "cold_users" not in _ranking_metrics(Scorer(scores), users, *args, cold=np.zeros(9, bool))


def test_the_ranking_by_ctr_is_scored_beside_the_objective_on_any_data():
    users, items = np.array([str(u) for u in range(6)]), np.array([f"i{j}" for j in range(40)])
    world = World(users, items, seed=5)
    rng = np.random.default_rng(6)
    scores = {"ctcvr": rng.normal(size=world.ctr.shape), "ctr": world.ctr}
    catalogue = SimpleNamespace(ids=items, position=pd.Series(np.arange(40), index=items))
    positives = pd.Series({u: {f"i{int(np.argmax(world.ctr[int(u)]))}"} for u in users})  # each user's best pCTR
    seen = {u: set() for u in users}
    args = (positives, seen, catalogue, (1, 5))
    by_objective = _ranking_metrics(Scorer(scores), users, *args, "ctcvr")  # no world: real data
    by_ctr = _ranking_metrics(Scorer(scores), users, *args, "ctr")
    assert by_objective["recall@1_by_ctr"] == by_ctr["recall@1"] == 1.0  # pCTR ranks each positive first
    assert by_objective["recall@1"] < 1.0 and "recall@1_by_ctr" not in by_ctr
    assert by_objective["ndcg@5_by_ctr"] == by_ctr["ndcg@5"]
