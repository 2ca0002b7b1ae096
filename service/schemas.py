"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints, field_validator

from recsys.service.domain import MAX_USER_ID_LENGTH, Objective, Query
from recsys.service.user_features import UserFeatures

__all__ = ["ErrorResponse", "Objective", "RecommendRequest", "RecommendResponse", "ScoredItem"]


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
                    "against the model's feature spec; ignored for a known user, whose stored features win. "
                    "GET /model lists the served model's user features.")

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
        return Query(**{f.name: getattr(self, f.name) for f in fields(Query)} | {"user_id": self.key()})


class ScoredItem(BaseModel):
    item_id: str
    score: float = Field(description="The value of the requested objective; items are sorted by it. "
                                     "With the popular fallback: the share of training users who "
                                     "interacted with the item.")
    # Absent only in a popular-fallback answer, which has no user vector to score with.
    p_click: float | None = None
    p_conversion: float | None = Field(None, description="Probability of conversion given a click (CVR).")
    similarity: float | None = Field(None, description="User·item inner product from the index.")


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
