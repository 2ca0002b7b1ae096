"""The online recommender: a chain of small operators over one artifact version.

    user feature store -> user tower -> ANN top-K' -> filter (seen) -> CTR/CVR heads -> top-k

Each operator gets its artifact from one opened version (artifacts/version.py), which
verified every checksum and checked that the model and the index agree (model version,
dimension, item count, metric) before anything here loads.

A user the feature store does not know can be served from raw `user_features`: the user
tower gets them with an out-of-vocabulary user id (the empty string, which no vocabulary
holds: the data contract rejects empty ids), so the id embedding is the OOV bucket's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.version import Version
from recsys.index.searcher import Searcher
from recsys.service.filters import ItemAttributes
from recsys.service.live_catalogue import LiveCatalogue
from recsys.service.domain import InvalidRequest, Objective, Query, RequestError, UnknownUser
from recsys.service.settings import Settings
from recsys.service.user_features import columns as feature_columns

__all__ = ["Query", "Recommender", "Scored"]


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
    def __init__(self, version: Version, settings: Settings):
        """The chain over an opened version (`Version.open(..., need_index=True)`), tuned by the
        serve settings (candidates, nprobe, ef_search, user_tower)."""
        self.version = version.name
        self.manifest = version.manifest
        self.user_features = version.spec.tower("user")
        self.users = version.table("user")
        self.user_tower = (version.numpy_tower("user") if settings.user_tower == "numpy"
                           else version.saved_tower("user"))
        self.searcher = Searcher(version.index(), nprobe=settings.nprobe, ef_search=settings.ef_search)
        items = version.table("item")
        if not np.array_equal(items.ids, self.searcher.item_ids):
            raise ArtifactError(f"model {self.version}: index rows are not the catalogue's items in order")
        self.attributes = ItemAttributes(items.features, pd.DataFrame(items.columns))  # rows = index rows
        self.catalogue = LiveCatalogue(self.searcher, version.numpy_tower("item"), items, self.attributes)
        self.heads = version.heads()
        self.candidates = settings.candidates
        self.seen, self.popular_rows, self.popularity = self._by_user(version.seen())

    @property
    def item_count(self) -> int:
        return self.catalogue.size

    def _by_user(self, seen: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """user_id -> index rows that user interacted with; rows by popularity; popularity by row.

        Popularity is the share of training users who interacted with an item (the seen
        pairs are distinct), ties broken by index row, so every item gets a rank.
        """
        row_of = pd.Series(np.arange(len(self.searcher)), index=self.searcher.item_ids)
        seen = seen[seen["item_id"].isin(row_of.index)]
        seen = seen.assign(row=row_of.loc[seen["item_id"]].to_numpy())
        by_user = {u: g.to_numpy(np.int64) for u, g in seen.groupby("user_id")["row"]}
        counts = np.bincount(seen["row"].to_numpy(np.int64), minlength=len(self.searcher))
        popularity = counts / max(1, seen["user_id"].nunique())
        order = np.lexsort((np.arange(len(counts)), -counts))
        return by_user, order, popularity

    def cold_start_columns(self, features: dict) -> dict[str, np.ndarray]:
        """Tower input columns for one new user, validated against the feature spec (InvalidRequest)."""
        return feature_columns(features, self.user_features)

    def user_vectors(self, queries: Sequence[Query]) -> tuple[np.ndarray, list[RequestError | None]]:
        """Embeddings (B, D) of the queries' users, stored users in one tower call; per-query errors.

        A stored user's features win over any `user_features` sent (still validated); a user
        the store does not know is embedded from its `user_features`, else UnknownUser.
        """
        errors: list[RequestError | None] = [None] * len(queries)
        positions, stored, cold = [], [], []
        for i, q in enumerate(queries):
            try:
                cols = self.cold_start_columns(q.user_features) if q.user_features is not None else None
            except InvalidRequest as e:
                errors[i] = e
                continue
            pos = self.users.position.get(q.user_id)
            if pos is not None:
                positions.append(pos)
                stored.append(i)
            elif cols is not None:
                cold.append((i, cols))
            else:
                errors[i] = UnknownUser(f"unknown user_id {q.user_id!r} (send user_features to serve a new user)")
        vectors = np.zeros((len(queries), self.searcher.dim), np.float32)
        if stored:
            vectors[stored] = self.user_tower(self.users.rows(positions))
        for i, cols in cold:
            vectors[i] = self.user_tower(cols)[0]
        return vectors, errors

    def recommend_batch(self, queries: Sequence[Query]) -> list[Scored | RequestError]:
        """Each query's best min(k, available) items, best first, or the error that query raised.

        One user-tower call for the stored users, one index search per over-fetch size (queries
        filtering different numbers of seen items need different depths), one heads call per
        search; only the final top-k selection is per query, over its K' candidates.
        """
        vectors, errors = self.user_vectors(queries)
        out: list[Scored | RequestError] = list(errors)
        empty = np.empty(0, np.int64)
        seen = [self.seen.get(q.user_id, empty) if q.exclude_seen else empty for q in queries]
        # Over-fetch by the number of items that will be filtered out, so k still come back.
        depth: dict[int, list[int]] = {}
        for i, q in enumerate(queries):
            if errors[i] is None:
                depth.setdefault(max(q.k, self.candidates) + len(seen[i]), []).append(i)
        for fetch, members in depth.items():
            sims, rows = self.searcher.search(vectors[members], fetch)
            p_click, p_conv = self.heads.predict(vectors[members][:, None, :],
                                                 self.searcher.embeddings[np.maximum(rows, 0)])
            for j, i in enumerate(members):
                out[i] = self._select(queries[i], sims[j], rows[j], p_click[j], p_conv[j], seen[i])
        return out

    def _select(self, q: Query, sims, rows, p_click, p_conv, seen) -> Scored:
        """The top k of one query's candidates (K',), after dropping missing and seen rows."""
        fetched = int((rows >= 0).sum())
        keep = rows >= 0
        if len(seen):
            keep &= ~np.isin(rows, seen)
        sims, rows, p_click, p_conv = sims[keep], rows[keep], p_click[keep], p_conv[keep]
        score = {Objective.ctcvr: p_click * p_conv, Objective.ctr: p_click,
                 Objective.cvr: p_conv, Objective.similarity: sims}[q.objective]
        order = np.lexsort((-sims, -score))[:q.k]  # ties broken by similarity
        return Scored(self.searcher.item_ids[rows[order]], score[order], p_click[order], p_conv[order], sims[order],
                      overfetched=max(0, fetched - len(order)))

    def recommend(self, user_id: str, k: int, objective: Objective = Objective.ctcvr,
                  exclude_seen: bool = False, user_features: dict | None = None) -> Scored:
        """Best min(k, available) items for one user, best first (a batch of one)."""
        out = self.recommend_batch([Query(user_id, k, objective, exclude_seen, user_features)])[0]
        if isinstance(out, RequestError):
            raise out
        return out

    def popular(self, k: int) -> Scored:
        """The k most-interacted items of the training data: the unknown-user fallback."""
        rows = self.popular_rows[self.searcher.eligible[self.popular_rows]][:k]
        return Scored(self.searcher.item_ids[rows], self.popularity[rows], None, None, None, fallback="popular")

    def smoke_test(self) -> None:
        """Real queries through every operator, so a broken artifact fails at load, not on traffic."""
        if len(self.users):
            out = self.recommend(str(self.users.ids[0]), 1)
            if len(out.item_ids) != min(1, self.item_count) or not np.all(np.isfinite(out.score)):
                raise ArtifactError(f"model {self.version}: smoke query returned {len(out.item_ids)} item(s) "
                                    f"with scores {out.score.tolist()}")
