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


def to_columns(frame: pd.DataFrame, features: tuple[Feature, ...]) -> dict[str, np.ndarray]:
    """Tower input columns: strings for ids/categories, float32 for numerics."""
    cols = {}
    for f in features:
        values = frame[f.name]
        cols[f.name] = values.to_numpy(np.float32) if f.is_numeric else values.astype(str).to_numpy(dtype=object)
    return cols


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
        self.ids = frame[key].astype(str).to_numpy(dtype=object)
        self.position = {k: i for i, k in enumerate(self.ids)}
        self.columns = to_columns(frame.assign(**{key: self.ids}), features)

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
