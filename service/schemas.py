"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, StringConstraints,
                      field_validator)

from recsys.service.domain import MAX_USER_ID_LENGTH, Objective, Query
from recsys.service.filters import MAX_ITEM_LIST
from recsys.service.user_features import UserFeatures

__all__ = ["ErrorResponse", "Objective", "RecommendRequest", "RecommendResponse", "ScoredItem"]

ItemId = StrictInt | Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_USER_ID_LENGTH)]
Value = StrictInt | StrictStr
# Most recent_items one request may send: more than any history the tower pools (history_length).
MAX_RECENT_ITEMS = 1000
Number = StrictInt | StrictFloat


class Condition(BaseModel):
    """One attribute's condition: `in` or `not_in` (id, categorical), `gte`/`lte` (numeric)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    in_: list[Value] | None = Field(None, alias="in", max_length=MAX_ITEM_LIST,
                                    description="keep items whose value is one of these")
    not_in: list[Value] | None = Field(None, max_length=MAX_ITEM_LIST, description="drop items with these values")
    gte: Number | None = Field(None, allow_inf_nan=False, description="keep items with a value >= this")
    lte: Number | None = Field(None, allow_inf_nan=False, description="keep items with a value <= this")

    def raw(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True)


class Diversity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attribute: StrictStr = Field(..., description="a categorical item attribute")
    max_per_value: StrictInt = Field(..., ge=1, description="at most this many items per value of it")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: StrictInt | Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_USER_ID_LENGTH)] = Field(
        ..., description="User id; 1 and \"1\" name the same user.", examples=[1])
    k: StrictInt = Field(10, ge=1, description="Number of items to return (at most the service's max_k).")
    objective: Objective = Field(Objective.ctcvr, description="Score used to rank the candidates.")
    exclude_seen: StrictBool = Field(False, description="Drop items the user already interacted with.")
    user_features: UserFeatures | None = Field(
        None,
        description="Every user-tower feature except user_id, as raw values. For a user the feature store "
                    "does not know (cold start) the tower uses its out-of-vocabulary id; for a known user "
                    "these values replace the stored ones for this request (fresher values; the store is "
                    "not changed). Validated against the model's feature spec; GET /model lists the served "
                    "model's user features.")
    recent_items: list[ItemId] | None = Field(
        None, max_length=MAX_RECENT_ITEMS,
        description="Items the user interacted with in this session, oldest first, newest last. With a model "
                    "whose user tower takes a history (GET /model: history_length), they join the user's "
                    "stored and logged history for this request, and a new user with only recent_items is "
                    "served from them. Ids the catalogue does not know are ignored and counted in "
                    "recent_items_ignored.", examples=[["42", "7"]])

    filters: dict[StrictStr, Condition] | None = Field(
        None, description="Conditions on item attributes, all of which an item must meet: "
                          "{\"in\": [...]} or {\"not_in\": [...]} for an id or categorical attribute, "
                          "{\"gte\": x, \"lte\": y} (either optional) for a numeric one.",
        examples=[{"item_category": {"in": ["books"]}, "item_price": {"lte": 50}}])
    exclude_items: list[ItemId] | None = Field(None, max_length=MAX_ITEM_LIST,
                                               description="Item ids never to return (unknown ids are ignored).")
    include_items: list[ItemId] | None = Field(None, max_length=MAX_ITEM_LIST,
                                               description="Rank only these item ids (unknown ids are ignored).")
    diversity: Diversity | None = Field(None, description="At most max_per_value items per value of one "
                                                          "categorical attribute.")
    fields: list[StrictStr] | None = Field(None, max_length=64,
                                           description="Item attributes each returned item carries in "
                                                       "\"attributes\" (default: the service's default_fields).")

    @field_validator("user_id")
    @classmethod
    def _printable(cls, v):
        if isinstance(v, str) and not v.isprintable():
            raise ValueError("must not contain control characters")
        # Compared, not formatted: str() of a huge int is slow (and refused past 4,300 digits).
        if isinstance(v, int) and abs(v) >= 10 ** MAX_USER_ID_LENGTH:
            raise ValueError(f"must be an integer or a string of 1-{MAX_USER_ID_LENGTH} printable characters")
        return v

    def key(self) -> str:
        return str(self.user_id)

    def query(self) -> Query:
        """The recommender's Query: every Query field taken from the field of the same name."""
        values = {f.name: getattr(self, f.name) for f in fields(Query)}
        values["user_id"] = self.key()
        if self.filters is not None:
            values["filters"] = {name: c.raw() for name, c in self.filters.items()}
        if self.diversity is not None:
            values["diversity"] = self.diversity.model_dump()
        return Query(**values)


class ScoredItem(BaseModel):
    item_id: str
    score: float = Field(description="The value of the requested objective; items are sorted by it. "
                                     "With the popular fallback: the share of training users who "
                                     "interacted with the item.")
    # Absent only in a popular-fallback answer, which has no user vector to score with.
    p_click: float | None = None
    p_conversion: float | None = Field(None, description="Probability of conversion given a click (CVR).")
    similarity: float | None = Field(None, description="User·item inner product from the index.")
    attributes: dict[str, str | float] | None = Field(None, description="The item's values of the requested "
                                                                         "fields, as the catalogue holds them.")


class RecommendResponse(BaseModel):
    user_id: str
    model_version: str
    objective: Objective
    items: list[ScoredItem]
    fallback: str | None = Field(None, description='"popular" when the user is unknown and the service '
                                                   "answers with popular items (absent otherwise).")
    recent_items_ignored: int | None = Field(None, description="How many recent_items the catalogue does not "
                                                               "know (absent when none).")


class ErrorResponse(BaseModel):
    error: str
    message: str
    detail: list[dict] | None = None
