"""The `bayes` reference: the prior a user's features imply, sharpened by the user's rows."""

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.errors import DataError
from recsys.model.evaluation.bayes import BayesPredictor
from recsys.model.data.world import make_world


@pytest.fixture(scope="module")
def world():
    return make_world(40, 300, seed=3)[0]


def rows_of(world, user, n, seed):
    """n exposures of `user` to uniformly drawn items, labelled from the truth."""
    rng = np.random.default_rng(seed)
    items = rng.integers(1, world.n_items + 1, n)
    users = np.full(n, user)
    click = rng.random(n) < world.p_click(users, items)
    conversion = click & (rng.random(n) < world.p_conversion(users, items))
    return pd.DataFrame({"user_id": users, "item_id": items, "click": click.astype(int),
                         "conversion": conversion.astype(int)})


def test_without_rows_it_predicts_the_prior_mean(world):
    empty = pd.DataFrame({"user_id": [2], "item_id": [1], "click": [0], "conversion": [0]})
    predictor = BayesPredictor(world, empty, samples=500)
    items = np.arange(1, 51)
    p_click, _ = predictor.predict(np.full(50, 7), items)
    prior_click, _ = predictor._probs(6, items - 1)
    assert np.allclose(p_click, prior_click.mean(axis=0))


def test_the_users_rows_move_predictions_towards_the_truth(world):
    items = np.arange(1, world.n_items + 1)
    errors = {0: [], 1500: []}
    for user in (5, 9, 13):
        truth = world.p_click(np.full(len(items), user), items)
        for n in errors:
            train = rows_of(world, user, n, seed=1) if n else rows_of(world, user + 1, 10, seed=1)
            predictor = BayesPredictor(world, train, samples=4000)
            p_click, _ = predictor.predict(np.full(len(items), user), items)
            errors[n].append(np.abs(p_click - truth).mean())
    assert sum(errors[1500]) < 0.75 * sum(errors[0])
    assert predictor.diagnostics()["ess_median"] < 4000  # the rows did reweight the prior


def test_ids_are_checked(world):
    with pytest.raises(DataError, match="out of range"):
        BayesPredictor(world, pd.DataFrame({"user_id": [99], "item_id": [1], "click": [0], "conversion": [0]}))


@pytest.mark.slow  # a quality run: simulates a data set and fits the reference
def test_on_a_simulated_data_set_it_sits_between_popularity_and_the_oracle():
    from recsys.model.data.dataset import split
    from recsys.model.evaluation.evaluate import PopularityScorer
    from recsys.artifacts.metrics import auc
    from recsys.model.data.world import exposures

    world = make_world(1500, 400, seed=5)[0]
    inter, truth = exposures(world, 60_000, seed=5, progress=False)
    train_rows, test_rows = split(len(inter))
    train, test = inter.iloc[train_rows], inter.iloc[test_rows]
    p_click, _ = BayesPredictor(world, train).predict(test["user_id"].to_numpy(), test["item_id"].to_numpy())
    pop_click, _ = PopularityScorer(train, np.arange(1, world.n_items + 1)).pointwise(test)
    bayes, oracle = auc(test["click"], p_click), auc(test["click"], truth["p_click"].to_numpy()[test_rows])
    popularity = auc(test["click"], pop_click)
    assert popularity + 0.03 < bayes < oracle
