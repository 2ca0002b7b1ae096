import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recsys.artifacts.metrics import auc, ctr_cvr_aucs, recall_at_k, recall_ndcg_at_k


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


def test_recall_at_k_counts_the_exact_ids_found_per_query():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 9, 1, -1], [5, 6, 7, 8]])  # -1: a search that returned fewer hits
    assert recall_at_k(found, exact) == (2 / 4 + 1) / 2
    assert recall_at_k(found, exact, k=2) == (0 / 2 + 1) / 2
    # fewer exact ids than k (a catalogue smaller than k): scored against the ids there are
    assert recall_at_k(np.array([[3, 1, 2]]), np.array([[1, 2]]), k=3) == 1.0


def test_the_three_aucs_score_click_on_all_rows_and_conversion_on_clicked_rows():
    click = np.array([1, 1, 1, 0, 0, 0])
    conversion = np.array([1, 0, 0, 0, 0, 0])
    p_click = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
    p_conversion = np.array([0.6, 0.5, 0.4, 0.9, 0.9, 0.9])  # high on unclicked rows: ignored by cvr_auc
    out = ctr_cvr_aucs(click, conversion, p_click, p_conversion)
    assert out["ctr_auc"] == 1.0 and out["cvr_auc"] == 1.0
    assert out["ctcvr_auc"] == auc(conversion, p_click * p_conversion) == 1.0
    assert ctr_cvr_aucs(click, np.zeros(6), p_click, p_conversion)["cvr_auc"] is None


def _per_user_loop(ranked, positives, ks):
    """The per-user reference the vectorised recall/NDCG must equal."""
    out, users = {}, [u for u, pos in enumerate(positives) if pos]
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    for k in ks:
        recalls, ndcgs = [], []
        for u in users:
            pos = positives[u]
            hits = np.fromiter((item in pos for item in ranked[u, :k]), dtype=bool, count=min(k, ranked.shape[1]))
            recalls.append(hits.sum() / len(pos))
            ndcgs.append(discounts[: hits.size][hits].sum() / discounts[: min(len(pos), k)].sum())
        out[f"recall@{k}"] = float(np.mean(recalls)) if users else None
        out[f"ndcg@{k}"] = float(np.mean(ndcgs)) if users else None
    return out


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_ranking_metrics_equal_the_per_user_loop(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, width = 300, 60, 25
    catalogue = np.array([f"i{j}" for j in range(n_items)], dtype=object)
    ranked = np.stack([rng.permutation(catalogue)[:width] for _ in range(n_users)])
    positives = [set(rng.choice(catalogue, rng.integers(0, 12), replace=False)) for _ in range(n_users)]
    ks = [1, 5, 10, 25, 40]  # 40 > width: a cut-off deeper than the ranking
    got, want = recall_ndcg_at_k(ranked, positives, ks), _per_user_loop(ranked, positives, ks)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert recall_ndcg_at_k(ranked, [set()] * n_users, ks) == _per_user_loop(ranked, [set()] * n_users, ks)
