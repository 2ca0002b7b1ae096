"""A subset of index rows prepared once for many queries: a filter that recurs (a category
page, a price band) is searched over what was kept of it, not through the whole index with a
bitmap built per request.

    prepare(searcher, rows)          rows (M,) -> Subset, of one of three kinds:
        scan     up to SCAN_ALL_MAX rows (any number on a flat index; HNSW below
                 BITMAP_MIN_SHARE): their vectors (M, D) copied together, scanned whole
        ivf      more, below BITMAP_MIN_SHARE, on IVF: a FAISS IndexIVFFlat of the members only,
                 in the index's own lists (its coarse quantizer shared)
        bitmap   at least BITMAP_MIN_SHARE of the index: a bitmap over its rows (N/8 bytes),
                 and for IVF the members per list
    search(searcher, subset, queries, k)   the subset's top k for queries (B, D), together:
                 scan exactly; ivf and IVF bitmap over the nearest lists holding members until
                 they hold TARGET_PER_K·k members (and at least nprobe lists); HNSW bitmap
                 with a beam widened as the share falls (index/searcher.py)

Lists without members cost nothing (a filter that follows the embedding, like a price band on
a trained model, has members in a third of the lists at a 5 % share), and in the ivf kind a
probed list costs its members only, not its length. The rows are fixed when prepared: rows
appended to the index later, availability and per-request exclusions are the caller's to apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from recsys.index.searcher import HNSW_MIN_SHARE, Searcher

# Members read per query, as a multiple of k: the nearest lists holding members are read
# until they hold this many. On the load benchmark's 1M-item model (IVF2500, K' 200, a price
# band per query, 320 users in batches of 32, one thread), mean recall@200 against an exact scan
# of the band (worst query) and ms per query, beside 0.07 ms for the plain search: 16 -> 0.996
# (0.945) at a 5 % share, 0.07 ms; 0.997 (0.965) at 15 %, 0.07 ms; 0.995 (0.975) at 50 %, 0.08
# ms; 24 -> 0.999 (0.955) at 5 %, 0.10 ms; 12 -> 0.994 (0.930) at 5 %, 0.07 ms.
TARGET_PER_K = 16
# Up to this many members, all are scanned (one product over contiguous vectors, no list
# choice): 0.03 ms at 5k rows and 0.13 ms at 30k on the same model, one query at a time.
SCAN_ALL_MAX = 30_000
# A subset of at least this share of the index is kept as a bitmap over its rows (N/8 bytes,
# not a copy of its vectors) and searched through the index itself. Below it, the members'
# own IVF reads only members (at a 15 % share a copy of 150k vectors, 20 MB at 32 dims).
BITMAP_MIN_SHARE = 0.2


@dataclass(frozen=True)
class Subset:
    count: int                               # M: rows in the subset
    upto: int                                # index rows when prepared: rows from here on are not covered
    rows: np.ndarray | None = None           # (M,) int64 index rows (scanned or IVF kinds)
    vectors: np.ndarray | None = None        # scanned: (M, D) float32 in `rows` order
    ivf: faiss.IndexIVFFlat | None = None    # IVF: the members in the index's lists, labelled by row
    lists: np.ndarray | None = None          # IVF: (L,) the lists holding members
    sizes: np.ndarray | None = None          # IVF: (L,) members in each
    centroids: np.ndarray | None = None      # IVF: (L, D) those lists' centroids
    bitmap: np.ndarray | None = None         # broad: (ceil(upto / 8),) uint8, packed membership

    @property
    def kind(self) -> str:
        return "scan" if self.vectors is not None else "ivf" if self.ivf is not None else "bitmap"

    @property
    def nbytes(self) -> int:
        own = {"scan": lambda: self.vectors.nbytes,
               "ivf": lambda: self.count * (4 * self.centroids.shape[1] + 8),   # the sub-index's codes and ids
               "bitmap": lambda: self.bitmap.nbytes}[self.kind]()
        return own + sum(a.nbytes for a in (self.rows, self.lists, self.sizes, self.centroids) if a is not None)


def prepare(searcher: Searcher, rows: np.ndarray, max_bytes: float = math.inf) -> Subset | None:
    """The subset of `rows` (M,) of `searcher`'s index, prepared for `search`; kept as a bitmap
    when a copy of its vectors would take more than `max_bytes` (None when that is not possible:
    a flat index, or HNSW below its filtered-walk share)."""
    rows = np.asarray(rows, np.int64)
    n = len(searcher)
    lists = searcher.lists_of(rows)
    big = len(rows) * (4 * searcher.dim + 16) > max_bytes   # its vectors, rows and list ids
    bitmap_ok = lists is not None or (searcher.is_hnsw and len(rows) >= HNSW_MIN_SHARE * n)
    if bitmap_ok and (big or len(rows) >= BITMAP_MIN_SHARE * n):
        mask = np.zeros(n, bool)
        mask[rows] = True
        bitmap = np.packbits(mask, bitorder="little")
        if lists is None:
            return Subset(len(rows), n, bitmap=bitmap)
        held, sizes = np.unique(lists, return_counts=True)
        return Subset(len(rows), n, bitmap=bitmap, lists=held.astype(np.int64), sizes=sizes.astype(np.int64),
                      centroids=searcher.centroids[held])
    if big:
        return None
    if lists is None or len(rows) <= SCAN_ALL_MAX:
        return Subset(len(rows), n, rows=rows, vectors=searcher.embeddings[rows])
    order = np.argsort(lists, kind="stable")
    rows, lists = rows[order], lists[order]
    vectors = np.ascontiguousarray(searcher.embeddings[rows])
    held, firsts, sizes = np.unique(lists, return_index=True, return_counts=True)
    ivf = faiss.IndexIVFFlat(searcher.quantizer, vectors.shape[1], searcher.nlist, faiss.METRIC_INNER_PRODUCT)
    codes = vectors.view(np.uint8)
    for number, first, size in zip(held.tolist(), firsts.tolist(), sizes.tolist()):
        # One list at a time: each list's storage is allocated once, at its size.
        ivf.invlists.add_entries(number, size, faiss.swig_ptr(rows[first:first + size]),
                                 faiss.swig_ptr(codes[first:first + size]))
    ivf.ntotal = len(rows)
    return Subset(len(rows), n, rows=rows, ivf=ivf, lists=held.astype(np.int64), sizes=sizes.astype(np.int64),
                  centroids=searcher.centroids[held])


def search(searcher: Searcher, subset: Subset, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The subset's top min(k, M) for queries (B, D): (similarities (B, k'), rows (B, k')),
    best first; a row of -1 (similarity -inf) where a query found fewer."""
    queries = np.ascontiguousarray(queries, np.float32)
    k = min(k, subset.count)
    if subset.bitmap is not None and subset.lists is None:  # HNSW: a filtered graph walk
        return searcher.search_bitmap(queries, k, subset.bitmap, subset.upto, subset.count / subset.upto)
    if subset.vectors is not None:
        sims = queries @ subset.vectors.T                                  # (B, M)
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if 0 < k < sims.shape[1] else \
            np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        top = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1), subset.rows[np.take_along_axis(part, order, axis=1)]
    assign, dq = _probes(searcher, subset, queries, k)
    if subset.bitmap is not None:  # IVF lists of the index itself, its codes tested against the bitmap
        return searcher.search_lists(queries, k, assign, dq, subset.bitmap, subset.upto)
    sims = np.empty((len(queries), k), np.float32)
    rows = np.empty((len(queries), k), np.int64)
    subset.ivf.search_preassigned_c(len(queries), faiss.swig_ptr(queries), k, faiss.swig_ptr(assign),
                                    faiss.swig_ptr(dq), faiss.swig_ptr(sims), faiss.swig_ptr(rows), False,
                                    faiss.SearchParametersIVF(nprobe=assign.shape[1]))
    return sims, rows


def _probes(searcher: Searcher, subset: Subset, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query (B, D), the IVF lists to read, nearest first: (lists (B, W), padded with -1,
    FAISS's "no list"; their centroid scores (B, W)). Lists until they hold TARGET_PER_K·k
    members, and at least as many as the plain search probes (a broad subset's members near
    the query are spread like the index's)."""
    scores = queries @ subset.centroids.T                                  # (B, L)
    target = TARGET_PER_K * k
    # Sort only the nearest few lists (a full sort of thousands of lists per query costs as
    # much as the search): twice what the target needs on average, more when they fall short.
    few = max(2 * (searcher.nprobe or 0), math.ceil(2 * target * len(subset.lists) / subset.count))
    while True:
        if few >= len(subset.lists):
            nearest = np.argsort(-scores, axis=1, kind="stable")
            break
        part = np.argpartition(-scores, few, axis=1)[:, :few]
        nearest = np.take_along_axis(part, np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1,
                                                      kind="stable"), axis=1)
        if (subset.sizes[nearest].sum(axis=1) >= target).all():
            break
        few *= 4
    held = np.cumsum(subset.sizes[nearest], axis=1)
    need = np.minimum(nearest.shape[1], np.maximum((held < target).sum(axis=1) + 1, searcher.nprobe or 0))
    width = int(need.max())
    assign = subset.lists[nearest[:, :width]]
    assign[np.arange(width)[None, :] >= need[:, None]] = -1
    return assign, np.ascontiguousarray(np.take_along_axis(scores, nearest[:, :width], axis=1), np.float32)
