"""A batch of queries gets exactly the answers the same queries get one at a time."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from recsys.artifacts import store
from recsys.service.app import recommend_response
from recsys.service.errors import InvalidRequest, UnknownUser
from recsys.service.recommender import Query, Recommender, Scored
from recsys.service.schemas import Objective, RecommendResponse
from tests.service.conftest import EVERY_ITEM_KINDS


@pytest.fixture(scope="module")
def rec(seed_artifacts) -> Recommender:
    return Recommender(store.resolve(seed_artifacts, need_index=True))


@pytest.fixture(scope="module")
def each_rec(request, rec, indexed) -> Recommender:
    """The session's model under an index kind (flat: `rec`); tests parametrize it with the kinds."""
    if request.param == "flat":
        return rec
    return Recommender(store.resolve(indexed(request.param), need_index=True))


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
        assert len(got.item_ids) == min(q.k, rec.item_count - (len(rec.seen.get(q.user_id, [])) if q.exclude_seen
                                                                else 0))
        for name in ("score", "p_click", "p_conversion", "similarity"):
            np.testing.assert_allclose(getattr(got, name), getattr(alone, name), rtol=1e-6, atol=1e-7)
        assert got.overfetched == alone.overfetched
    assert isinstance(batch[5], UnknownUser) and isinstance(batch[7], InvalidRequest)
    seen = set(rec.searcher.item_ids[rec.seen["3"]].tolist())
    assert seen and not seen & set(batch[2].item_ids.tolist())


def test_the_batch_matches_a_brute_force_ranking(rec):
    """Flat index: the ctcvr order is the heads' order over the top-K' items by inner product."""
    users = ["7", "8", "9"]
    out = rec.recommend_batch([Query(u, 10) for u in users])
    for user, got in zip(users, out):
        u = rec.user_embedding(user)
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
def test_an_ivf_search_short_of_candidates_returns_only_the_items_it_found(indexed, exclude_seen):
    """nprobe 1 over 5 lists of ~40 items: FAISS fills the K' = 200 slots past one list with row -1;
    the answer holds exactly min(k, what that list offers) distinct real items, and no other."""
    rec = Recommender(store.resolve(indexed("ivf"), need_index=True), candidates=200, nprobe=1)
    ivf = faiss.extract_index_ivf(rec.searcher.index)
    lists = ivf_lists(rec)
    assert ivf.nprobe == 1 and len(lists) > 1 and max(map(len, lists)) < rec.candidates
    for user in ("1", "2", "3", "7", "42"):
        _, [[probed]] = ivf.quantizer.search(rec.user_embedding(user)[None, :], 1)
        rows = np.setdiff1d(lists[probed], rec.seen.get(user, []) if exclude_seen else [])
        available = set(rec.searcher.item_ids[rows].tolist())
        assert 0 < len(available) < len(rec.searcher)
        _, found = rec.searcher.search(rec.user_embedding(user)[None, :], rec.candidates)
        assert (found == -1).any()  # the case under test: FAISS came back short
        for k in (5, len(available), 200):
            got = rec.recommend(user, k, exclude_seen=exclude_seen)
            ids = got.item_ids.tolist()
            assert len(ids) == len(set(ids)) == min(k, len(available)), (user, k)
            assert set(ids) <= available and np.all(np.isfinite(got.score))
            assert got.overfetched == (found >= 0).sum() - len(ids)


def test_an_hnsw_search_short_of_items_returns_exactly_what_it_found(indexed):
    """The items an inner-product HNSW graph search misses cannot be recommended; the rest are, once each."""
    rec = Recommender(store.resolve(indexed("hnsw"), need_index=True), candidates=200)
    for user in ("1", "2", "3", "7", "100"):
        _, [found] = rec.searcher.search(rec.user_embedding(user)[None, :], len(rec.searcher))
        reached = set(rec.searcher.item_ids[found[found >= 0]].tolist())
        ids = rec.recommend(user, 200).item_ids.tolist()
        assert len(ids) == len(set(ids)) == len(reached) and set(ids) == reached, user
