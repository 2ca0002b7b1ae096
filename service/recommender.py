"""The online recommender: a chain of small operators over one artifact version.

    user feature store -> user tower -> ANN top-K' -> filter (seen) -> CTR/CVR heads -> top-k

Each operator loads its own artifact; the chain checks that the model and the index agree
(model version, dimension, item count, metric) before it serves anything.

A user the feature store does not know can be served from raw `user_features`: the user
tower gets them with an out-of-vocabulary user id (the empty string, which no vocabulary
holds: the data contract rejects empty ids), so the id embedding is the OOV bucket's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import math

import numpy as np
import pandas as pd

from artifacts import store
from artifacts.errors import ArtifactError
from artifacts.feature_store import FeatureStore
from artifacts.features import KEYS, FeatureSpec
from artifacts.heads import Heads
from artifacts.numpy_tower import NumpyTower
from artifacts.towers import Tower
from index.searcher import Searcher
from service.errors import InvalidRequest, UnknownUser
from service.schemas import MAX_FEATURE_VALUE_LENGTH, Objective

OOV_ID = ""  # never in a vocabulary: the data contract rejects empty ids


@dataclass
class Scored:
    item_ids: np.ndarray
    score: np.ndarray
    p_click: np.ndarray | None
    p_conversion: np.ndarray | None
    similarity: np.ndarray | None
    overfetched: int = 0            # index candidates fetched beyond k (filtered or re-ranked away)
    fallback: str | None = None     # "popular" when no user vector was used


class Recommender:
    def __init__(self, version_dir: Path, candidates: int = 100, nprobe: int | None = None,
                 ef_search: int | None = None, user_tower: str = "numpy"):
        version_dir = Path(version_dir)
        self.manifest = store.verify(version_dir)
        self.version = self.manifest["version"]
        spec = FeatureSpec.from_list(self.manifest["features"], where=str(version_dir / store.MANIFEST))
        self.user_features = spec.tower("user")
        self.users = FeatureStore.load(version_dir / "users.parquet", self.user_features, "user")
        self.user_tower = (NumpyTower.load(version_dir / "user_tower") if user_tower == "numpy"
                           else Tower(version_dir / "user_tower", self.user_features))
        self.searcher = Searcher(version_dir / store.INDEX_DIR, nprobe=nprobe, ef_search=ef_search)
        store.check_index(version_dir, self.manifest, self.searcher.manifest)
        self.heads = Heads.load(version_dir)
        self.candidates = candidates
        self.seen, self.popular_rows, self.popularity = self._load_seen(version_dir / "seen.parquet")

    @property
    def item_count(self) -> int:
        return len(self.searcher)

    def _load_seen(self, path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """user_id -> index rows that user interacted with; rows by popularity; popularity by row.

        Popularity is the share of training users who interacted with an item (the seen
        pairs are distinct), ties broken by index row, so every item gets a rank.
        """
        try:
            seen = pd.read_parquet(path)
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path}: unreadable ({e})") from None
        row_of = pd.Series(np.arange(len(self.searcher)), index=self.searcher.item_ids)
        seen = seen[seen["item_id"].isin(row_of.index)]
        seen = seen.assign(row=row_of.loc[seen["item_id"]].to_numpy())
        by_user = {u: g.to_numpy(np.int64) for u, g in seen.groupby("user_id")["row"]}
        counts = np.bincount(seen["row"].to_numpy(np.int64), minlength=len(self.searcher))
        popularity = counts / max(1, seen["user_id"].nunique())
        order = np.lexsort((np.arange(len(counts)), -counts))
        return by_user, order, popularity

    def cold_start_columns(self, features: dict) -> dict[str, np.ndarray]:
        """Tower input columns for one new user, validated against the feature spec (422)."""
        key = KEYS["user"]
        expected = {f.name: f for f in self.user_features if f.name != key}

        def invalid(name: str, msg: str, kind: str) -> InvalidRequest:
            return InvalidRequest(f"user_features.{name}: {msg}",
                                  [{"loc": ["body", "user_features", name], "msg": msg, "type": kind}])

        for name in features:
            if name not in expected:
                raise invalid(name[:64], f"not a feature of this model's user tower (expected {sorted(expected)})",
                              "unknown_feature")
        cols = {}
        for name, f in expected.items():
            if name not in features:
                raise invalid(name, "missing; a new user needs every user feature", "missing")
            value = features[name]
            if f.is_numeric:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise invalid(name, "must be a finite number", "numeric")
                cols[name] = np.array([value], np.float32)
            else:
                if isinstance(value, bool) or not isinstance(value, (int, str)) \
                        or len(str(value)) > MAX_FEATURE_VALUE_LENGTH:
                    raise invalid(name, f"must be a string of at most {MAX_FEATURE_VALUE_LENGTH} characters "
                                        "or an integer", f.kind)
                cols[name] = np.array([str(value)], dtype=object)
        if any(f.name == key for f in self.user_features):
            cols[key] = np.array([OOV_ID], dtype=object)
        return cols

    def user_embedding(self, user_id: str, features: dict | None = None) -> np.ndarray:
        """The stored user's embedding, else one from `features`; UnknownUser without either."""
        cold = self.cold_start_columns(features) if features is not None else None  # always validated
        pos = self.users.position.get(user_id)
        if pos is not None:
            return self.user_tower(self.users.rows([pos]))[0]
        if cold is None:
            raise UnknownUser(f"unknown user_id {user_id!r} (send user_features to serve a new user)")
        return self.user_tower(cold)[0]

    def recommend(self, user_id: str, k: int, objective: Objective = Objective.ctcvr,
                  exclude_seen: bool = False, user_features: dict | None = None) -> Scored:
        """Best min(k, available) items for one user, best first."""
        u = self.user_embedding(user_id, user_features)
        seen = self.seen.get(user_id, np.empty(0, np.int64)) if exclude_seen else np.empty(0, np.int64)
        # Over-fetch by the number of items that will be filtered out, so k still come back.
        sims, rows = self.searcher.search(u[None, :], max(k, self.candidates) + len(seen))
        sims, rows = sims[0], rows[0]
        fetched = int((rows >= 0).sum())
        keep = rows >= 0
        if len(seen):
            keep &= ~np.isin(rows, seen)
        sims, rows = sims[keep], rows[keep]
        p_click, p_conv = self.heads.predict(u[None, :], self.searcher.embeddings[rows])
        score = {Objective.ctcvr: p_click * p_conv, Objective.ctr: p_click,
                 Objective.cvr: p_conv, Objective.similarity: sims}[objective]
        order = np.lexsort((-sims, -score))[:k]  # ties broken by similarity
        return Scored(self.searcher.item_ids[rows[order]], score[order], p_click[order], p_conv[order], sims[order],
                      overfetched=max(0, fetched - len(order)))

    def popular(self, k: int) -> Scored:
        """The k most-interacted items of the training data: the unknown-user fallback."""
        rows = self.popular_rows[:k]
        return Scored(self.searcher.item_ids[rows], self.popularity[rows], None, None, None, fallback="popular")

    def smoke_test(self) -> None:
        """Real queries through every operator, so a broken artifact fails at load, not on traffic."""
        if len(self.users):
            out = self.recommend(str(self.users.ids[0]), 1)
            if len(out.item_ids) != min(1, self.item_count) or not np.all(np.isfinite(out.score)):
                raise ArtifactError(f"model {self.version}: smoke query returned {len(out.item_ids)} item(s) "
                                    f"with scores {out.score.tolist()}")
