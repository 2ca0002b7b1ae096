"""Filtered search against a numpy brute force over the matching rows, on clustered vectors:
exact on a flat index, recall@200 >= 0.97 on IVF and HNSW at every selectivity."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.artifacts.version import ItemIndex
from recsys.index import formats, searcher
from recsys.index.searcher import Searcher, top_rows

N, D, K = 20_000, 32, 200
SHARES = (0.5, 0.05, 0.005, 0.0001)


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(100, D))
    x = centers[rng.integers(0, len(centers), N)] + 0.5 * rng.normal(size=(N, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def searchers(vectors):
    built = {}

    def get(kind):
        if kind not in built:
            built[kind] = Searcher(ItemIndex(formats.build(kind, vectors), np.arange(N).astype(str), vectors, {}))
        return built[kind]
    return get


def queries(vectors, n=40):
    rng = np.random.default_rng(3)
    q = vectors[rng.integers(0, N, n)] + 0.1 * rng.normal(size=(n, D)).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def subset(share: float) -> np.ndarray:
    mask = np.random.default_rng(int(share * 1e6)).random(N) < share
    if not mask.any():
        mask[[5, 17]] = True
    return mask


def brute(query, vectors, rows, k):
    sims = vectors[rows] @ query
    order = np.argsort(-sims, kind="stable")[:k]
    return sims[order], rows[order]


@pytest.mark.parametrize("exact_max", [searcher.EXACT_SCAN_MAX, 0])  # the real threshold; the selector always
@pytest.mark.parametrize("share", SHARES)
def test_a_flat_filtered_search_equals_brute_force(vectors, searchers, monkeypatch, share, exact_max):
    monkeypatch.setattr(searcher, "EXACT_SCAN_MAX", exact_max)
    mask = subset(share)
    rows = np.flatnonzero(mask)
    for q in queries(vectors, 10):
        want_sims, want = brute(q, vectors, rows, K)
        sims, got = searchers("flat").search_subset(q, K, None, mask, len(rows))
        assert len(got) == min(K, len(rows)) and mask[got].all()
        np.testing.assert_allclose(sims, want_sims, rtol=1e-5, atol=1e-6)
        assert set(got.tolist()) == set(want.tolist()) or np.allclose(np.sort(vectors[got] @ q), np.sort(want_sims))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("share", SHARES)
def test_an_approximate_filtered_search_keeps_recall(vectors, searchers, monkeypatch, kind, share):
    """With the exact threshold lowered to 500 rows, 50 % and 5 % go through the index's selector
    (probes raised as the share falls), 0.5 % and 0.01 % through an exact scan."""
    monkeypatch.setattr(searcher, "EXACT_SCAN_MAX", 500)
    s = searchers(kind)
    mask = subset(share)
    rows = np.flatnonzero(mask)
    recalls = []
    for q in queries(vectors):
        _, want = brute(q, vectors, rows, K)
        _, got = s.search_subset(q, K, None, mask, len(rows))
        assert len(got) == len(set(got.tolist())) == min(K, len(rows)) and mask[got].all()
        recalls.append(len(set(got.tolist()) & set(want.tolist())) / len(want))
    assert np.mean(recalls) >= 0.97, (kind, share, np.mean(recalls))


def test_top_rows_is_sorted_and_exact(vectors):
    rows = np.arange(0, N, 7)
    q = queries(vectors, 3)
    sims, got = top_rows(q, vectors, rows, 50)
    for j in range(3):
        want_sims, _ = brute(q[j], vectors, rows, 50)
        np.testing.assert_allclose(sims[j], want_sims, rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(sims[j]) <= 0)


def spy_postfilter(monkeypatch) -> list:
    """Record what each post-filter attempt returned (None: it kept too few)."""
    results, real = [], Searcher.search_post

    def spy(self, *args):
        results.append(real(self, *args))
        return results[-1]
    monkeypatch.setattr(Searcher, "search_post", spy)
    return results


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_broad_subset_is_post_filtered_from_the_plain_search(vectors, searchers, monkeypatch, kind):
    """At a 50 % share the index's plain top K/share·slack holds K of the subset: that is the
    answer (HNSW takes the selector: test_an_approximate_filtered_search_keeps_recall)."""
    monkeypatch.setattr(searcher, "EXACT_SCAN_MAX", 500)
    results = spy_postfilter(monkeypatch)
    mask = subset(0.5)
    for q in queries(vectors, 5):
        sims, got = searchers(kind).search_subset(q, K, None, mask, int(mask.sum()))
        assert results[-1] is not None and len(got) == len(set(got.tolist())) == K and mask[got].all()
        if kind == "flat":
            np.testing.assert_allclose(sims, brute(q, vectors, np.flatnonzero(mask), K)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_broad_subset_that_misses_the_query_falls_back_to_the_selector(vectors, searchers, monkeypatch, kind):
    """A 90 % subset without the query's 2,000 nearest rows: the plain top 667 keeps none of it,
    and the answer is still K rows of the subset (the subset's exact top K on a flat index)."""
    monkeypatch.setattr(searcher, "EXACT_SCAN_MAX", 500)
    results = spy_postfilter(monkeypatch)
    q = queries(vectors, 1)[0]
    mask = np.ones(N, bool)
    mask[np.argsort(-(vectors @ q))[:2000]] = False
    sims, got = searchers(kind).search_subset(q, K, None, mask, int(mask.sum()))
    assert results == [None]
    assert len(got) == len(set(got.tolist())) == K and mask[got].all()
    if kind == "flat":
        np.testing.assert_allclose(sims, brute(q, vectors, np.flatnonzero(mask), K)[0], rtol=1e-5, atol=1e-6)
