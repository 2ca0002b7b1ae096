"""FAISS inner-product index formats and when to use each.

    flat  exact IndexFlatIP; the right choice up to ~100k items (cost grows linearly:
          ~1 ms per query at 100k items, 10-50 ms at 1M on one core)
    hnsw  IndexHNSWFlat, graph search; fast queries, but minutes to build at 1M items
    ivf   IndexIVFScalarQuantizer: k-means into ~2.5·sqrt(N) lists (trained on a sample of
          64 vectors per list), vectors stored as fp16 residuals; builds in seconds, recall
          set by nprobe (default 32, the service's default too)
    auto  flat up to 100k items, ivf above

How ivf was chosen (clustered, L2-normalised 1M x 32 vectors, k=100, one thread; the
benchmark is `python -m bench.index_bench`, its figures are in docs/PERFORMANCE.md):

- Scanning the probed lists is bound by memory traffic, so storing fp16 instead of float32
  cuts query time by about a third at the same recall (IVF4096 at nprobe 32: 0.24 -> 0.16 ms,
  recall@100 0.966 both): fp16 residuals keep ~3 significant digits, finer than the gaps
  between neighbouring scores.
- 8-bit scalar quantisation and 4-bit fast-scan PQ lose 3 to 50 points of recall@100 (the
  scores of the 100 nearest items are packed within ~0.08 of each other) and win them back
  only by exactly re-ranking 4-8x the shortlist (IndexRefineFlat), which costs what the
  fast scan saved: 0.22-0.27 ms for recall 0.97.
- An HNSW coarse quantizer saves under 10 µs per query at a few thousand lists; many small
  lists (8k-16k) need so many probes for recall@100 that they end up slower (16k lists:
  recall 0.95 at nprobe 64, 0.30 ms).
- ~2.5·sqrt(N) lists puts the default nprobe 32 at recall@100 ~0.975 (1M items: 2,500 lists of
  ~400 vectors, ~0.18 ms per query); k-means on a 64-per-list sample instead of every vector
  keeps the build to ~10-15 s of single-core work at 1M.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf", "auto")
AUTO_FLAT_MAX = 100_000

DEFAULT_NPROBE = 32        # IVF lists probed per query (the service's default too)
DEFAULT_EF_SEARCH = 64     # HNSW beam width (the service's default too)
IVF_LISTS_PER_SQRT_N = 2.5   # nlist ~ 2.5·sqrt(N)
IVF_MIN_POINTS_PER_LIST = 39    # FAISS's advice for k-means; fewer lists for small N
IVF_TRAIN_POINTS_PER_LIST = 64  # k-means trains on a sample of this many vectors per list


def choose(kind: str, n: int) -> str:
    if kind == "auto":
        return "flat" if n <= AUTO_FLAT_MAX else "ivf"
    return kind


def ivf_nlist(n: int) -> int:
    """Number of IVF lists for n vectors: ~2.5·sqrt(N), at least 39 vectors per list."""
    return max(1, min(int(IVF_LISTS_PER_SQRT_N * math.sqrt(n)), n // IVF_MIN_POINTS_PER_LIST))


DEFAULT_SEED = 1234       # k-means initialisation and training sample


def build(kind: str, vectors: np.ndarray, hnsw_m: int = 32, ef_construction: int = 40,
          nlist: int | None = None, train_size: int | None = None, seed: int = DEFAULT_SEED) -> faiss.Index:
    """An inner-product index over `vectors` (N, D) float32, rows in input order.

    Uses FAISS's OpenMP threads (faiss.omp_set_num_threads) for training and adding.
    `nlist` and `train_size` (vectors sampled for k-means; default 64 per list) are for ivf.
    Built indexes carry their default search parameters (nprobe 32, efSearch 64), so an index
    written and read back searches the same without `set_search_params`.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = DEFAULT_EF_SEARCH
    elif kind == "ivf":
        nlist = nlist or ivf_nlist(n)
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist,
                                              faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.nprobe = DEFAULT_NPROBE
        train_size = min(n, train_size or IVF_TRAIN_POINTS_PER_LIST * nlist)
        if train_size < n:
            sample = vectors[np.sort(np.random.default_rng(seed).choice(n, train_size, replace=False))]
        else:
            sample = vectors
        index.train(sample)
    else:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")
    index.add(vectors)
    return index


def set_search_params(index: faiss.Index, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Query-time knobs of the formats above: more lists / a wider beam = better recall, slower
    queries. Works on a built index and on one read back by faiss.read_index; a knob the index
    does not have (nprobe on hnsw, ef_search on ivf, both on flat) is ignored.
    """
    ivf = faiss.try_extract_index_ivf(index)
    if nprobe is not None and ivf is not None:
        ivf.nprobe = nprobe
    # downcast_index's proxy does not own its C++ object: `index` stays bound while it is used.
    hnsw = faiss.downcast_index(index)
    if ef_search is not None and isinstance(hnsw, faiss.IndexHNSW):
        hnsw.hnsw.efSearch = ef_search
