"""The online ANN operator: top-K' inner-product queries over a version's item index,
over every row or over a subset of rows (a filter's matches).

A subset is searched one of three ways, chosen by its size and share:

    exact     gather the subset's embeddings, one matrix product, argpartition: cost ~ rows
              (0.005 ms at 100 rows, ~0.6 ms at 12k, ~4 ms at 50k for 32 dims; the gather dominates)
    post      a broad subset (most of the catalogue: a permissive filter, a few items out of
              stock): the ANN index's plain top-k/share rows, keeping the subset's; exactly the
              subset's top-k of the index's order whenever at least k were kept (else: selector;
              flat and IVF only: an HNSW beam that deep loses recall, 0.94 at a 50 % share)
    selector  the ANN index with an IDSelectorBitmap over the subset: cost ~ the probes, not the
              subset; probes rise as the subset's share falls, since fewer probed vectors match
              (HNSW: only for shares of at least HNSW_MIN_SHARE; a filtered graph walk loses
              recall fast below that)

and an approximate search that comes back with fewer rows than it could have (HNSW over inner
product leaves some items unreachable; a selective bitmap leaves probed lists empty) is
completed by an exact scan over the rows it did not return, so an answer is never short.

The index grows while it serves: `add` appends rows (new items, new versions of changed
items; which rows may be served is the caller's row set). FAISS does not allow `add`
concurrently with `search` on one index: the caller serialises them (the service runs both
on its batching thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import faiss
import numpy as np

from recsys.artifacts.growing import Growing
from recsys.artifacts.version import ItemIndex
from recsys.index import formats

# Subsets up to this many rows are scanned exactly; larger ones go through the index with a
# selector. On the load benchmark's 1M-item model (one thread), an exact scan took 0.6 ms at
# 12k rows, 1.6 ms at 30k, 3.9 ms at 50k; a selector search as accurate (recall@100 >= 0.97)
# 1.2-1.8 ms from 30k up: below 30k rows exact is both faster and exact.
EXACT_SCAN_MAX = 30_000
# An IVF selector search probes nprobe · share^-PROBE_EXPONENT lists, at most MAX_PROBE_FACTOR
# times nprobe: fewer of the probed vectors match, so more lists must be read for K' matches.
# A filter that follows the embedding (a price range on a trained model: matching items sit in
# a few lists, not always the query's) needs nearly 1/share more probes: on the 1M-item model,
# IVF2500 at nprobe 32, recall@100 at a 5 % share was 0.89 with 192 probes, 0.979 with 512;
# at 10 %, 0.975 with 256; at 50 %, 0.98 with 64. Clustered random vectors need far fewer.
PROBE_EXPONENT = 0.95
MAX_PROBE_FACTOR = 24
# A subset of at least this share of the rows is first searched by post-filtering the index's
# plain top k/share·POSTFILTER_SLACK; a query that keeps fewer than k then takes the selector.
# The slack covers filters that follow the embedding (a price range on a trained model: the
# query's neighbours are mostly cheap, or mostly not). On the 1M-item model, K' 200, one
# thread, a price filter per query (post-filter / selector only, ms; share of queries the
# post-filter answered): 50 %: 0.61 (94 % answered at slack 3; 36 % at 1.25, 68 % at 2);
# 30 %: 0.84 / 1.36; 20 %: 1.06 / 1.51; 10 %: 1.83 / 1.84 (61 %).
POSTFILTER_MIN_SHARE = 0.2
POSTFILTER_SLACK = 3.0
# A filtered HNSW beam must grow like 1/share to keep recall (efSearch 2·K'/share: recall@200
# 0.99 at 50 %; efSearch 1,600 still gave only 0.83 at 5 %), so below this share HNSW subsets
# are scanned exactly whatever their size: slower for big subsets, never short of recall.
HNSW_MIN_SHARE = 0.1


def top_rows(queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `rows` (M,) for queries (B, D): (similarities (B, k'), rows (B, k')), k' = min(k, M)."""
    k = min(k, len(rows))
    sims = queries @ vectors[rows].T                       # (B, M)
    if k < len(rows):
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(len(rows)), (len(queries), len(rows)))
    top = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.float32), rows[np.take_along_axis(part, order, axis=1)]


class Searcher:
    """`search(queries (B, D), k)` over the index `Version.index()` loaded and checked;
    `search_subset(query (D,), k, rows, mask)` over a subset of its rows."""

    def __init__(self, index: ItemIndex, nprobe: int | None = None, ef_search: int | None = None):
        self.index = index.ann
        # Growth buffers (capacity doubles), so appending a few rows copies nothing.
        self._ids = Growing(np.asarray(index.item_ids).astype(object))
        self._embeddings = Growing(index.embeddings)
        self.manifest = index.manifest
        self.dim = self.embeddings.shape[1]
        formats.set_search_params(self.index, nprobe=nprobe, ef_search=ef_search)
        self._ivf = faiss.try_extract_index_ivf(self.index)
        hnsw = faiss.downcast_index(self.index)
        self._hnsw = hnsw if isinstance(hnsw, faiss.IndexHNSW) else None
        self.nprobe = self._ivf.nprobe if self._ivf is not None else None
        self.ef_search = self._hnsw.hnsw.efSearch if self._hnsw is not None else None
        # IVF: each row's list (grown with `add`) and the lists' centroids, for prepared subsets.
        self._lists = Growing(self._list_of_rows()) if self._ivf is not None else None
        self.centroids = (self._ivf.quantizer.reconstruct_n(0, self._ivf.nlist)
                          if self._ivf is not None else None)   # (nlist, D) float32
        self.quantizer = self._ivf.quantizer if self._ivf is not None else None
        self.is_hnsw = self._hnsw is not None
        self.nlist = self._ivf.nlist if self._ivf is not None else None

    def _list_of_rows(self) -> np.ndarray:
        lists = np.full(len(self._ids), -1, np.int32)
        invlists = self._ivf.invlists
        for number in range(self._ivf.nlist):
            size = invlists.list_size(number)
            if size:
                lists[faiss.rev_swig_ptr(invlists.get_ids(number), size)] = number
        return lists

    def lists_of(self, rows: np.ndarray) -> np.ndarray | None:
        """(M,) int32: the IVF list holding each of `rows` (M,); None when the index is not IVF."""
        return None if self._lists is None else self._lists.array[rows]

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def item_ids(self) -> np.ndarray:
        """(N,) object: row -> item_id."""
        return self._ids.array

    @property
    def embeddings(self) -> np.ndarray:
        """(N, D) float32: row -> item vector."""
        return self._embeddings.array

    def add(self, vectors: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """Append rows (M, D) named `item_ids` (M,); their row numbers (M,)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        start = len(self)
        self._ids.extend(np.asarray(item_ids, dtype=object))
        self._embeddings.extend(vectors)
        if self._lists is not None:  # the list IVF's add puts each vector in: its nearest centroid
            self._lists.extend(self._ivf.quantizer.assign(vectors, 1)[:, 0])
        self.index.add(vectors)
        return np.arange(start, len(self))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (B, D) -> (similarities (B, k'), rows (B, k')), k' = min(k, len), best first.

        A query the index answered short (slots of row -1) is completed exactly from the rows
        it did not return, so every query gets k' distinct rows.
        """
        k = min(k, len(self))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        sims, rows = self.index.search(queries, k)
        for j in np.flatnonzero((rows < 0).any(axis=1)):
            sims[j], rows[j] = self._complete(queries[j], sims[j], rows[j], None, k)
        return sims, rows

    def search_subset(self, query: np.ndarray, k: int, rows: np.ndarray | None = None,
                      mask: np.ndarray | None = None, count: int | None = None,
                      post: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The exact, post-filtered or selector top min(k, count) of a subset for one query (D,),
        best first.

        The subset is `rows` (sorted, M) or `mask` (N,) bool with `count` True; small subsets
        are scanned exactly, broad ones post-filtered (unless `post` is False: the caller
        tried already), the rest searched through the index with a bitmap selector.
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        count = len(rows) if rows is not None else int(count if count is not None else mask.sum())
        share = count / max(1, len(self))
        if count <= EXACT_SCAN_MAX or (self._hnsw is not None and share < HNSW_MIN_SHARE):
            sims, found = top_rows(query, self.embeddings, rows if rows is not None else np.flatnonzero(mask), k)
            return sims[0], found[0]
        if mask is None:
            mask = np.zeros(len(self), bool)
            mask[rows] = True
        k = min(k, count)
        if post:
            found = self.search_post(query[0], k, share, mask.__getitem__, count)
            if found is not None:
                return found
        sims, found = self.search_bitmap(query, k, np.packbits(mask, bitorder="little"), len(mask), share)
        return sims[0], found[0]

    def search_bitmap(self, queries: np.ndarray, k: int, bitmap: np.ndarray, n: int,
                      share: float) -> tuple[np.ndarray, np.ndarray]:
        """The top k of a subset for queries (B, D): (similarities (B, k), rows (B, k)), best
        first. The subset is `bitmap` (packed little-endian bits over rows 0..n-1; rows from n
        on are outside it), `share` of the index; a query the index answers short is completed
        exactly from the subset's other rows."""
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        if self._ivf is not None:
            nprobe = math.ceil(self.nprobe * min(MAX_PROBE_FACTOR, share ** -PROBE_EXPONENT))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=min(self._ivf.nlist, nprobe))
        elif self._hnsw is not None:
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=math.ceil(2 * max(self.ef_search, k) / share))
        else:
            params = faiss.SearchParameters(sel=selector)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        sims, found = self.index.search(queries, k, params=params)
        return self._completed(queries, sims, found, bitmap, n, k)

    def search_lists(self, queries: np.ndarray, k: int, lists: np.ndarray, scores: np.ndarray,
                     bitmap: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """search_bitmap on an IVF index over the given lists (B, W) per query (-1: none) with
        their centroid scores (B, W), not the index's nearest nprobe."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        lists = np.ascontiguousarray(lists, dtype=np.int64)
        sims = np.empty((len(queries), k), np.float32)
        found = np.empty((len(queries), k), np.int64)
        params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)), nprobe=lists.shape[1])
        self._ivf.search_preassigned_c(len(queries), faiss.swig_ptr(queries), k, faiss.swig_ptr(lists),
                                       faiss.swig_ptr(np.ascontiguousarray(scores, np.float32)), faiss.swig_ptr(sims),
                                       faiss.swig_ptr(found), False, params)
        return self._completed(queries, sims, found, bitmap, n, k)

    def _completed(self, queries: np.ndarray, sims: np.ndarray, found: np.ndarray, bitmap: np.ndarray, n: int,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
        short = np.flatnonzero((found < 0).any(axis=1))
        if len(short):
            mask = np.zeros(len(self), bool)
            mask[:n] = np.unpackbits(bitmap, count=n, bitorder="little").astype(bool)
            for j in short:
                more_sims, more = self._complete(queries[j], sims[j], found[j], mask, k)
                sims[j], found[j] = -np.inf, -1
                sims[j, :len(more)], found[j, :len(more)] = more_sims, more
        return sims, found

    def search_post(self, query: np.ndarray, k: int, share: float, accepts: Callable[[np.ndarray], np.ndarray],
                    count: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Post-filtering for query (D,): the subset's top k (sims (k,), rows (k,)) among the
        index's plain top k/share·slack, where `accepts(rows (M,))` -> (M,) bool says which rows
        are in it; None when the subset is too small or too narrow for it (`count` rows, about;
        `share` of the index), the index is HNSW, or fewer than k were kept."""
        count = share * len(self) if count is None else count
        if share < POSTFILTER_MIN_SHARE or count <= EXACT_SCAN_MAX or self._hnsw is not None or k > count:
            return None  # HNSW: its plain beam loses recall this deep (0.94 at a 50 % share)
        depth = min(len(self), math.ceil(k / share * POSTFILTER_SLACK))
        sims, rows = self.index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), depth)
        sims, rows = sims[0], rows[0]
        keep = np.flatnonzero(rows >= 0)
        keep = keep[accepts(rows[keep])]
        if len(keep) < k:
            return None
        return sims[keep[:k]], rows[keep[:k]]

    def _complete(self, query: np.ndarray, sims: np.ndarray, rows: np.ndarray, mask: np.ndarray | None,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        """Fill a short answer (rows -1) with the exact best of the eligible rows not returned."""
        got = rows[rows >= 0]
        eligible = np.ones(len(self), bool) if mask is None else mask.copy()
        eligible[got] = False
        more_sims, more = top_rows(query[None, :], self.embeddings, np.flatnonzero(eligible), k - len(got))
        all_sims = np.concatenate([sims[rows >= 0], more_sims[0]])
        all_rows = np.concatenate([got, more[0]])
        order = np.argsort(-all_sims, kind="stable")
        return all_sims[order], all_rows[order]
