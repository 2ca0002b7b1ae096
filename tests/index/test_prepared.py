"""index.prepared: a subset searched over its own rows, against a numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.artifacts.version import ItemIndex
from recsys.index import formats, prepared
from recsys.index.searcher import Searcher, top_rows


def clustered(n: int, d: int = 16, centres: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(centres, d))[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def searcher(kind: str, vectors: np.ndarray) -> Searcher:
    ids = np.arange(len(vectors)).astype(str).astype(object)
    return Searcher(ItemIndex(formats.build(kind, vectors), ids, vectors.copy(), {}))


@pytest.fixture(scope="module")
def ivf() -> Searcher:
    return searcher("ivf", clustered(20_000))


def test_each_row_knows_its_ivf_list_also_after_add(ivf):
    lists = ivf.lists_of(np.arange(len(ivf)))
    assert (lists >= 0).all()
    for number in (0, 7, int(lists[123])):  # the index's own list members
        members = np.flatnonzero(lists == number)
        assert len(members) == ivf.index.invlists.list_size(number)
    rows = ivf.add(clustered(300, seed=5), np.array([f"new{i}" for i in range(300)], dtype=object))
    added = ivf.lists_of(rows)
    for row, number in zip(rows[:20], added[:20]):
        ids = ivf.index.invlists.get_ids(int(number))
        import faiss
        assert row in faiss.rev_swig_ptr(ids, ivf.index.invlists.list_size(int(number)))


@pytest.mark.parametrize("share, k, kind, max_bytes", [
    (0.02, 5, "ivf", np.inf), (0.1, 20, "ivf", np.inf), (0.3, 100, "bitmap", np.inf),
    (0.02, 5, "bitmap", 1_000),  # too big for its budget: a bitmap even at a small share
])
def test_an_ivf_subset_finds_nearly_all_of_its_exact_top_k(ivf, share, k, kind, max_bytes, monkeypatch):
    monkeypatch.setattr(prepared, "SCAN_ALL_MAX", 0)  # walk the lists even for these small subsets
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(len(ivf), int(share * len(ivf)), replace=False))
    subset = prepared.prepare(ivf, rows, max_bytes)
    assert subset.kind == kind and subset.count == len(rows) and subset.upto == len(ivf)
    if kind == "ivf":  # reads some lists only
        assert sorted(subset.rows.tolist()) == rows.tolist() and prepared.TARGET_PER_K * k < len(rows)
    else:              # a bitmap of the rows and counts by list, not a copy of their vectors
        assert subset.nbytes < len(ivf) // 8 + ivf.index.nlist * (8 + 8 + 4 * ivf.dim) + 1
    queries = clustered(50, seed=9)
    all_sims, all_got = prepared.search(ivf, subset, queries, k)                # together
    recalls = []
    for query, sims, got in zip(queries, all_sims, all_got):
        one_sims, one = prepared.search(ivf, subset, query[None], k)            # alone: the same
        assert one[0].tolist() == got.tolist()
        assert len(got) == k and len(set(got.tolist())) == k and set(got.tolist()) <= set(rows.tolist())
        assert np.all(np.diff(sims) <= 1e-6)                                   # best first
        # The subset's own float32 vectors, or the index's fp16 codes (bitmap): to their precision.
        np.testing.assert_allclose(sims, ivf.embeddings[got] @ query, atol=1e-6 if kind == "ivf" else 2e-3)
        _, want = top_rows(query[None], ivf.embeddings, rows, k)
        recalls.append(len(set(got.tolist()) & set(want[0].tolist())) / k)
    assert np.mean(recalls) >= 0.97


@pytest.mark.parametrize("scan_all", [0, 30_000])
def test_a_search_as_deep_as_the_subset_or_over_a_small_one_is_its_exact_order(ivf, scan_all, monkeypatch):
    monkeypatch.setattr(prepared, "SCAN_ALL_MAX", scan_all)
    rows = np.arange(0, len(ivf), 97)
    subset = prepared.prepare(ivf, rows)
    query = clustered(1, seed=3)[0]
    for k in ((5, 50, len(rows), len(rows) + 10) if scan_all else (len(rows), len(rows) + 10)):
        sims, got = prepared.search(ivf, subset, query[None], k)
        want_sims, want = top_rows(query[None], ivf.embeddings, rows, k)
        assert got[0].tolist() == want[0].tolist()


def test_a_flat_subset_is_exact():
    flat = searcher("flat", clustered(3_000))
    rows = np.arange(5, 3_000, 3)
    assert prepared.prepare(flat, rows, max_bytes=1_000) is None  # no bitmap search on flat: not kept
    subset = prepared.prepare(flat, rows)
    assert subset.kind == "scan"
    queries = clustered(10, seed=4)
    _, got = prepared.search(flat, subset, queries, 25)
    _, want = top_rows(queries, flat.embeddings, rows, 25)
    assert got.tolist() == want.tolist()
