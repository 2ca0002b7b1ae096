"""The online recommender: a chain of small operators over one artifact version.

    user feature store -> user tower -> ANN top-K' -> filter (seen) -> CTR/CVR heads -> top-k

Each operator loads its own artifact; the chain checks that the model and the index agree
(same model version and dimension) before it serves anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from artifacts import store
from artifacts.errors import ArtifactError
from artifacts.feature_store import FeatureStore
from artifacts.features import FeatureSpec
from artifacts.heads import Heads
from artifacts.towers import Tower
from index.searcher import Searcher
from service.errors import UnknownUser
from service.schemas import Objective


@dataclass
class Scored:
    item_ids: np.ndarray
    score: np.ndarray
    p_click: np.ndarray
    p_conversion: np.ndarray
    similarity: np.ndarray


class Recommender:
    def __init__(self, version_dir: Path, candidates: int = 100, nprobe: int | None = None,
                 ef_search: int | None = None):
        version_dir = Path(version_dir)
        self.manifest = store.verify(version_dir)
        self.version = self.manifest["version"]
        spec = FeatureSpec.from_list(self.manifest["features"], where=str(version_dir / store.MANIFEST))
        self.users = FeatureStore.load(version_dir / "users.parquet", spec.tower("user"), "user")
        self.user_tower = Tower(version_dir / "user_tower", spec.tower("user"))
        self.searcher = Searcher(version_dir / store.INDEX_DIR, nprobe=nprobe, ef_search=ef_search)
        index = self.searcher.manifest
        if index["model_version"] != self.version or index["dim"] != self.manifest["embedding_dim"]:
            raise ArtifactError(f"{version_dir}: index was built for model {index['model_version']} "
                                f"(dim {index['dim']}), not {self.version} (dim {self.manifest['embedding_dim']})")
        self.heads = Heads.load(version_dir)
        self.candidates = candidates
        self.seen = self._load_seen(version_dir / "seen.parquet")

    def _load_seen(self, path: Path) -> dict[str, np.ndarray]:
        """user_id -> index rows of the items that user already interacted with."""
        seen = pd.read_parquet(path)
        row_of = pd.Series(np.arange(len(self.searcher)), index=self.searcher.item_ids)
        seen = seen[seen["item_id"].isin(row_of.index)]
        seen = seen.assign(row=row_of.loc[seen["item_id"]].to_numpy())
        return {u: g.to_numpy(np.int64) for u, g in seen.groupby("user_id")["row"]}

    def user_embedding(self, user_id: str) -> np.ndarray:
        pos = self.users.position.get(user_id)
        if pos is None:
            raise UnknownUser(f"unknown user_id {user_id!r}")
        return self.user_tower(self.users.rows([pos]))[0]

    def recommend(self, user_id: str, k: int, objective: Objective = Objective.ctcvr,
                  exclude_seen: bool = False) -> Scored:
        """Best min(k, available) items for one user, best first."""
        u = self.user_embedding(user_id)
        seen = self.seen.get(user_id, np.empty(0, np.int64)) if exclude_seen else np.empty(0, np.int64)
        # Over-fetch by the number of items that will be filtered out, so k still come back.
        sims, rows = self.searcher.search(u[None, :], max(k, self.candidates) + len(seen))
        sims, rows = sims[0], rows[0]
        keep = rows >= 0
        if len(seen):
            keep &= ~np.isin(rows, seen)
        sims, rows = sims[keep], rows[keep]
        p_click, p_conv = self.heads.predict(u[None, :], self.searcher.embeddings[rows])
        score = {Objective.ctcvr: p_click * p_conv, Objective.ctr: p_click,
                 Objective.cvr: p_conv, Objective.similarity: sims}[objective]
        order = np.lexsort((-sims, -score))[:k]  # ties broken by similarity
        return Scored(self.searcher.item_ids[rows[order]], score[order], p_click[order], p_conv[order], sims[order])

    def smoke_test(self) -> None:
        """One real query through every operator, so a broken artifact fails at load."""
        if len(self.users):
            self.recommend(str(self.users.ids[0]), 1)
