"""The online ANN operator: load a built index and answer top-K' inner-product queries."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from recsys.artifacts import store
from recsys.artifacts.errors import ArtifactError
from recsys.index import formats


class Searcher:
    def __init__(self, directory: Path, nprobe: int | None = None, ef_search: int | None = None):
        directory = Path(directory)
        self.manifest = store.verify(directory)
        try:
            self.index = faiss.read_index(str(directory / "index.faiss"))
            self.item_ids = np.load(directory / "item_ids.npy")
            self.embeddings = np.load(directory / "embeddings.npy")
        except (OSError, RuntimeError, ValueError) as e:
            raise ArtifactError(f"{directory}: index unreadable ({e})") from None
        n, dim = self.embeddings.shape
        if not (self.index.ntotal == n == len(self.item_ids) == self.manifest.get("count")) \
                or not (self.index.d == dim == self.manifest.get("dim")):
            raise ArtifactError(f"{directory}: index, id map, embeddings and manifest disagree on size")
        if self.index.metric_type != faiss.METRIC_INNER_PRODUCT or self.manifest.get("metric") != store.INDEX_METRIC:
            raise ArtifactError(f"{directory}: index metric is not {store.INDEX_METRIC}")
        formats.set_search_params(self.index, nprobe=nprobe, ef_search=ef_search)
        self.dim = dim

    def __len__(self) -> int:
        return len(self.item_ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (B, D) -> (similarities (B, k'), rows (B, k')), k' = min(k, len), best first.

        Approximate indexes may return fewer than k' hits for a query; such slots hold row -1.
        """
        k = min(k, len(self))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
