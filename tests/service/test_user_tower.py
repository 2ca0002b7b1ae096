"""The numpy user tower serves the same recommendations as the SavedModel it was exported from."""

import numpy as np

from recsys.artifacts import store
from recsys.service.recommender import Recommender
from recsys.service.schemas import Objective


def test_numpy_and_savedmodel_towers_recommend_the_same(seed_artifacts):
    version = store.resolve(seed_artifacts, need_index=True)
    fast = Recommender(version, user_tower="numpy")
    reference = Recommender(version, user_tower="savedmodel")
    for user in ("1", "50", "100"):
        a = fast.recommend(user, 20, Objective.ctcvr)
        b = reference.recommend(user, 20, Objective.ctcvr)
        assert np.abs(fast.user_embedding(user) - reference.user_embedding(user)).max() <= 1e-5
        assert a.item_ids.tolist() == b.item_ids.tolist()
        assert np.allclose(a.score, b.score, atol=1e-5)
