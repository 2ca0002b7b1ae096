"""Unfiltered queries while some items are unavailable: a margin of candidates is over-fetched
and the unavailable dropped, and a query that lost more than the margin searches its eligible
rows through the mask; every way gives the mask's answer, never an unavailable item."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.artifacts.version import Version
from recsys.service import recommender as module
from recsys.service.recommender import Query, Recommender
from recsys.service.settings import Settings


@pytest.fixture
def rec(seed_artifacts) -> Recommender:
    out = Recommender(Version.open(seed_artifacts, need_index=True), Settings(candidates=20))
    yield out
    out.release()


@pytest.mark.parametrize("objective", ["ctcvr", "similarity"])
def test_overfetching_past_unavailable_items_answers_as_the_mask_does(rec, monkeypatch, objective):
    users = [str(u) for u in rec.users.ids[:40]]
    before = rec.recommend_batch([Query(u, 10, objective) for u in users])
    # The top item of 8 users out of stock (at most 8 of 200 items: under the share that goes
    # straight to the mask): their answers must move past it.
    gone = np.unique(np.concatenate([rec.attributes.rows_of(list(b.item_ids[:1])) for b in before[:8]]))
    rec.attributes.set_available(gone, False)
    assert 0 < rec.attributes.unavailable <= module.UNAVAILABLE_SHARE_MAX * len(rec.searcher)
    calls = []
    restricted = rec._restricted
    monkeypatch.setattr(rec, "_restricted", lambda *a: calls.append(a[0].user_id) or restricted(*a))
    fetched = rec.recommend_batch([Query(u, 10, objective) for u in users])
    assert calls == []  # the margin (as many as are unavailable here) always covered the drops
    monkeypatch.setattr(module, "UNAVAILABLE_MARGIN", 1)  # a query that loses two falls back to the mask
    fallback = rec.recommend_batch([Query(u, 10, objective) for u in users])
    assert calls
    monkeypatch.setattr(module, "UNAVAILABLE_SHARE_MAX", 0)  # every query through the mask at once
    masked = rec.recommend_batch([Query(u, 10, objective) for u in users])
    ids = set(rec.searcher.item_ids[gone].tolist())
    for a, c, b in zip(fetched, fallback, masked):
        assert c.item_ids.tolist() == b.item_ids.tolist()
        assert len(a.item_ids) == 10 and not set(a.item_ids.tolist()) & ids
        assert a.item_ids.tolist() == b.item_ids.tolist()
        np.testing.assert_allclose(a.score, b.score, rtol=1e-5, atol=1e-7)  # numpy's and FAISS's sums
