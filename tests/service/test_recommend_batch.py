"""A batch of queries gets exactly the answers the same queries get one at a time."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from recsys.artifacts.version import Version
from recsys.service.app import recommend_response
from recsys.service.errors import InvalidRequest, UnknownUser
from recsys.service.recommender import Query, Recommender, Scored
from recsys.service.schemas import Objective, RecommendResponse
from recsys.service.settings import Settings
from tests.service.conftest import EVERY_ITEM_KINDS


@pytest.fixture(scope="module")
def rec(seed_artifacts) -> Recommender:
    return Recommender(Version.open(seed_artifacts, need_index=True), Settings())


@pytest.fixture(scope="module")
def each_rec(request, rec, indexed) -> Recommender:
    """The session's model under an index kind (flat: `rec`); tests parametrize it with the kinds."""
    if request.param == "flat":
        return rec
    return Recommender(Version.open(indexed(request.param), need_index=True), Settings())


def embedding(rec: Recommender, user: str) -> np.ndarray:
    """The stored user's embedding, (1, D)."""
    vectors, [error], _ = rec.user_vectors([Query(user, 1)])
    assert error is None
    return vectors


def new_user_features(rec: Recommender) -> dict:
    row = rec.users.rows([0])
    return {name: (float(v[0]) if isinstance(v[0], (float, np.floating)) else str(v[0]))
            for name, v in row.items() if name != "user_id"}


@pytest.mark.parametrize("each_rec", EVERY_ITEM_KINDS, indirect=True)
def test_a_batch_equals_its_queries_one_by_one(each_rec):
    rec = each_rec
    queries = [Query("1", 5), Query("2", 30, Objective.ctr), Query("3", 10, Objective.cvr, exclude_seen=True),
               Query("4", 7, Objective.similarity), Query("1", 150, exclude_seen=True),
               Query("nobody", 5), Query("newcomer", 8, user_features=new_user_features(rec)),
               Query("5", 5, user_features={"no_such_feature": 1}), Query("100", 200)]
    batch = rec.recommend_batch(queries)
    assert len(batch) == len(queries)
    for q, got in zip(queries, batch):
        try:
            alone = rec.recommend(q.user_id, q.k, q.objective, q.exclude_seen, q.user_features)
        except (UnknownUser, InvalidRequest) as e:
            assert type(got) is type(e) and str(got) == str(e)
            continue
        assert isinstance(got, Scored)
        assert got.item_ids.tolist() == alone.item_ids.tolist()
        assert len(got.item_ids) == min(q.k, rec.item_count - (len(rec.seen.get(q.user_id)) if q.exclude_seen
                                                                else 0))
        for name in ("score", "p_click", "p_conversion", "similarity"):
            np.testing.assert_allclose(getattr(got, name), getattr(alone, name), rtol=1e-6, atol=1e-7)
        assert got.overfetched == alone.overfetched
    assert isinstance(batch[5], UnknownUser) and isinstance(batch[7], InvalidRequest)
    seen = set(rec.searcher.item_ids[rec.seen.get("3")].tolist())
    assert seen and not seen & set(batch[2].item_ids.tolist())


def test_the_batch_matches_a_brute_force_ranking(rec):
    """Flat index: the ctcvr order is the heads' order over the top-K' items by inner product."""
    users = ["7", "8", "9"]
    out = rec.recommend_batch([Query(u, 10) for u in users])
    for user, got in zip(users, out):
        u = rec.user_vectors([Query(user, 1)])[0][0]
        sims = rec.searcher.embeddings @ u
        top = np.argsort(-sims, kind="stable")[:rec.candidates]
        p_click, p_conv = rec.heads.predict(u[None, :], rec.searcher.embeddings[top])
        best = top[np.argsort(-(p_click * p_conv), kind="stable")[:10]]
        assert got.item_ids.tolist() == rec.searcher.item_ids[best].tolist()


def test_the_json_response_is_the_pydantic_document(rec):
    out = rec.recommend("1", 6, Objective.ctcvr)
    built = recommend_response("1", rec.version, Objective.ctcvr, out)
    expected = RecommendResponse(
        user_id="1", model_version=rec.version, objective=Objective.ctcvr,
        items=[dict(item_id=str(i), score=float(s), p_click=float(c), p_conversion=float(v), similarity=float(m))
               for i, s, c, v, m in zip(out.item_ids, out.score, out.p_click, out.p_conversion, out.similarity)])
    import json

    assert json.loads(built.body) == expected.model_dump(mode="json", exclude_none=True)
    popular = rec.popular(3)
    body = json.loads(recommend_response("x", rec.version, Objective.ctcvr, popular).body)
    assert body["fallback"] == "popular" and [set(i) for i in body["items"]] == [{"item_id", "score"}] * 3


def ivf_lists(rec: Recommender) -> list[np.ndarray]:
    """The index rows in each IVF list."""
    ivf = faiss.extract_index_ivf(rec.searcher.index)
    lists = ivf.invlists
    return [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(ivf.nlist)]


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_an_ivf_search_short_of_candidates_is_completed_exactly(indexed, exclude_seen):
    """nprobe 1 over 5 lists of ~40 items: FAISS fills the K' = 200 slots past one list with row -1;
    the searcher completes them with the exact best of the rest, so the answer holds exactly
    min(k, catalogue - seen) distinct items, the probed list's items first in similarity."""
    rec = Recommender(Version.open(indexed("ivf"), need_index=True), Settings(candidates=200, nprobe=1))
    ivf = faiss.extract_index_ivf(rec.searcher.index)
    lists = ivf_lists(rec)
    assert ivf.nprobe == 1 and len(lists) > 1 and max(map(len, lists)) < rec.candidates
    n = len(rec.searcher)
    for user in ("1", "2", "3", "7", "42"):
        _, raw = rec.searcher.index.search(embedding(rec, user), rec.candidates)
        assert (raw == -1).any()  # the case under test: FAISS came back short
        _, found = rec.searcher.search(embedding(rec, user), rec.candidates)
        assert (found >= 0).all() and len(set(found[0].tolist())) == min(rec.candidates, n)
        assert set(raw[raw >= 0].tolist()) <= set(found[0].tolist())
        left = n - (len(rec.seen.get(user)) if exclude_seen else 0)
        for k in (5, 150, 200):
            got = rec.recommend(user, k, exclude_seen=exclude_seen)
            ids = got.item_ids.tolist()
            assert len(ids) == len(set(ids)) == min(k, left), (user, k)
            assert np.all(np.isfinite(got.score))


def test_an_hnsw_search_short_of_items_is_completed_to_every_item(indexed):
    """The items an inner-product HNSW graph search misses are found by the exact completion."""
    rec = Recommender(Version.open(indexed("hnsw"), need_index=True), Settings(candidates=200))
    n = len(rec.searcher)
    short = 0
    for user in ("1", "2", "3", "7", "100"):
        _, raw = rec.searcher.index.search(embedding(rec, user), n)
        short += int((raw < 0).any())
        ids = rec.recommend(user, 200).item_ids.tolist()
        assert len(ids) == len(set(ids)) == min(200, n), user
    assert short  # FAISS alone did miss items for some user


def test_a_post_filtered_answer_equals_the_subset_search(seed_artifacts, monkeypatch):
    """Broad restrictions (a filter, exclude_items, exclude_seen, an item out of stock) tested on
    the plain search's candidates give the answer of a search over the compiled rows: on the
    flat index both are the exact filtered top K'."""
    from recsys.index import searcher

    monkeypatch.setattr(searcher, "EXACT_SCAN_MAX", 0)  # the seed's 200 items count as many
    # Filters compiled per request (not prepared), so the broad ones are post-filtered.
    rec = Recommender(Version.open(seed_artifacts, need_index=True), Settings(candidates=20, filter_cache_mb=0))
    rec.attributes.set_available([5], False)
    users = [str(u) for u in rec.users.ids[:20].tolist()]
    queries = [Query(u, 10, exclude_seen=True, filters={"item_price": {"gte": 20}}, exclude_items=["1", "2"])
               for u in users] + [Query(u, 10, filters={"item_category": {"not_in": ["books"]}}) for u in users]
    taken = []
    real = searcher.Searcher.search_post
    monkeypatch.setattr(searcher.Searcher, "search_post",
                        lambda self, *a, **k: taken.append(real(self, *a, **k)) or taken[-1])
    post = rec.recommend_batch(queries)
    assert sum(t is not None for t in taken) >= len(queries) // 2  # most took the post-filter
    monkeypatch.setattr(searcher, "POSTFILTER_MIN_SHARE", 2.0)  # never post-filter
    subset = rec.recommend_batch(queries)
    for q, a, b in zip(queries, post, subset):
        assert a.item_ids.tolist() == b.item_ids.tolist(), q
        assert not {"1", "2"} & set(a.item_ids.tolist()) or not q.exclude_items
        assert rec.searcher.item_ids[5] not in a.item_ids.tolist()  # out of stock


@pytest.mark.parametrize("kind", EVERY_ITEM_KINDS)
def test_a_prepared_filter_answers_as_the_compiled_rows_do_after_changes(indexed, kind, monkeypatch):
    """A filter's rows prepared once (and kept) give the compiled-rows answer, with items
    made unavailable, available again and added after it was prepared, exclude_items,
    exclude_seen and a diversity cap applied per request. The seed's 200 items are few enough
    for both to be exact: narrow filters scan their rows; broad ones search HNSW with a bitmap
    (a beam wider than the catalogue). IVF's bitmap search scores by the index's fp16 codes,
    which can swap near-ties at the K'-th candidate: its recall is tests/index/test_prepared.py's."""
    from recsys.index import prepared

    if kind == "ivf":
        monkeypatch.setattr(prepared, "BITMAP_MIN_SHARE", 2.0)
    from recsys.artifacts.catalogue import Change
    from recsys.index import searcher
    from recsys.service import recommender

    monkeypatch.setattr(searcher, "POSTFILTER_MIN_SHARE", 2.0)   # never post-filter
    monkeypatch.setattr(recommender, "PREPARED_MIN_ROWS", 1)      # the seed's filters count as big
    rec = Recommender(Version.open(indexed(kind), need_index=True), Settings(candidates=20))
    users = [str(u) for u in rec.users.ids[:15].tolist()]
    cheap = {"item_price": {"lte": float(np.median(rec.attributes._columns["item_price"].values))}}
    queries = ([Query(u, 10, filters=cheap) for u in users]
               + [Query(u, 10, exclude_seen=True, filters=cheap, exclude_items=["1", "2", "3"]) for u in users]
               + [Query(u, 10, filters={"item_category": {"not_in": ["books"]}},
                        diversity={"attribute": "item_category", "max_per_value": 2}) for u in users])

    def both() -> tuple[list, list]:
        kept = rec.recommend_batch(queries)
        budget, rec.subsets.budget = rec.subsets.budget, 0       # compile per request
        compiled = rec.recommend_batch(queries)
        rec.subsets.budget = budget
        return kept, compiled

    def same(kept, compiled) -> None:
        for q, a, b in zip(queries, kept, compiled):
            assert a.item_ids.tolist() == b.item_ids.tolist(), q
            np.testing.assert_allclose(a.score, b.score, rtol=1e-6)

    first = [r.item_ids[0] for r in rec.recommend_batch(queries[:15])]
    # A filter matching the first best item's price only (with the item added below, later).
    price = rec.catalogue.raw_attributes(str(first[0]))["item_price"]
    queries += [Query(u, 10, filters={"item_price": {"gte": price, "lte": price}}) for u in users[:3]]
    same(*both())
    # Prepared once per filter, on its second sighting (the first compiles it).
    assert len(rec.subsets) == 3 and rec.subsets.misses == 2 * 3
    kinds = {subset.kind for subset in rec.subsets._entries.values()}
    assert kinds == ({"scan", "bitmap"} if kind == "hnsw" else {"scan"})
    rows = rec.attributes.rows_of(first[:3])
    rec.attributes.set_available(rows, False)                    # the best items go out of stock
    kept, compiled = both()
    same(kept, compiled)
    assert not set(first[:3]) & {i for r in kept for i in r.item_ids.tolist()}
    rec.attributes.set_available(rows[:1], True)                 # one comes back
    same(*both())
    # A new item, cheap and close to the first user: served from the rows added since.
    attributes = rec.catalogue.raw_attributes(str(first[0]))
    rec.catalogue.apply([Change("brand-new", "upsert", attributes)])
    kept, compiled = both()
    same(kept, compiled)
    assert all("brand-new" in r.item_ids.tolist() for r in kept[-3:])
    assert rec.subsets.misses == 2 * 3                            # still the first preparations
