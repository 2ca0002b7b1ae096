"""The request model hands the recommender a Query: a field declared in both flows through."""

from __future__ import annotations

from dataclasses import fields

from recsys.service.domain import Objective, Query
from recsys.service.schemas import RecommendRequest


def test_every_query_field_comes_from_the_request_field_of_that_name():
    assert {f.name for f in fields(Query)} <= set(RecommendRequest.model_fields)
    body = RecommendRequest.model_validate({"user_id": 7, "k": 4, "objective": "cvr", "exclude_seen": True,
                                            "user_features": {"age": 30, "city": "3"}})
    assert body.query() == Query("7", 4, Objective.cvr, True, {"age": 30, "city": "3"})
    assert RecommendRequest(user_id="u").query() == Query("u", 10)
