"""The online ANN operator: top-K' inner-product queries over a version's item index.

The index grows while it serves: `add` appends rows (new items, new versions of changed
items) and `disable` / `enable` mark rows ineligible (a changed item's old row, an item out
of stock, a deleted one). Searches skip ineligible rows inside FAISS (an ID selector), so a
query still gets its k best eligible rows. FAISS does not allow `add` concurrently with
`search` on one index: the caller serialises them (the service runs both on its batching
thread).
"""

from __future__ import annotations

import faiss
import numpy as np

from recsys.artifacts.version import ItemIndex
from recsys.index import formats


class Searcher:
    """`search(queries (B, D), k)` over the index `Version.index()` loaded and checked."""

    def __init__(self, index: ItemIndex, nprobe: int | None = None, ef_search: int | None = None):
        self.index = index.ann
        self.manifest = index.manifest
        self._n = len(index.item_ids)
        # Growth buffers (capacity doubles), so appending a few rows copies nothing.
        self._ids = np.asarray(index.item_ids).astype(object)
        self._embeddings = index.embeddings
        self._eligible = np.ones(self._n, bool)
        self._bitmap: np.ndarray | None = None  # packed eligible rows, rebuilt after a change
        self.ineligible = 0
        self.dim = self._embeddings.shape[1]
        self.nprobe = nprobe or formats.DEFAULT_NPROBE
        self.ef_search = ef_search or formats.DEFAULT_EF_SEARCH
        formats.set_search_params(self.index, nprobe=nprobe, ef_search=ef_search)

    def __len__(self) -> int:
        return self._n

    @property
    def item_ids(self) -> np.ndarray:
        """(N,) object: row -> item_id."""
        return self._ids[:self._n]

    @property
    def embeddings(self) -> np.ndarray:
        """(N, D) float32: row -> item vector."""
        return self._embeddings[:self._n]

    @property
    def eligible(self) -> np.ndarray:
        """(N,) bool: rows a search may return."""
        return self._eligible[:self._n]

    def add(self, vectors: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """Append rows (M, D) named `item_ids` (M,), eligible; their row numbers (M,)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        m = len(vectors)
        need = self._n + m
        if need > len(self._ids):
            cap = max(need, 2 * len(self._ids), 1024)
            self._ids = _grow(self._ids, cap)
            self._embeddings = _grow(self._embeddings, cap)
            self._eligible = _grow(self._eligible, cap)
        rows = np.arange(self._n, need)
        self._ids[rows] = np.asarray(item_ids, dtype=object)
        self._embeddings[rows] = vectors
        self._eligible[rows] = True
        self.index.add(vectors)
        self._n = need
        self._bitmap = None
        return rows

    def disable(self, rows) -> None:
        self._set(rows, False)

    def enable(self, rows) -> None:
        self._set(rows, True)

    def _set(self, rows, value: bool) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows):
            self._eligible[rows] = value
            self.ineligible = int(self._n - self._eligible[:self._n].sum())
            self._bitmap = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (B, D) -> (similarities (B, k'), rows (B, k')), k' = min(k, len), best first.

        Only eligible rows come back. Approximate indexes may return fewer than k' hits for a
        query; such slots hold row -1.
        """
        k = min(k, len(self))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not self.ineligible:
            return self.index.search(queries, k)
        if self._bitmap is None:
            # IDSelectorBitmap reads bit (i & 7) of byte i >> 3: little-endian bit order.
            self._bitmap = np.packbits(self._eligible[:self._n], bitorder="little")
        selector = faiss.IDSelectorBitmap(self._n, faiss.swig_ptr(self._bitmap))  # alive through the search
        return self.index.search(queries, k, params=self._params(selector))

    def _params(self, selector) -> faiss.SearchParameters:
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is not None:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
        elif isinstance(faiss.downcast_index(self.index), faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=faiss.downcast_index(self.index).hnsw.efSearch)
        else:
            params = faiss.SearchParameters(sel=selector)
        return params


def _grow(array: np.ndarray, capacity: int) -> np.ndarray:
    out = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    out[:len(array)] = array
    return out
