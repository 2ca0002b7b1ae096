"""Recall of an approximate index against exact search, on the model's own queries.

`build-index` uses it to check each approximate index it builds: queries are the user
tower's embeddings of a random sample of stored users (what the service will send), the
truth is an exact inner-product search over the same item vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from recsys.artifacts import metrics
from recsys.artifacts.feature_store import FeatureStore
from recsys.artifacts.features import FeatureSpec
from recsys.artifacts.numpy_tower import NumpyTower


def user_vectors(version_dir: str | Path, n: int, seed: int = 0) -> np.ndarray | None:
    """Embeddings (n, D) of n random stored users through a model version's user tower, or None
    when `version_dir` is not a model version with users (an embeddings file or an index dir)."""
    version_dir = Path(version_dir)
    manifest = version_dir / "manifest.json"
    if not (manifest.is_file() and (version_dir / "user_tower").is_dir() and (version_dir / "users.parquet").is_file()):
        return None
    spec = FeatureSpec.from_list(json.loads(manifest.read_text())["features"], where=str(manifest))
    users = FeatureStore.load(version_dir / "users.parquet", spec.tower("user"), "user")
    rows = np.random.default_rng(seed).choice(len(users), size=min(n, len(users)), replace=False)
    return np.ascontiguousarray(NumpyTower.load(version_dir / "user_tower")(users.rows(rows)), dtype=np.float32)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows (Q, k) of the exact inner-product top k."""
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return exact.search(queries, min(k, len(vectors)))[1]


def recall_at_k(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top k (truth, (Q, k) rows) that `index` returns in its top k."""
    return metrics.recall_at_k(index.search(queries, truth.shape[1])[1], truth)
