"""Loading an exported tower: a SavedModel that maps raw feature columns to embeddings.

The graph holds the whole preprocessing (vocabulary lookups with an OOV bucket,
standardisation), so callers pass raw values: strings for ids/categories, floats for
numerics.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.features import Feature
from recsys.artifacts.numpy_tower import embed_table
from recsys.artifacts.user_history import COLUMN


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported here (the serving image has none), without importing it."""
    if "tensorflow" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


class Tower:
    """`tower(columns)` -> embeddings (B, D) float32."""

    def __init__(self, path: Path, features: tuple[Feature, ...], history: bool = False):
        # Only this optional tower needs TensorFlow: the default numpy tower serves without loading it.
        import tensorflow as tf

        self._tf = tf
        self.features = features
        self.history = history
        try:
            self._model = tf.saved_model.load(str(path))
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path}: cannot load tower ({e})") from None

    def __call__(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        tf = self._tf
        inputs = {}
        for f in self.features:
            col = columns[f.name]
            inputs[f.name] = tf.constant(np.asarray(col, np.float32) if f.is_numeric else np.asarray(col, dtype=object).astype(str))
        if self.history:  # artifacts/user_history.py: (B, N) item ids, "" padding
            inputs[COLUMN] = tf.constant(np.asarray(columns[COLUMN], dtype=object).astype(str))
        return self._model.serve(inputs).numpy()

    def embed(self, columns: dict[str, np.ndarray], batch_size: int = 8192,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Embed a whole table in batches; `progress(done, total)` after each batch."""
        return embed_table(self, columns, batch_size, progress)
