"""Unfiltered queries while some items are unavailable: a few are over-fetched and dropped, many
go through the eligibility mask; both give the same answer, never an unavailable item."""

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
    users = [str(u) for u in rec.users.ids[:12]]
    before = rec.recommend_batch([Query(u, 10, objective) for u in users])
    # The top 3 of every user out of stock: each answer must move past them.
    gone = np.unique(np.concatenate([rec.attributes.rows_of(list(b.item_ids[:3])) for b in before]))
    rec.attributes.set_available(gone, False)
    assert 0 < rec.attributes.unavailable <= module.UNAVAILABLE_OVERFETCH_MAX
    fetched = rec.recommend_batch([Query(u, 10, objective) for u in users])
    monkeypatch.setattr(module, "UNAVAILABLE_OVERFETCH_MAX", 0)  # every query through the mask instead
    masked = rec.recommend_batch([Query(u, 10, objective) for u in users])
    ids = set(rec.searcher.item_ids[gone].tolist())
    for a, b in zip(fetched, masked):
        assert len(a.item_ids) == 10 and not set(a.item_ids.tolist()) & ids
        assert a.item_ids.tolist() == b.item_ids.tolist()
        np.testing.assert_allclose(a.score, b.score, rtol=1e-5, atol=1e-7)  # numpy's and FAISS's sums
