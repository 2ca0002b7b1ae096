"""FAISS inner-product index formats and when to use each.

    flat  exact IndexFlatIP; the right choice up to ~100k items (cost grows linearly)
    hnsw  IndexHNSWFlat, graph search; fast queries, slow builds at 1M items
    ivf   IndexIVFFlat, coarse clustering; fast builds, recall set by nprobe
    auto  flat up to 100k items, ivf above
"""

from __future__ import annotations

import math

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf", "auto")
AUTO_FLAT_MAX = 100_000


def choose(kind: str, n: int) -> str:
    if kind == "auto":
        return "flat" if n <= AUTO_FLAT_MAX else "ivf"
    return kind


def build(kind: str, vectors: np.ndarray, hnsw_m: int = 32, ef_construction: int = 40,
          nlist: int | None = None) -> faiss.Index:
    """An inner-product index over `vectors` (N, D) float32, rows in input order."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    elif kind == "ivf":
        # ~4·sqrt(N) lists and at least 39 training points per list, as FAISS advises.
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    else:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")
    index.add(vectors)
    return index


def set_search_params(index: faiss.Index, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Query-time knobs: more lists / a wider beam = better recall, slower queries."""
    if nprobe is not None and hasattr(index, "nprobe"):
        index.nprobe = nprobe
    if ef_search is not None and hasattr(index, "hnsw"):
        index.hnsw.efSearch = ef_search
