"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from enum import Enum

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints, field_validator

MAX_USER_ID_LENGTH = 128


class Objective(str, Enum):
    ctcvr = "ctcvr"            # p_click * p_conversion: expected conversions per exposure
    ctr = "ctr"                # p_click
    cvr = "cvr"                # p_conversion given a click
    similarity = "similarity"  # raw user·item inner product (retrieval order)


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: StrictInt | Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_USER_ID_LENGTH)] = Field(
        ..., description="User id; 1 and \"1\" name the same user.", examples=[1])
    k: StrictInt = Field(10, ge=1, description="Number of items to return (at most the service's max_k).")
    objective: Objective = Field(Objective.ctcvr, description="Score used to rank the candidates.")
    exclude_seen: StrictBool = Field(False, description="Drop items the user already interacted with.")

    @field_validator("user_id")
    @classmethod
    def _printable(cls, v):
        if isinstance(v, str) and not v.isprintable():
            raise ValueError("must not contain control characters")
        return v

    def key(self) -> str:
        return str(self.user_id)


class ScoredItem(BaseModel):
    item_id: str
    score: float = Field(description="The value of the requested objective; items are sorted by it.")
    p_click: float
    p_conversion: float = Field(description="Probability of conversion given a click (CVR).")
    similarity: float = Field(description="User·item inner product from the index.")


class RecommendResponse(BaseModel):
    user_id: str
    model_version: str
    objective: Objective
    items: list[ScoredItem]


class ErrorResponse(BaseModel):
    error: str
    message: str
    detail: list[dict] | None = None
