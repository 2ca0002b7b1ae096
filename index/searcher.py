"""The online ANN operator: top-K' inner-product queries over a version's item index."""

from __future__ import annotations

import numpy as np

from recsys.artifacts.version import ItemIndex
from recsys.index import formats


class Searcher:
    """`search(queries (B, D), k)` over the index `Version.index()` loaded and checked."""

    def __init__(self, index: ItemIndex, nprobe: int | None = None, ef_search: int | None = None):
        self.index = index.ann
        self.item_ids = index.item_ids
        self.embeddings = index.embeddings
        self.manifest = index.manifest
        self.dim = self.embeddings.shape[1]
        formats.set_search_params(self.index, nprobe=nprobe, ef_search=ef_search)

    def __len__(self) -> int:
        return len(self.item_ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (B, D) -> (similarities (B, k'), rows (B, k')), k' = min(k, len), best first.

        Approximate indexes may return fewer than k' hits for a query; such slots hold row -1.
        """
        k = min(k, len(self))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
