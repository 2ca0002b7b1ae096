"""The numpy user tower serves the same recommendations as the SavedModel it was exported from."""

import numpy as np

from recsys.artifacts.version import Version
from recsys.service.recommender import Query, Recommender
from recsys.service.schemas import Objective
from recsys.service.settings import Settings


def test_numpy_and_savedmodel_towers_recommend_the_same(seed_artifacts):
    version = Version.open(seed_artifacts, need_index=True)
    fast = Recommender(version, Settings(user_tower="numpy"))
    reference = Recommender(version, Settings(user_tower="savedmodel"))
    users = ("1", "50", "100")
    queries = [Query(user, 1) for user in users]
    assert np.abs(fast.user_vectors(queries)[0] - reference.user_vectors(queries)[0]).max() <= 1e-5
    for user in users:
        a = fast.recommend(user, 20, Objective.ctcvr)
        b = reference.recommend(user, 20, Objective.ctcvr)
        assert a.item_ids.tolist() == b.item_ids.tolist()
        assert np.allclose(a.score, b.score, atol=1e-5)
