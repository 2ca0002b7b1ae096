"""FAISS against a numpy brute force, and the built index against its model version."""

import json

import numpy as np
import pytest

from recsys.artifacts import version as layout
from recsys.index import formats
from recsys.index.searcher import Searcher


def brute_force(items, queries, k):
    scores = queries @ items.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, top, axis=1), top


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 16))
    items = (centers[rng.integers(0, 20, 5000)] + 0.3 * rng.normal(size=(5000, 16))).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    return items, queries


def test_flat_equals_brute_force(vectors):
    items, queries = vectors
    sims, rows = formats.build("flat", items).search(queries, 20)
    exp_sims, exp_rows = brute_force(items, queries, 20)
    assert np.allclose(sims, exp_sims, atol=1e-4)
    assert (rows == exp_rows).mean() > 0.999  # exact, up to float ties


@pytest.mark.parametrize("kind, params", [("hnsw", {"ef_search": 128}), ("ivf", {"nprobe": 16})])
def test_approximate_indexes_recall(vectors, kind, params):
    items, queries = vectors
    index = formats.build(kind, items)
    formats.set_search_params(index, **params)
    _, rows = index.search(queries, 20)
    _, exact = brute_force(items, queries, 20)
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(rows, exact)])
    assert recall >= 0.9, recall


def test_built_index_matches_item_tower_brute_force(seed_artifacts):
    version = layout.resolve(seed_artifacts, need_index=True)
    s = Searcher(layout.Version.at(version, need_index=True).index())
    manifest = json.loads((version / "index" / "manifest.json").read_text())
    assert manifest["model_version"] == version.name and manifest["count"] == 200 and manifest["kind"] == "flat"
    assert set(s.item_ids.tolist()) == {str(i) for i in range(1, 201)}
    q = np.random.default_rng(3).normal(size=(5, s.dim)).astype(np.float32)
    sims, rows = s.search(q, 200)
    exp_sims, _ = brute_force(s.embeddings, q, 200)
    assert np.allclose(sims, exp_sims, atol=1e-4)
    assert all(len(set(r)) == 200 for r in rows)


def test_recall_against_exact_search_can_tell_a_bad_index(vectors):
    from recsys.index import recall

    items, queries = vectors
    truth = recall.exact_top_k(items, queries, 20)
    exact = formats.build("flat", items)
    assert recall.recall_at_k(exact, queries, truth) == 1.0
    coarse = formats.build("ivf", items)
    formats.set_search_params(coarse, nprobe=1)
    assert recall.recall_at_k(coarse, queries, truth) < 0.9  # one list of ~50 misses neighbours


def test_build_index_records_its_recall_and_retrains_an_ivf_that_falls_short(seed_artifacts, tmp_path):
    import shutil

    from recsys.index.build_index import RECALL_ATTEMPTS, build_index

    version = layout.resolve(seed_artifacts, need_index=True)
    root = tmp_path / "artifacts"
    shutil.copytree(version, root / version.name, ignore=shutil.ignore_patterns("index"))
    build_index(root, version.name, kind="ivf", min_recall=1.01)  # unreachable: every attempt is made
    manifest = json.loads((root / version.name / "index" / "manifest.json").read_text())
    assert manifest["build_attempts"] == RECALL_ATTEMPTS and manifest["recall_queries"] == 100
    assert 0.0 < manifest["recall_at_100"] <= 1.0
    build_index(root, version.name, kind="ivf")  # a small catalogue: every list is probed, recall 1
    manifest = json.loads((layout.index_dir(root / version.name) / "manifest.json").read_text())
    assert manifest["recall_at_100"] == 1.0 and manifest["build_attempts"] == 1
