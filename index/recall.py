"""Recall of an approximate index against exact search, on the model's own queries.

`build-index` uses it to check each approximate index it builds: queries are the user
tower's embeddings of a random sample of stored users (what the service will send), the
truth is an exact inner-product search over the same item vectors.
"""

from __future__ import annotations

import faiss
import numpy as np

from recsys.artifacts import metrics
from recsys.artifacts.user_history import COLUMN as HISTORY
from recsys.artifacts.version import Version


def user_vectors(version: Version, n: int, seed: int = 0) -> np.ndarray:
    """Embeddings (n', D), n' = min(n, users), of random stored users through the version's user tower."""
    users = version.table("user")
    rows = np.random.default_rng(seed).choice(len(users), size=min(n, len(users)), replace=False)
    columns = users.rows(rows)
    histories = version.user_history()
    if histories is not None:  # with the history each user is served with
        columns[HISTORY] = histories.column(users.ids[rows])
    return np.ascontiguousarray(version.numpy_tower("user")(columns), dtype=np.float32)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows (Q, k) of the exact inner-product top k."""
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return exact.search(queries, min(k, len(vectors)))[1]


def recall_at_k(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top k (truth, (Q, k) rows) that `index` returns in its top k."""
    return metrics.recall_at_k(index.search(queries, truth.shape[1])[1], truth)
