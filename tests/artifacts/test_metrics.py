import numpy as np
from sklearn.metrics import roc_auc_score

from recsys.artifacts.metrics import auc, recall_ndcg_at_k


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # rounding creates ties
    assert abs(auc(y, s) - roc_auc_score(y, s)) < 1e-12


def test_auc_one_class_is_none():
    assert auc(np.ones(5), np.arange(5)) is None


def test_recall_and_ndcg_by_hand():
    ranked = np.array([["a", "b", "c"], ["x", "y", "z"]], dtype=object)
    out = recall_ndcg_at_k(ranked, [{"b", "q"}, {"x"}], [1, 3])
    assert out["recall@1"] == 0.5          # user 0: 0/2, user 1: 1/1
    assert out["recall@3"] == 0.75         # user 0: 1/2
    ideal0 = 1 + 1 / np.log2(3)
    assert np.isclose(out["ndcg@3"], ((1 / np.log2(3)) / ideal0 + 1.0) / 2)
