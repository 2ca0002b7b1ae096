"""The realistic world in time: tastes drift, exposures come in sessions whose intent raises clicks on
a few categories, and the truth holds each row's probabilities at its time and intent."""

import json

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.errors import DataError
from recsys.model.data.dataset import load_dataset
from recsys.model.data.simulate import simulate
from recsys.model.data.world import SPAN, T0, World, parse_intents


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("timed") / "d"
    simulate("realistic", out, users=600, items=400, interactions=40_000, seed=2, progress=False)
    ds = load_dataset(out)
    return out, ds.interactions.astype({"user_id": int, "item_id": int}), World.load(out), \
        pd.read_parquet(out / "truth.parquet")


def test_tastes_drift_slowly_and_end_at_the_stored_taste(data):
    out, _, world, _ = data
    assert json.loads((out / "world.json").read_text())["format"] == 2  # the format with time
    users = np.arange(world.n_users)
    start, end = world.taste(users, T0), world.taste(users, T0 + SPAN)
    np.testing.assert_allclose(end, world.user_taste, atol=1e-6)
    np.testing.assert_array_equal(world.taste(users), world.user_taste)  # at=None: the end of the period
    assert np.allclose(np.linalg.norm(start, axis=1), 1, atol=1e-5)
    drift = (start * end).sum(axis=1)
    assert 0.8 < drift.mean() < 0.97  # a drift, not a new person
    day = (world.taste(users, T0 + 30 * 86400) * world.taste(users, T0 + 31 * 86400)).sum(axis=1)
    assert day.mean() > 0.995  # slowly: one day moves a taste far less than the period does
    items = np.arange(1, world.n_items + 1)
    then, now = world.p_click(np.full(len(items), 5), items, at=T0), world.p_click(np.full(len(items), 5), items)
    assert not np.allclose(then, now) and np.corrcoef(then, now)[0, 1] > 0.5


def test_exposures_come_in_sessions_of_one_user_minutes_apart(data):
    _, inter, _, truth = data
    ts = inter["timestamp"].to_numpy()
    assert (np.diff(ts) >= 0).all() and T0 <= ts.min() and ts.max() <= T0 + SPAN
    sessions = inter.assign(session=truth["session"]).groupby("session")
    assert (sessions["user_id"].nunique() == 1).all()
    rows = sessions.size()
    assert 4 < rows.mean() < 8 and rows.max() > 15
    length = sessions["timestamp"].max() - sessions["timestamp"].min()
    assert length.median() < 30 * 60 and (length < 4 * 3600).mean() > 0.99
    # Numbered in the order they start.
    first = sessions["timestamp"].min()
    assert (np.diff(first.to_numpy()) >= 0).all() and list(first.index) == list(range(len(first)))
    # A user returns: most active users have several sessions spread over the period.
    per_user = inter.assign(session=truth["session"]).groupby("user_id")["session"].nunique()
    assert per_user.max() >= 10


def test_the_intent_raises_clicks_on_its_categories(data):
    out, inter, world, truth = data
    codes = parse_intents(truth["intent"].to_numpy())
    assert ((codes >= 0).sum(axis=1) >= 1).all() and (codes[:, 1] >= 0).mean() > 0.3  # 1 or 2 categories
    category = world.item_category[inter["item_id"].to_numpy() - 1]
    intended = (category[:, None] == codes).any(axis=1)
    click = inter["click"].to_numpy() == 1
    assert click[intended].mean() > 2 * click[~intended].mean()
    # The same pairs without the intent: only clicks on intended items drop, conversions stay.
    u, i, at = inter["user_id"].to_numpy(), inter["item_id"].to_numpy(), inter["timestamp"].to_numpy()
    blind = world.p_click(u, i, at=at)
    np.testing.assert_allclose(blind[~intended], truth["p_click"].to_numpy()[~intended], atol=1e-6)
    assert (blind[intended] < truth["p_click"].to_numpy()[intended]).all()
    np.testing.assert_allclose(world.p_conversion(u, i, at=at, intent=codes), truth["p_conversion"], atol=1e-6)
    # The matrix takes one intent per user, and names as well as codes.
    m = world.matrix([1, 2], "ctr", at=T0 + 86400, intent=np.array([[3, -1], [4, 7]]))
    named = world.matrix([1, 2], "ctr", at=T0 + 86400, intent=np.array(["c03", "c04 c07"], dtype=object))
    np.testing.assert_allclose(m, named)
    boosted = np.isin(world.item_category, [4, 7])
    plain = world.matrix([2], "ctr", at=T0 + 86400)[0]
    assert (m[1][boosted] > plain[boosted]).all() and np.allclose(m[1][~boosted], plain[~boosted])


def test_intents_follow_the_users_taste(data):
    _, _, world, _ = data
    users = np.repeat(np.arange(50), 40)
    codes = world.draw_intent(users, None, np.random.default_rng(0))
    near = np.argmax(world.user_taste[users] @ world.category_centre.T, axis=1)
    assert ((codes == near[:, None]).any(axis=1)).mean() > 3 / len(world.category_centre)


def test_a_world_from_before_time_still_loads(data, tmp_path):
    out, _, world, _ = data
    with np.load(out / "world.npz") as z:
        old = {k: z[k] for k in z.files if k not in ("user_drift", "period", "item_category", "category_centre")}
        old["params"] = old["params"][:6]  # the constants it had: no gamma
    np.savez(tmp_path / "world.npz", **old)
    before = World.load(tmp_path)
    users, items = np.array([1, 2, 3]), np.array([4, 5, 6])
    # Constant tastes: any time is the end of the period.
    np.testing.assert_array_equal(before.p_click(users, items, at=T0), world.p_click(users, items))
    with pytest.raises(DataError, match="no item categories"):
        before.p_click(users, items, intent=[1])
