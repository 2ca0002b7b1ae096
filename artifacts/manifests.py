"""The schema of the two manifests a version holds: the model's and its index's.

A manifest that parses as JSON but lacks a field, or has one of the wrong type, is refused
with the field named (`...: not a model version: field 'embedding_dim': missing`), never with a
Python error from deep inside a loader. Fields beyond these are allowed: training and the index job
record metrics and settings the readers do not need.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from recsys.artifacts.errors import ArtifactError


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")
    what: ClassVar[str]  # for the error message

    files: dict[StrictStr, StrictStr]  # relative path -> sha256 of every other file


class ModelManifest(_Manifest):
    what = "a model version"
    version: StrictStr = Field(min_length=1)
    embedding_dim: StrictInt = Field(ge=1)
    features: list[dict]


class IndexManifest(_Manifest):
    what = "an index"
    model_version: StrictStr = Field(min_length=1)
    dim: StrictInt = Field(ge=1)
    count: StrictInt = Field(ge=0)
    metric: StrictStr


def validate(data: object, schema: type[_Manifest], where: str) -> dict:
    """`data` as read from JSON, checked against `schema`; ArtifactError names the first bad field."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{where}: not {schema.what}: expected a JSON object, got {type(data).__name__ if data is not None else 'null'}")
    try:
        schema.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(map(str, err["loc"]))
        msg = "missing" if err["type"] == "missing" else err["msg"]
        raise ArtifactError(f"{where}: not {schema.what}: field '{field}': {msg}") from None
    return data
