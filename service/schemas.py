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
        description="Cold start: every user-tower feature except user_id, as raw values, for a user the "
                    "feature store does not know (the tower then uses its out-of-vocabulary id). Validated "
                    "against the model's feature spec; ignored for a known user, whose stored features win.",
        examples=[{"user_age": 30, "user_gender": "female", "user_occupation": "student", "city_code": "3",
                   "device_type": "mobile"}])

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


class ErrorResponse(BaseModel):
    error: str
    message: str
    detail: list[dict] | None = None
