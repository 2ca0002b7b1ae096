"""Raw user features of a new user (cold start): the one validator, in two steps.

    request body -> UserFeatures (any model: names, value types, lengths, printable)
                 -> columns(features, spec) (this model: every feature present, known, of its kind)
                 -> user-tower input columns {name: (1,)}

The first step is a pydantic type, so it also documents the field in the OpenAPI schema;
the second needs the served model's feature spec, so the recommender runs it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, Field, StrictFloat, StrictInt, StrictStr, StringConstraints

from recsys.artifacts.features import KEYS
from recsys.service.domain import InvalidRequest

MAX_FEATURES = 64              # features in one request (a user tower has a handful)
MAX_NAME_LENGTH = 64
MAX_VALUE_LENGTH = 128         # characters of a string value
OOV_ID = ""  # never in a vocabulary (the data contract rejects empty ids): the OOV bucket's embedding

FeatureName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
# A raw feature value as the data files hold it: a finite number, or an id/category given as
# an integer or a string (1 and "1" are the same category).
FeatureValue = (StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]
                | Annotated[StrictStr, StringConstraints(max_length=MAX_VALUE_LENGTH)])
VALUE_RULE = f"must be a finite number, an integer or a string of at most {MAX_VALUE_LENGTH} printable characters"


def _printable(features: dict) -> dict:
    for name, value in features.items():
        if not name.isprintable() or (isinstance(value, str) and not value.isprintable()):
            raise ValueError(f"{name[:MAX_NAME_LENGTH]!r}: names and values must not contain control characters")
    return features


UserFeatures = Annotated[dict[FeatureName, FeatureValue], Field(max_length=MAX_FEATURES),
                         AfterValidator(_printable)]


def _invalid(name: str, msg: str, kind: str) -> InvalidRequest:
    return InvalidRequest(f"user_features.{name}: {msg}",
                          [{"loc": ["body", "user_features", name], "msg": msg, "type": kind}])


def columns(features: dict, spec: Sequence) -> dict[str, np.ndarray]:
    """Tower input columns {name: (1,)} for one new user, checked against the user tower's
    features `spec` (artifacts.features.Feature); InvalidRequest names the first bad one."""
    key = KEYS["user"]
    expected = {f.name: f for f in spec if f.name != key}
    for name in features:
        if name not in expected:
            raise _invalid(name[:MAX_NAME_LENGTH], f"not a feature of this model's user tower "
                                                   f"(expected {sorted(expected)})", "unknown_feature")
    cols = {}
    for name, f in expected.items():
        if name not in features:
            raise _invalid(name, "missing; a new user needs every user feature", "missing")
        value = features[name]
        if f.is_numeric:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _invalid(name, "must be a finite number", "numeric")
            cols[name] = np.array([value], np.float32)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, str)) or len(str(value)) > MAX_VALUE_LENGTH:
                raise _invalid(name, f"must be a string of at most {MAX_VALUE_LENGTH} characters or an integer",
                               f.kind)
            cols[name] = np.array([str(value)], dtype=object)
    if any(f.name == key for f in spec):
        cols[key] = np.array([OOV_ID], dtype=object)
    return cols
