"""Raw user features of a new user (cold start): the one validator, in two steps.

    request body -> UserFeatures (any model: names, value types, lengths, printable)
                 -> columns(features, spec, ranges) (this model: every feature present, known, of
                    its kind, a numeric one inside the range its training data makes plausible)
                 -> user-tower input columns {name: (1,)}

The first step is a pydantic type, so it also documents the field in the OpenAPI schema;
the second needs the served model's feature spec and statistics, so the recommender runs it.
A numeric value far outside what the tower was trained on (or beyond float32, where the cast
makes it infinite) would give a meaningless or non-finite user vector, so it is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, Field, StrictFloat, StrictInt, StrictStr, StringConstraints

from recsys.artifacts.features import KEYS
from recsys.artifacts.numpy_tower import NumpyTower
from recsys.service.domain import InvalidRequest

MAX_FEATURES = 64              # features in one request (a user tower has a handful)
MAX_NAME_LENGTH = 64
MAX_VALUE_LENGTH = 128         # characters of a string value
# Numeric values accepted: mean ± MAX_Z standard deviations of the training data (the user
# tower's Normalization statistics). Generous: on the realistic simulator the user ages lie
# within 3.2 standard deviations (even the skewed item prices within 16), so any plausible
# outlier passes; and a standardised input of at most 1000 keeps the tower's float32
# arithmetic finite and its similarities meaningful.
MAX_Z = 1000.0
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Not a printable string, so no request can send it: the OOV bucket of any categorical vocabulary.
UNKNOWN_CATEGORY = "\x00"
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


def numeric_ranges(tower: NumpyTower, spec: Sequence) -> dict[str, tuple[float, float]]:
    """name -> (low, high) accepted for each numeric feature of `spec`: mean ± MAX_Z std of the
    tower's training data, within float32."""
    ranges = {}
    for f in spec:
        if f.is_numeric:
            mean, std = (float(np.asarray(a, np.float64).reshape(-1)[0]) for a in tower.standardisation(f.name))
            ranges[f.name] = (max(mean - MAX_Z * std, -FLOAT32_MAX), min(mean + MAX_Z * std, FLOAT32_MAX))
    return ranges


def columns(features: dict, spec: Sequence, ranges: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Tower input columns {name: (1,)} for one new user, checked against the user tower's
    features `spec` (artifacts.features.Feature) and the numeric `ranges` (numeric_ranges);
    InvalidRequest names the first bad one."""
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
            # A float first: math.isfinite of an int beyond float's range raises OverflowError.
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or (isinstance(value, float) and not math.isfinite(value))):
                raise _invalid(name, "must be a finite number", "numeric")
            low, high = ranges[name]
            if not low <= value <= high:  # exact for ints of any size
                raise _invalid(name, f"must be between {low:.6g} and {high:.6g} (the training data's mean "
                                     f"± {MAX_Z:g} standard deviations)", "out_of_range")
            cols[name] = np.array([value], np.float32)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, str)) or len(str(value)) > MAX_VALUE_LENGTH:
                raise _invalid(name, f"must be a string of at most {MAX_VALUE_LENGTH} characters or an integer",
                               f.kind)
            cols[name] = np.array([str(value)], dtype=object)
    if any(f.name == key for f in spec):
        cols[key] = np.array([OOV_ID], dtype=object)
    return cols


def neutral_columns(tower: NumpyTower, spec: Sequence) -> dict[str, np.ndarray]:
    """Tower input columns {name: (1,)} for a user known by nothing but a history: the
    out-of-vocabulary id and categories, each numeric at its training mean."""
    cols = {}
    for f in spec:
        if f.is_numeric:
            cols[f.name] = np.asarray(tower.standardisation(f.name)[0], np.float32).reshape(1)
        else:
            cols[f.name] = np.array([OOV_ID if f.name == KEYS["user"] else UNKNOWN_CATEGORY], dtype=object)
    return cols
