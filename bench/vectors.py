"""Vectors to benchmark ANN indexes on: synthetic clustered embeddings, or a model's own.

Random Gaussian vectors are the worst case for every ANN index (no structure to exploit) and
look nothing like trained embeddings, which are clustered (categories, brands, tastes) and
close to low rank. `clustered` draws L2-normalised vectors shaped like that:

    centre_c  = normalise(s ⊙ z_c),  z_c ~ N(0, I),  s_j = (j + 1)^-decay over the D dims
                (a decaying spectrum: a few directions carry most of the spread)
    size_c    ∝ (rank_c + 1)^-1 over a random ranking of the clusters (power law)
    vector    = normalise(centre_c + spread · s ⊙ e / ‖s‖,  e ~ N(0, I))

Queries come from the same mixture (users live where items live), drawn independently.
`load_embeddings` reads a built index's item embeddings (artifacts/version.py names the file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.artifacts import version
from recsys.artifacts.errors import RecsysError
from recsys.index.recall import user_vectors


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


class ClusteredWorld:
    """A fixed mixture of clusters; `sample(n, seed)` draws n vectors from it."""

    def __init__(self, dim: int = 32, n_clusters: int = 2000, spread: float = 0.6,
                 decay: float = 0.5, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.scale = (np.arange(dim) + 1.0) ** -decay
        self.centres = _normalise(rng.standard_normal((n_clusters, dim)) * self.scale)
        weights = (rng.permutation(n_clusters) + 1.0) ** -1.0
        self.weights = weights / weights.sum()
        self.spread = spread

    def sample(self, n: int, seed: int, chunk: int = 1 << 18) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        noise_scale = self.spread * self.scale / np.linalg.norm(self.scale)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            c = rng.choice(len(self.centres), size=m, p=self.weights)
            x = self.centres[c] + rng.standard_normal((m, self.dim)).astype(np.float32) * noise_scale
            out[start:start + m] = _normalise(x)
        return out


def clustered(n_items: int, n_queries: int, dim: int = 32, seed: int = 0,
              **world) -> tuple[np.ndarray, np.ndarray]:
    """(items (n_items, dim), queries (n_queries, dim)), float32, unit rows."""
    w = ClusteredWorld(dim=dim, seed=seed, **world)
    return w.sample(n_items, seed + 1), w.sample(n_queries, seed + 2)


def load_embeddings(path: str | Path) -> np.ndarray:
    """Item embeddings from `path`: a .npy file, an index dir or a model version dir."""
    path = Path(path)
    for candidate in (path, path / version.EMBEDDINGS, path / version.INDEX_DIR / version.EMBEDDINGS):
        if candidate.is_file():
            x = np.load(candidate)
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
                raise ValueError(f"{candidate}: expected a float (N, D) array, got {x.dtype} {x.shape}")
            return np.ascontiguousarray(x, dtype=np.float32)
    raise FileNotFoundError(f"{path}: no {version.EMBEDDINGS} (expected a file, an index dir or a version dir)")


def user_queries(version_dir: str | Path, n: int, seed: int = 0) -> np.ndarray | None:
    """Embeddings of n random stored users of a model version (None if it is not one): the
    queries `build-index` checks its recall with (index/recall.py)."""
    try:
        opened = version.Version.at(version_dir)
    except RecsysError:
        return None
    return user_vectors(opened, n, seed)


def _is_unit(x: np.ndarray) -> bool:
    return bool(np.abs(np.linalg.norm(x[:1000], axis=1) - 1).max() < 1e-3)


def _jitter(rows: np.ndarray, sd: np.ndarray, rng: np.random.Generator, unit: bool) -> np.ndarray:
    out = rows + (0.05 * sd * rng.standard_normal(rows.shape)).astype(np.float32)
    return _normalise(out) if unit else out.astype(np.float32)


def resample(items: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n rows like `items`: a prefix when there are enough, else jittered copies appended.

    Jitter: Gaussian noise of 5% of the per-dimension spread of the data, then re-normalised
    when the rows are unit vectors, so copies are distinct but keep the shape of the data.
    """
    if n <= len(items):
        return np.ascontiguousarray(items[:n], dtype=np.float32)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(items), n - len(items))
    extra = _jitter(items[picks], items.std(axis=0), rng, _is_unit(items))
    return np.concatenate([items, extra]).astype(np.float32)


def jittered_queries(items: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n query vectors near random rows of `items` (users live where items live)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(items), n)
    return _jitter(items[picks], items.std(axis=0), rng, _is_unit(items))
