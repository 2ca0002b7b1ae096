"""The online recommender: a chain of small operators over one artifact version.

    user feature store -> user tower -> ANN top-K' -> filter (seen) -> CTR/CVR heads -> top-k

A request that restricts the eligible items (filters, exclude_items, include_items, diversity,
or any item made unavailable) compiles them into a row set (service/filters.py) and searches
only those rows: exactly when they are few, through the index with a selector when many
(index/searcher.py), so its K' candidates are the true filtered top-K', never a post-filtered
remainder of the unfiltered one. A filter's matching rows are prepared once and kept
(index/prepared.py, service/subset_cache.py): a recurring filter then scans its own rows near
the query, with availability, exclusions and items added since applied per request.

Each operator gets its artifact from one opened version (artifacts/version.py), which
verified every checksum and checked that the model and the index agree (model version,
dimension, item count, metric) before anything here loads.

A user the feature store does not know can be served from raw `user_features`: the user
tower gets them with an out-of-vocabulary user id (the empty string, which no vocabulary
holds: the data contract rejects empty ids), so the id embedding is the OOV bucket's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.features import KEYS
from recsys.artifacts.user_history import COLUMN as HISTORY
from recsys.artifacts.user_history import history_column
from recsys.artifacts.version import Version, hold
from recsys.index import prepared
from recsys.index.searcher import Searcher, top_rows
from recsys.service.domain import InvalidRequest, Objective, Query, UnknownUser
from recsys.service.live_catalogue import LiveCatalogue
from recsys.service.seen import SeenRows
from recsys.service.filters import Condition, ItemAttributes, RowSet
from recsys.service.settings import Settings
from recsys.service.subset_cache import SubsetCache
from recsys.service.user_features import columns as feature_columns
from recsys.service.user_features import neutral_columns, numeric_ranges

__all__ = ["Query", "Recommender", "Scored"]


class NonFiniteVector(ArithmeticError):
    """A stored user's embedding is NaN or infinite: the model's fault, never searched."""


@dataclass
class Scored:
    item_ids: np.ndarray
    score: np.ndarray
    p_click: np.ndarray | None
    p_conversion: np.ndarray | None
    similarity: np.ndarray | None
    overfetched: int = 0            # index candidates fetched beyond k (filtered or re-ranked away)
    fallback: str | None = None     # "popular" when no user vector was used
    attributes: list[dict] | None = None  # per item, the requested fields' values
    recent_items_ignored: int = 0   # recent_items the catalogue does not know


# A diversity cap can leave k unfilled from K' candidates: fetch this many times deeper, up to
# DIVERSITY_MAX_FETCH candidates (past that the answer is what the caps allow from them).
DIVERSITY_DEEPEN = 4
DIVERSITY_MAX_FETCH = 20_000
# A filter matching fewer rows (and under PREPARED_MIN_SHARE of the catalogue) is compiled per
# request: an exact scan of a few thousand rows costs about what a prepared one does, and
# one-off id lists would churn the cache. A small catalogue prepares its filters all the same.
PREPARED_MIN_ROWS = 2_000
PREPARED_MIN_SHARE = 0.05
# Items added since a filter was prepared are tested per request; past this many (or an
# eighth of the filter's rows) it is prepared again.
PREPARED_STALE_ROWS = 20_000


@dataclass
class Plan:
    """A query's validated restrictions."""

    conditions: list[Condition]
    fields: tuple[str, ...]
    diversity: tuple[str, int] | None


class Recommender:
    def __init__(self, version: Version, settings: Settings,
                 online_history: Callable[[str], list[str]] | None = None):
        """The chain over an opened version (`Version.open(..., need_index=True)`), tuned by the
        serve settings (candidates, nprobe, ef_search, user_tower). `online_history(user_id)`:
        the items of the user's events since training, oldest first (the service's event log)."""
        self.online_history = online_history or (lambda user_id: [])
        # Held until the service moves to another version (`release`): `recsys prune` never
        # removes a version being served. Everything is read into memory here, so requests
        # still running on a released version need none of its files.
        self._hold = hold(version.path)
        try:
            self._load(version, settings)
        except BaseException:
            self.release()
            raise

    def _load(self, version: Version, settings: Settings) -> None:
        self.version = version.name
        self.manifest = version.manifest
        self.user_features = version.spec.tower("user")
        self.users = version.table("user")
        numpy_tower = version.numpy_tower("user")
        self.feature_ranges = numeric_ranges(numpy_tower, self.user_features)
        self.neutral_columns = neutral_columns(numpy_tower, self.user_features)
        # The user tower's history input: stored histories (training clicks), merged per request
        # with the online history and recent_items; None when the tower takes no history.
        self.histories = version.user_history()
        self.history_length = version.history_length
        self.user_tower = numpy_tower if settings.user_tower == "numpy" else version.saved_tower("user")
        items = version.table("item")
        index = version.index()
        if not np.array_equal(items.ids, index.item_ids):
            raise ArtifactError(f"model {self.version}: index rows are not the catalogue's items in order")
        # The catalogue's id strings name the index rows too: one copy of a million ids, not two.
        self.searcher = Searcher(replace(index, item_ids=items.ids), nprobe=settings.nprobe,
                                 ef_search=settings.ef_search)
        self.heads = version.heads()
        self.candidates = settings.candidates
        self.seen, self.popular_rows, self.popularity = self._by_user(version.seen())
        self.attributes = self._attributes(items)
        self.subsets = SubsetCache(settings.filter_cache_mb << 20)
        self.catalogue = LiveCatalogue(self.searcher, version.numpy_tower("item"), items, self.attributes)
        self.default_fields = tuple(f.strip() for f in settings.default_fields.split(",") if f.strip())
        try:
            self.attributes.check_names(self.default_fields, "default_fields")
        except InvalidRequest as e:
            raise ArtifactError(f"model {self.version}: setting {e.message}") from None

    def _attributes(self, catalogue) -> ItemAttributes:
        """The catalogue's attributes aligned to index rows (its rows are the index's, checked
        at load)."""
        return ItemAttributes(catalogue.features, catalogue.columns | {"item_id": catalogue.ids}, catalogue.position)

    def release(self) -> None:
        """Let `recsys prune` remove this version (the service serves another one now)."""
        self._hold.close()

    @property
    def item_count(self) -> int:
        return self.catalogue.size

    def _by_user(self, seen: pd.DataFrame) -> tuple[SeenRows, np.ndarray, np.ndarray]:
        """user_id -> index rows that user interacted with; rows by popularity; popularity by row.

        Popularity is the share of training users who interacted with an item (the seen
        pairs are distinct), ties broken by index row, so every item gets a rank.
        """
        # Factorized first, so only distinct ids become Python strings (pairs run to millions).
        codes, distinct = pd.factorize(seen["item_id"].astype(str))
        row_of = pd.Index(self.searcher.item_ids, dtype=object, copy=False).get_indexer(
            np.asarray(distinct, dtype=object))
        rows = row_of[codes] if len(codes) else np.empty(0, np.int64)
        known = rows >= 0
        users, rows = seen["user_id"].astype(str)[known], rows[known]
        counts = np.bincount(rows, minlength=len(self.searcher))
        by_user = SeenRows(users, rows)
        popularity = counts / max(1, len(by_user))
        order = np.lexsort((np.arange(len(counts)), -counts))
        return by_user, order, popularity

    def cold_start_columns(self, features: dict) -> dict[str, np.ndarray]:
        """Tower input columns for one new user, validated against the feature spec (InvalidRequest)."""
        return feature_columns(features, self.user_features, self.feature_ranges)

    def history(self, q: Query) -> tuple[list[str], int]:
        """The user tower's history for `q` (stored, then online, then recent_items; the last
        history_length of them) and how many recent_items the catalogue does not know."""
        recent = [str(i) for i in q.recent_items or ()]
        known = [i for i in recent if self.catalogue.row(i) is not None]
        if not self.history_length:
            return [], len(recent) - len(known)
        stored = self.histories.get(q.user_id) if self.histories is not None else []
        merged = stored + self.online_history(q.user_id) + known
        return merged[-self.history_length:], len(recent) - len(known)

    def user_vectors(self, queries: Sequence[Query]) -> tuple[np.ndarray, list[Exception | None], list[int]]:
        """Embeddings (B, D) of the queries' users, stored users in one tower call; per-query
        errors; per query, the recent_items ignored.

        A stored user is embedded from the store's features, or from `user_features` when the
        request sends them (fresher values for this request; the store is not changed). A user
        the store does not know is embedded from its `user_features`, or, with a history model,
        from a history (recent_items or events) with neutral features; else UnknownUser. A
        non-finite vector is never searched: for a new user it is the request's fault
        (InvalidRequest), for a stored one the model's (NonFiniteVector, a server error).
        """
        errors: list[Exception | None] = [None] * len(queries)
        ignored = [0] * len(queries)
        histories: list[list[str]] = [[] for _ in queries]
        positions, stored, cold = [], [], []
        for i, q in enumerate(queries):
            try:
                cols = self.cold_start_columns(q.user_features) if q.user_features is not None else None
                histories[i], ignored[i] = self.history(q)
            except Exception as e:  # noqa: BLE001 - this query's error, whatever it is: not its batch-mates'
                errors[i] = e
                continue
            pos = self.users.position.get(q.user_id)
            if pos is not None and cols is None:
                positions.append(pos)
                stored.append(i)
            elif pos is not None:  # a known user with this request's features: its own id row
                cold.append((i, cols | {KEYS["user"]: np.array([q.user_id], dtype=object)}))
            elif cols is not None:
                cold.append((i, cols))
            elif histories[i]:
                cold.append((i, self.neutral_columns))
            else:
                errors[i] = UnknownUser(f"unknown user_id {q.user_id!r} (send user_features or recent_items "
                                        f"to serve a new user)" if self.history_length else
                                        f"unknown user_id {q.user_id!r} (send user_features to serve a new user)")
        vectors = np.zeros((len(queries), self.searcher.dim), np.float32)
        if stored:
            cols = self.users.rows(positions)
            if self.history_length:
                cols[HISTORY] = history_column([histories[i] for i in stored], self.history_length)
            vectors[stored] = self.user_tower(cols)
        for i, cols in cold:
            try:
                if self.history_length:
                    cols = cols | {HISTORY: history_column([histories[i]], self.history_length)}
                vectors[i] = self.user_tower(cols)[0]
            except Exception as e:  # noqa: BLE001 - as above
                errors[i] = e
        finite = np.isfinite(vectors).all(axis=1)
        for i in stored:
            if not finite[i]:
                errors[i] = NonFiniteVector(f"model {self.version}: non-finite embedding for stored user "
                                            f"{queries[i].user_id!r}")
        for i, _ in cold:
            if not finite[i] and errors[i] is None:
                errors[i] = InvalidRequest("user_features: these values give a non-finite user embedding",
                                           [{"loc": ["body", "user_features"], "msg": "non-finite user embedding",
                                             "type": "non_finite"}])
        return vectors, errors, ignored

    def plan(self, q: Query) -> Plan:
        """The query's filters, diversity and fields checked against the catalogue (InvalidRequest)."""
        attrs = self.attributes
        conditions = attrs.parse(q.filters)
        fields = tuple(q.fields) if q.fields is not None else self.default_fields
        attrs.check_names(fields, "fields")
        diversity = None
        if q.diversity is not None:
            attrs.check_categorical(q.diversity["attribute"], "diversity.attribute")
            diversity = (q.diversity["attribute"], int(q.diversity["max_per_value"]))
        return Plan(conditions, fields, diversity)

    def recommend_batch(self, queries: Sequence[Query]) -> list[Scored | Exception]:
        """Each query's best min(k, eligible) items, best first, or the error that query raised
        (a RequestError, or any other exception: a server fault of that query alone).

        One user-tower call for the stored users. Unrestricted queries share one index search
        per over-fetch size (queries filtering different numbers of seen items need different
        depths) and one heads call per search; a restricted query searches its own row set.
        """
        vectors, errors, ignored = self.user_vectors(queries)
        out: list[Scored | Exception] = list(errors)
        plans: list[Plan | None] = [None] * len(queries)
        for i, q in enumerate(queries):
            if errors[i] is None:
                try:
                    plans[i] = self.plan(q)
                except Exception as e:  # noqa: BLE001 - this query's error alone (a RequestError: 422)
                    out[i] = errors[i] = e
        empty = np.empty(0, np.int64)
        seen = [self.seen.get(q.user_id) if q.exclude_seen else empty for q in queries]
        all_available = self.attributes.all_available
        # Over-fetch by the number of items that will be filtered out, so k still come back.
        depth: dict[int, list[int]] = {}
        # Restricted queries search their own rows: a prepared filter's queries together, the
        # others one by one; those with as many candidates share one heads call (per query,
        # the heads cost a third of a filtered request).
        restricted: dict[int, list[tuple[int, np.ndarray, np.ndarray, bool]]] = {}
        prepared_groups: dict[tuple, tuple[prepared.Subset, list[int]]] = {}
        for i, q in enumerate(queries):
            if errors[i] is not None:
                continue
            if q.restricted or not all_available:
                try:
                    key, subset = self._prepared(q, plans[i])
                    if subset is not None:
                        prepared_groups.setdefault(key, (subset, []))[1].append(i)
                        continue
                    fetch = max(q.k, self.candidates)
                    found = (self._post_filtered(q, plans[i], vectors[i], seen[i], fetch)
                             or self._compiled(q, plans[i], vectors[i], seen[i], fetch))
                    restricted.setdefault(len(found[1]), []).append((i, *found))
                except Exception as e:  # noqa: BLE001 - this query's fault alone
                    out[i] = e
            else:
                depth.setdefault(max(q.k, self.candidates) + len(seen[i]), []).append(i)
        for subset, members in prepared_groups.values():
            try:
                found = self._from_subset([queries[i] for i in members], plans[members[0]].conditions, subset,
                                          vectors[members], [seen[i] for i in members])
            except Exception:  # noqa: BLE001 - retried one by one below, so a fault stays its query's
                found = [None] * len(members)
            for i, one in zip(members, found):
                try:
                    one = one or self.candidates_of(queries[i], plans[i], vectors[i], seen[i],
                                                    max(queries[i].k, self.candidates))
                    restricted.setdefault(len(one[1]), []).append((i, *one))
                except Exception as e:  # noqa: BLE001 - this query's fault alone
                    out[i] = e
        for found in restricted.values():
            members = [i for i, *_ in found]
            p_click, p_conv = self.heads.predict(vectors[members][:, None, :],
                                                 self.searcher.embeddings[np.stack([rows for _, _, rows, _ in found])])
            for j, (i, sims, rows, complete) in enumerate(found):
                q = queries[i]
                try:
                    out[i] = self._select(q, plans[i], sims, rows, p_click[j], p_conv[j], empty)
                    if len(out[i].item_ids) < q.k and not complete:  # a diversity cap left k unfilled
                        out[i] = self._restricted(q, plans[i], vectors[i], seen[i],
                                                  min(max(q.k, self.candidates) * DIVERSITY_DEEPEN, DIVERSITY_MAX_FETCH))
                except Exception as e:  # noqa: BLE001 - this query's fault alone
                    out[i] = e
        for fetch, members in depth.items():
            sims, rows = self.searcher.search(vectors[members], fetch)
            p_click, p_conv = self.heads.predict(vectors[members][:, None, :],
                                                 self.searcher.embeddings[np.maximum(rows, 0)])
            for j, i in enumerate(members):
                try:
                    out[i] = self._select(queries[i], plans[i], sims[j], rows[j], p_click[j], p_conv[j], seen[i])
                except Exception as e:  # noqa: BLE001 - this query's fault alone
                    out[i] = e
        for i, result in enumerate(out):
            if isinstance(result, Scored):
                result.recent_items_ignored = ignored[i]
        return out

    def _restricted(self, q: Query, plan: Plan, vector: np.ndarray, seen: np.ndarray, fetch: int) -> Scored:
        """One query over its own eligible rows: the true top `fetch` of them, re-scored; deeper
        while a diversity cap leaves k unfilled."""
        while True:
            sims, rows, complete = self.candidates_of(q, plan, vector, seen, fetch)
            out = self._scored(q, plan, vector, sims, rows)
            if len(out.item_ids) >= q.k or complete or fetch >= DIVERSITY_MAX_FETCH:
                return out
            fetch = min(fetch * DIVERSITY_DEEPEN, DIVERSITY_MAX_FETCH)

    def candidates_of(self, q: Query, plan: Plan, vector: np.ndarray, seen: np.ndarray,
                      fetch: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """The top `fetch` eligible rows for one restricted query (user vector (D,), `seen`
        rows excluded): (similarities, rows, whether these are all the eligible rows).

        A filter is searched over its prepared rows (kept from its first request; the
        request's availability and exclusions applied to what they give). Otherwise a broad
        restriction is post-filtered: the conditions are tested on the index's plain candidates
        only, so the eligible rows are not materialised (~0.6 ms for a range over 1M rows); else
        they are compiled and searched (index/searcher.py)."""
        _, subset = self._prepared(q, plan)
        if subset is not None:
            return self._from_subset([q], plan.conditions, subset, vector[None], [seen], fetch)[0]
        return self._post_filtered(q, plan, vector, seen, fetch) or self._compiled(q, plan, vector, seen, fetch)

    def _post_filtered(self, q: Query, plan: Plan, vector: np.ndarray, seen: np.ndarray,
                       fetch: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
        if q.include_items is not None or plan.diversity is not None:
            return None
        attrs = self.attributes
        found = self.searcher.search_post(
            vector, fetch, attrs.share(plan.conditions),
            lambda rows: attrs.accepts(plan.conditions, rows, q.exclude_items or (), seen))
        return None if found is None else (*found, False)

    def _compiled(self, q: Query, plan: Plan, vector: np.ndarray, seen: np.ndarray,
                  fetch: int) -> tuple[np.ndarray, np.ndarray, bool]:
        eligible: RowSet = self.attributes.compile(plan.conditions, q.exclude_items or (), q.include_items, seen)
        sims, rows = self.searcher.search_subset(vector, fetch, eligible.rows, eligible.mask, eligible.count,
                                                 post=False)
        return sims, rows, len(rows) >= eligible.count

    def _prepared(self, q: Query, plan: Plan) -> tuple[tuple | None, prepared.Subset | None]:
        """The query's filter's key and prepared rows (cached); no subset when it is compiled
        per request (no filter, include_items, too few or too many rows, or the cache is off)."""
        if q.include_items is not None or not plan.conditions or not self.subsets.budget:
            return None, None
        conditions = plan.conditions

        def build() -> prepared.Subset | None:
            rows = self.attributes.matching(conditions)
            enough = len(rows) >= min(PREPARED_MIN_ROWS, PREPARED_MIN_SHARE * len(self.searcher))
            # At most a quarter of the cache: bigger ones are kept as a bitmap, or not at all.
            return prepared.prepare(self.searcher, rows, self.subsets.budget / 4) if enough and len(rows) else None

        key = tuple(sorted(conditions, key=repr))
        subset = self.subsets.get(key, build)
        if subset is not None and len(self.searcher) - subset.upto > max(PREPARED_STALE_ROWS, subset.count // 8):
            subset = self.subsets.replace(key, build())
        return key, subset

    def _from_subset(self, qs: Sequence[Query], conditions: Sequence[Condition], subset: prepared.Subset,
                     vectors: np.ndarray, seen: Sequence[np.ndarray],
                     fetch: int | None = None) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """candidates_of for queries sharing a prepared filter (user vectors (B, D)), searched
        together: the subset's top plus the matching rows added since, keeping the available,
        not excluded ones; a query that kept fewer than its fetch (K', or `fetch`) searches deeper."""
        attrs = self.attributes
        excluded = [attrs.excluded_rows(q.exclude_items or (), s) for q, s in zip(qs, seen)]
        fetches = [fetch or max(q.k, self.candidates) for q in qs]
        # Deeper by the exclusions and the share out of stock, so one search usually keeps enough.
        margin = 1 + 2 * attrs.unavailable_share
        depths = np.array([math.ceil((f + len(e)) * margin) for f, e in zip(fetches, excluded)])
        tail = np.arange(subset.upto, len(self.searcher))
        tail = tail[attrs.matches(conditions, tail)]
        total = subset.count + len(tail)
        out: list = [None] * len(qs)
        todo = np.arange(len(qs))
        while len(todo):
            depth = int(depths[todo].max())
            sims, rows = prepared.search(self.searcher, subset, vectors[todo], depth)
            if len(tail):
                more_sims, more = top_rows(vectors[todo], self.searcher.embeddings, tail, depth)
                sims, rows = np.concatenate([sims, more_sims], axis=1), np.concatenate([rows, more], axis=1)
                order = np.argsort(-sims, axis=1, kind="stable")[:, :depth]
                sims, rows = np.take_along_axis(sims, order, axis=1), np.take_along_axis(rows, order, axis=1)
            again = []
            for j, i in enumerate(todo.tolist()):
                keep = (rows[j] >= 0) & attrs.available[np.maximum(rows[j], 0)]
                if len(excluded[i]):
                    keep &= ~np.isin(rows[j], excluded[i])
                kept, wanted = int(keep.sum()), fetches[i]
                if kept >= wanted or depth >= total:
                    out[i] = sims[j][keep][:wanted], rows[j][keep][:wanted], depth >= total and kept <= wanted
                else:  # out of stock or excluded near the query: look deeper
                    depths[i] = min(total, 2 * depth)
                    again.append(i)
            todo = np.array(again, dtype=np.int64)
        return out

    def _scored(self, q: Query, plan: Plan, vector: np.ndarray, sims: np.ndarray, rows: np.ndarray) -> Scored:
        """Re-score one query's eligible candidates (K',) with the heads and select its top k."""
        p_click, p_conv = self.heads.predict(vector[None, None, :], self.searcher.embeddings[rows][None])
        return self._select(q, plan, sims, rows, p_click[0], p_conv[0], np.empty(0, np.int64))

    def _select(self, q: Query, plan: Plan, sims, rows, p_click, p_conv, seen) -> Scored:
        """The top k of one query's candidates (K',), after dropping missing and seen rows,
        at most max_per_value per value of the diversity attribute."""
        fetched = int((rows >= 0).sum())
        keep = rows >= 0
        if len(seen):
            keep &= ~np.isin(rows, seen)
        sims, rows, p_click, p_conv = sims[keep], rows[keep], p_click[keep], p_conv[keep]
        score = {Objective.ctcvr: p_click * p_conv, Objective.ctr: p_click,
                 Objective.cvr: p_conv, Objective.similarity: sims}[q.objective]
        order = np.lexsort((-sims, -score))  # ties broken by similarity
        if plan.diversity is not None:
            name, cap = plan.diversity
            order = order[_within_cap(self.attributes.category_codes(name)[rows[order]], cap)]
        order = order[:q.k]
        chosen = rows[order]
        attributes = None
        if plan.fields:
            attributes = [{name: self.attributes.value(name, r) for name in plan.fields} for r in chosen.tolist()]
        return Scored(self.searcher.item_ids[chosen], score[order], p_click[order], p_conv[order], sims[order],
                      overfetched=max(0, fetched - len(order)), attributes=attributes)

    def recommend(self, user_id: str, k: int, objective: Objective = Objective.ctcvr,
                  exclude_seen: bool = False, user_features: dict | None = None, **restrictions) -> Scored:
        """Best min(k, available) items for one user, best first (a batch of one); `restrictions`
        are Query's filters, exclude_items, include_items, diversity and fields."""
        out = self.recommend_batch([Query(user_id, k, objective, exclude_seen, user_features, **restrictions)])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def popular(self, k: int, q: Query | None = None) -> Scored:
        """The k most-interacted eligible items of the training data: the unknown-user fallback
        (with `q`, restricted by its filters, lists and diversity cap)."""
        rows = self.popular_rows
        if q is not None and (q.restricted or not self.attributes.all_available):
            plan = self.plan(q)
            eligible = self.attributes.compile(plan.conditions, q.exclude_items or (), q.include_items)
            rows = rows[eligible.as_mask(len(self.searcher))[rows]]
            if plan.diversity is not None:
                name, cap = plan.diversity
                rows = rows[_within_cap(self.attributes.category_codes(name)[rows], cap)]
        rows = rows[:k]
        ignored = self.history(q)[1] if q is not None else 0
        return Scored(self.searcher.item_ids[rows], self.popularity[rows], None, None, None, fallback="popular",
                      recent_items_ignored=ignored)

    def smoke_test(self) -> None:
        """Real queries through every operator, so a broken artifact fails at load, not on traffic."""
        if len(self.users):
            out = self.recommend(str(self.users.ids[0]), 1)
            if len(out.item_ids) != min(1, self.item_count) or not np.all(np.isfinite(out.score)):
                raise ArtifactError(f"model {self.version}: smoke query returned {len(out.item_ids)} item(s) "
                                    f"with scores {out.score.tolist()}")


def _within_cap(codes: np.ndarray, cap: int) -> np.ndarray:
    """Positions (in order) of the items that are among the first `cap` of their value."""
    by_value = np.argsort(codes, kind="stable")
    sorted_codes = codes[by_value]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    rank = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    within = np.empty(len(codes), bool)
    within[by_value] = rank < cap
    return np.flatnonzero(within)
