"""What a recommendation request asks, and what can be wrong with it: no HTTP here.

The recommender takes `Query` objects and raises `RequestError`s; service/errors.py decides
which HTTP status each error kind gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MAX_USER_ID_LENGTH = 128  # characters of a string user id, digits of an integer one


class Objective(str, Enum):
    ctcvr = "ctcvr"            # p_click * p_conversion: expected conversions per exposure
    ctr = "ctr"                # p_click
    cvr = "cvr"                # p_conversion given a click
    similarity = "similarity"  # raw user·item inner product (retrieval order)


@dataclass
class Query:
    """One request to the recommender; the HTTP request model builds it field by field
    (schemas.RecommendRequest.query), so a new field is declared there and here."""

    user_id: str
    k: int
    objective: Objective = Objective.ctcvr
    exclude_seen: bool = False
    user_features: dict | None = None
    filters: dict | None = None           # attribute -> {"in": [...]} | {"not_in": [...]} | {"gte", "lte"}
    exclude_items: list | None = None     # ids never returned
    include_items: list | None = None     # rank only these ids
    diversity: dict | None = None         # {"attribute", "max_per_value"}
    fields: list | None = None            # attributes each returned item carries
    recent_items: list | None = None      # items of this session, oldest first (the user tower's history)

    @property
    def restricted(self) -> bool:
        """Whether the eligible items are a subset of the catalogue (searched per query)."""
        return bool(self.filters or self.exclude_items or self.include_items is not None or self.diversity)


class RequestError(Exception):
    """Something wrong with what one request asked; `kind` names it in the error body."""

    kind = "invalid_request"

    def __init__(self, message: str, detail: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail  # [{"loc": [...], "msg": ..., "type": ...}], as for a schema error


class InvalidRequest(RequestError):
    kind = "invalid_request"


class UnknownUser(RequestError):
    """A user id the feature store does not know, sent without user_features."""

    kind = "unknown_user"
