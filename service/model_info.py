"""What the served model is, told to people: version, catalogue, index, user and item features.

`GET /model` answers it; the page (GET /) builds its new-user form from `user_features`,
and the OpenAPI examples take a real user id and plausible feature values from it, so both
fit whichever data set the model was trained on. `describe(rec)` is the one place that
reads the recommender's internals for this.
"""

from __future__ import annotations

import threading
import weakref
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from recsys.artifacts.features import KEYS
from recsys.service.recommender import Recommender
from recsys.service.schemas import Objective

# Known user ids offered in the page's search box. More only lengthens the page's datalist;
# any other id can still be typed.
SAMPLE_USERS = 50
# Most frequent values listed per categorical or id feature: enough to pick from at a
# glance; a rarer or unseen value can still be typed (it maps to the OOV bucket).
KNOWN_VALUES = 50


class FeatureSummary(BaseModel):
    name: str
    kind: Literal["id", "categorical", "numeric"]
    values: list[str] | None = Field(None, description="Categorical and id features: the most frequent values "
                                                       "in the feature store, most frequent first.")
    min: float | None = Field(None, description="Numeric features: smallest stored value.")
    max: float | None = Field(None, description="Numeric features: largest stored value.")
    median: float | None = Field(None, description="Numeric features: median stored value.")


class ModelInfo(BaseModel):
    model_version: str
    created_at: str | None = Field(None, description="When the model was trained (UTC, ISO 8601).")
    items: int = Field(description="Catalogue size: items in the index.")
    index: str = Field(description="Index format: flat, hnsw or ivf.")
    objectives: list[Objective]
    users: int = Field(description="Users in the feature store (known users).")
    sample_users: list[str] = Field(description=f"Up to {SAMPLE_USERS} known user ids.")
    user_features: list[FeatureSummary] = Field(description="What a new user is described by "
                                                            "(`user_features` of POST /recommend).")
    history_length: int = Field(0, description="How many recent items the user tower pools (its stored "
                                               "history, logged events and `recent_items`); 0: no history.")
    item_features: list[FeatureSummary] = Field(description="The item attributes a request can filter on and "
                                                            "ask for (`filters`, `fields` of POST /recommend), as "
                                                            "the model's catalogue holds them.")


def _feature(name: str, kind: str, column: np.ndarray) -> FeatureSummary:
    if kind == "numeric":
        if not len(column):
            return FeatureSummary(name=name, kind=kind)
        return FeatureSummary(name=name, kind=kind, min=float(np.min(column)), max=float(np.max(column)),
                              median=float(np.median(column)))
    counts = pd.Series(column).value_counts(sort=True)
    return FeatureSummary(name=name, kind=kind, values=[str(v) for v in counts.index[:KNOWN_VALUES]])


def describe(rec: Recommender) -> ModelInfo:
    """The model card of `rec`; features are summarised from its feature store (once per model)."""
    features = [_feature(f.name, f.kind, rec.users.columns[f.name])
                for f in rec.user_features if f.name != KEYS["user"]]
    items = rec.catalogue.items  # the version's catalogue (items changed live are not summarised)
    return ModelInfo(model_version=rec.version, created_at=rec.manifest.get("created_at"),
                     items=rec.item_count, index=str(rec.searcher.manifest.get("kind", "unknown")),
                     objectives=list(Objective), users=len(rec.users),
                     sample_users=[str(u) for u in rec.users.ids[:SAMPLE_USERS]], user_features=features,
                     history_length=rec.history_length,
                     item_features=[_feature(f.name, f.kind, items.columns[f.name])
                                    for f in items.features if f.name != KEYS["item"]])


# Summaries cost a pass over each stored feature column (~0.1 s per column at 1M users):
# computed once per loaded model, forgotten with it.
_cache: weakref.WeakKeyDictionary[Recommender, ModelInfo] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def cached(rec: Recommender) -> ModelInfo:
    with _lock:
        info = _cache.get(rec)
        if info is None:
            info = _cache[rec] = describe(rec)
        return info


def example_features(info: ModelInfo) -> dict[str, str | int | float]:
    """Plausible `user_features` for a new user: the most frequent value of each categorical or
    id feature, the median of each numeric one (an integer when the stored values are)."""
    out: dict[str, str | int | float] = {}
    for f in info.user_features:
        if f.kind != "numeric":
            out[f.name] = f.values[0] if f.values else "unknown"
        elif f.median is None:
            out[f.name] = 0
        else:
            integral = all(v is not None and float(v).is_integer() for v in (f.min, f.max))
            out[f.name] = round(f.median) if integral else round(f.median, 3)
    return out
