"""A tower evaluated in numpy from its exported weights: the online hot path.

The same function as the SavedModel tower (artifacts/towers.py), without TensorFlow's
~1 ms per-call overhead: vocabulary lookups with OOV index 0, embedding gathers,
standardisation, the MLP and the optional L2 normalisation. A parity test keeps the two
equal (max abs difference <= 1e-5).

Training stores it next to the SavedModel as arrays and a config (feature order,
vocabularies, activations); artifacts/version.py names the files.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recsys.artifacts.heads import ACTIVATIONS
from recsys.artifacts.user_history import COLUMN, PAD

EPSILON = 1e-7  # keras.backend.epsilon(), the floor of the standard deviation


def embed_table(tower: Callable[[dict[str, np.ndarray]], np.ndarray], columns: dict[str, np.ndarray],
                batch_size: int = 8192, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Run `tower` over a whole column table in batches; `progress(done, total)` after each."""
    n = len(next(iter(columns.values())))
    out = []
    for start in range(0, n, batch_size):
        out.append(tower({k: v[start:start + batch_size] for k, v in columns.items()}))
        if progress:
            progress(min(start + batch_size, n), n)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class NumpyTower:
    """`tower(columns)` -> embeddings (B, D) float32."""

    def __init__(self, config: dict, arrays: dict[str, np.ndarray]):
        self.config = config
        self.features = config["features"]  # [{"name", "kind"}] in input order
        self.lookup = {f["name"]: {v: i + 1 for i, v in enumerate(config["vocabularies"][f["name"]])}
                       for f in self.features if f["kind"] != "numeric"}
        self.arrays = arrays
        self.dense = [(arrays[f"dense_{i}_kernel"], arrays[f"dense_{i}_bias"], act)
                      for i, act in enumerate(config["activations"])]
        self.l2_normalize = config["l2_normalize"]
        # A history input (artifacts/user_history.py): item ids (B, N), "" padding, pooled by a masked mean.
        self.history = bool(config.get("history"))
        if self.history:
            self.history_lookup = {v: i + 1 for i, v in enumerate(config["vocabularies"][COLUMN])}
            self.history_table = arrays["history_embedding"]

    def standardisation(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (1,) the Normalization layer of numeric feature `name` learnt."""
        return self.arrays[f"{name}_mean"], np.maximum(np.sqrt(self.arrays[f"{name}_variance"]), EPSILON)

    def pool(self, history: np.ndarray) -> np.ndarray:
        """Masked mean (B, dim) of the history table over item ids (B, N); "" pads, unknown ids
        take the out-of-vocabulary row 0."""
        history = np.asarray(history, dtype=object)
        if history.ndim != 2:
            raise ValueError(f"history must be (B, N), got shape {history.shape}")
        lookup = self.history_lookup
        flat = history.ravel()
        codes = np.fromiter((lookup.get(v, 0) for v in flat), np.int64, count=len(flat)).reshape(history.shape)
        mask = (history != PAD).astype(np.float32)
        total = np.einsum("bn,bnd->bd", mask, self.history_table[codes])
        return total / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)

    def __call__(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        parts = []
        for f in self.features:
            name, col = f["name"], columns[f["name"]]
            if f["kind"] == "numeric":
                x = np.asarray(col, np.float32)[:, None]
                mean, std = self.standardisation(name)
                parts.append((x - mean) / std)
            else:
                vocab = self.lookup[name]
                idx = np.fromiter((vocab.get(str(v), 0) for v in col), dtype=np.int64, count=len(col))
                parts.append(self.arrays[f"{name}_embedding"][idx])
        if self.history:
            parts.append(self.pool(columns[COLUMN]))
        x = np.concatenate(parts, axis=1).astype(np.float32)
        for kernel, bias, act in self.dense:
            x = ACTIVATIONS[act](x @ kernel + bias)
        if self.l2_normalize:
            x = x * np.minimum(1.0 / np.sqrt(np.sum(x * x, axis=1, keepdims=True)), 1e12)
        return x.astype(np.float32, copy=False)
