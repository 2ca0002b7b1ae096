"""Raw feature rows by id: the user feature store and the item catalogue.

Both are Parquet tables keyed by `user_id` / `item_id` (strings). Rows come out as the
column dict the exported towers take, so serving never re-implements preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.features import KEYS, Feature
from recsys.artifacts.positions import Positions


def to_columns(frame: pd.DataFrame, features: tuple[Feature, ...]) -> dict[str, np.ndarray]:
    """Tower input columns: strings for ids/categories, float32 for numerics."""
    cols = {}
    for f in features:
        values = frame[f.name]
        cols[f.name] = values.to_numpy(np.float32) if f.is_numeric else shared_strings(values)
    return cols


def shared_strings(values: pd.Series | np.ndarray) -> np.ndarray:
    """(N,) object array of the values as strings, one str object per distinct value: a
    category column of a million rows then costs a pointer a row, not a string a row."""
    codes, uniques = pd.factorize(pd.Series(values, copy=False).astype(str))
    return np.asarray(uniques, dtype=object)[codes]


def save_table(frame: pd.DataFrame, features: tuple[Feature, ...], tower: str, path: Path) -> None:
    key = KEYS[tower]
    cols = {key: frame[key].astype(str).to_numpy(dtype=object)}
    cols.update(to_columns(frame, tuple(f for f in features if f.name != key)))
    pd.DataFrame(cols).to_parquet(path, index=False)


class FeatureStore:
    """In-memory rows by id; `rows(ids)` -> tower input columns."""

    def __init__(self, frame: pd.DataFrame, features: tuple[Feature, ...], key: str):
        self.key = key
        self.features = features
        self.ids = shared_strings(frame[key])
        self.position = Positions(self.ids)
        self.columns = to_columns(frame.drop(columns=key), tuple(f for f in features if f.name != key))
        if any(f.name == key for f in features):
            self.columns[key] = self.ids  # the same strings, not a second copy of them
        self.columns = {f.name: self.columns[f.name] for f in features}  # the features' order

    @classmethod
    def load(cls, path: Path, features: tuple[Feature, ...], tower: str) -> FeatureStore:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path}: unreadable ({e})") from None
        return cls(frame, features, KEYS[tower])

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, positions: np.ndarray | list[int]) -> dict[str, np.ndarray]:
        positions = np.asarray(positions, dtype=np.int64)
        return {name: col[positions] for name, col in self.columns.items()}
