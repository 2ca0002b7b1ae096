"""Freshness: a recommender that knows the truth of the session's moment scores 1, a random one about
k / catalogue; the recommender built over a version answers as the service does."""

import numpy as np
import pytest

from recsys.artifacts.version import Version
from recsys.index.build_index import build_index
from recsys.model.data.world import World
from recsys.model.evaluation.freshness import draw_sessions, freshness, true_top, version_recommender
from tests.conftest import recsys

K = 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh") / "data"
    recsys("simulate", "--profile", "realistic", "--users", "300", "--items", "400", "--interactions", "15000",
           "--seed", "4", "--out", str(out))
    return out


@pytest.fixture(scope="module")
def world(data):
    return World.load(data)


def lists(world, sessions, top):
    """user_id -> the served list a recommender gives from `top` (item rows)."""
    ids = np.arange(1, world.n_items + 1).astype(str)
    return {str(u + 1): list(ids[row]) for u, row in zip(sessions.users, top)}


def test_the_first_clicks_follow_the_sessions_intent(world):
    sessions = draw_sessions(world, n_users=200, seed=1)
    assert sessions.clicks.shape == (200, 3) and sessions.at == world.end
    assert all(len(set(row)) == 3 for row in sessions.clicks)  # distinct items
    intended = (world.item_category[sessions.clicks][:, :, None] == sessions.intents[:, None, :]).any(axis=2)
    catalogue = np.mean([np.isin(world.item_category, i[i >= 0]).mean() for i in sessions.intents])
    assert intended.mean() > 2 * catalogue


def test_an_oracle_scores_one_and_a_random_list_about_k_over_the_catalogue(world):
    sessions = draw_sessions(world, n_users=250, seed=1)
    oracle = lists(world, sessions, true_top(world, sessions, K))
    result = freshness(world, lambda user, recent, k: oracle[user][:k], sessions)
    assert result["with_recent_items"] == result["without_recent_items"] == 1.0
    assert 0.0 < result["intent_blind"] < 1.0  # the intent moves the true top 20
    # The best list that ignores the session scores exactly the intent-blind reference.
    blind = lists(world, sessions, true_top(world, sessions, K, intent=False))
    assert freshness(world, lambda user, recent, k: blind[user], sessions)["with_recent_items"] == \
        pytest.approx(result["intent_blind"])
    rng = np.random.default_rng(0)
    ids = np.arange(1, world.n_items + 1).astype(str)
    randomly = freshness(world, lambda user, recent, k: list(rng.choice(ids, k, replace=False)), sessions)
    assert randomly["random"] == pytest.approx(K / (world.n_items - 3))
    for name in ("with_recent_items", "without_recent_items"):
        assert abs(randomly[name] - randomly["random"]) < 0.02, randomly


def test_a_recommender_that_reads_recent_items_is_credited_for_them(world):
    """Told the clicks, it serves the intent's top; without them, the intent-blind top."""
    sessions = draw_sessions(world, n_users=100, seed=2)
    fresh = lists(world, sessions, true_top(world, sessions, K))
    stale = lists(world, sessions, true_top(world, sessions, K, intent=False))
    result = freshness(world, lambda user, recent, k: (fresh if recent else stale)[user], sessions)
    assert result["with_recent_items"] == 1.0
    assert result["without_recent_items"] == pytest.approx(result["intent_blind"])


def test_the_objective_is_checked(world):
    with pytest.raises(ValueError, match="ctcvr or ctr"):
        freshness(world, lambda *a: [], objective="cvr", n_users=2)


def test_the_version_recommender_answers_as_the_service(data, tmp_path):
    from recsys.service.domain import Query
    from recsys.service.recommender import Recommender
    from recsys.service.settings import Settings

    recsys("train", "--data", str(data), "--out", str(tmp_path), "--epochs", "1", "--history-length", "5")
    version = Version.open(tmp_path)
    build_index(version.path.parent, version.name)
    ours = version_recommender(Version.open(tmp_path, need_index=True))
    service = Recommender(Version.open(tmp_path, need_index=True), Settings())
    for user, recent in (("1", None), ("7", ["3", "4", "5"]), ("7", None)):
        got = ours(user, recent, K)
        want = service.recommend_batch([Query(user, K, recent_items=recent)])[0]
        assert got == [str(i) for i in want.item_ids]
    assert ours("7", ["3", "4", "5"], K) != ours("7", None, K)  # the history tower reads them
    result = freshness(World.load(data), ours, n_users=30)
    assert 0.0 <= result["without_recent_items"] <= 1.0 and result["users"] == 30
