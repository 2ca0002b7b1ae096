"""Batch recommendations for a list of users, written as one table (`recsys recommend`).

The same chain as the service: a Recommender built from the version the service would load
(ARTIFACTS/current unless one is named), called through `recommend_batch` in chunks, so a
file of precomputed lists holds exactly what `POST /recommend` answers.

Users the feature store does not know are skipped and counted (the job keeps going over a
list with a few stale ids; the count and the first ids are reported on stderr).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import DataError
from recsys.artifacts.progress import Progress
from recsys.service.domain import Objective, Query, RequestError, UnknownUser
from recsys.service.recommender import Recommender

COLUMNS = ("user_id", "rank", "item_id", "score", "p_click", "p_conversion", "similarity")
OUTPUT_FORMATS = (".parquet", ".csv")
# Users per recommend_batch call: large enough that the tower, index and heads calls amortise
# their overhead, small enough that the (chunk, K', D) candidate tensor stays in cache-sized memory.
CHUNK = 512


@dataclass
class BatchResult:
    table: pd.DataFrame
    users: int            # users answered
    unknown: list[str]    # ids skipped: not in the feature store


def read_users(path: Path) -> np.ndarray:
    """The `user_id` column of a CSV or Parquet file, as strings, in file order, duplicates dropped."""
    if not path.is_file():
        raise DataError(f"{path}: users file not found")
    try:
        frame = (pd.read_parquet(path, columns=None) if path.suffix == ".parquet"
                 else pd.read_csv(path, dtype=str, keep_default_na=False))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable as {'Parquet' if path.suffix == '.parquet' else 'CSV'} ({e})") from None
    if "user_id" not in frame.columns:
        raise DataError(f"{path}: no user_id column (columns: {', '.join(map(str, frame.columns))})")
    return pd.unique(frame["user_id"].astype(str).to_numpy(dtype=object))


def check_output(path: Path) -> None:
    if path.suffix not in OUTPUT_FORMATS:
        raise DataError(f"{path}: output must end in .parquet or .csv")


def recommend_users(rec: Recommender, user_ids: np.ndarray, k: int, objective: Objective,
                    exclude_seen: bool, chunk: int = CHUNK) -> BatchResult:
    """Every user's top k, one row per (user, rank), columns COLUMNS; rank from 1."""
    cols: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
    unknown, answered = [], 0
    with Progress(len(user_ids), "recommend", "users") as bar:
        for start in range(0, len(user_ids), chunk):
            ids = user_ids[start:start + chunk]
            answers = rec.recommend_batch([Query(str(u), k, objective, exclude_seen) for u in ids])
            for user, out in zip(ids, answers):
                if isinstance(out, UnknownUser):
                    unknown.append(str(user))
                    continue
                if isinstance(out, RequestError):
                    raise DataError(f"user {user!r}: {out.message}")
                n = len(out.item_ids)
                answered += 1
                for name, values in (("user_id", np.full(n, str(user), dtype=object)),
                                     ("rank", np.arange(1, n + 1)), ("item_id", out.item_ids.astype(str)),
                                     ("score", out.score), ("p_click", out.p_click),
                                     ("p_conversion", out.p_conversion), ("similarity", out.similarity)):
                    cols[name].append(values)
            bar.update(len(ids))
    table = pd.DataFrame({c: np.concatenate(v) if v else np.empty(0) for c, v in cols.items()})
    return BatchResult(table.astype({"user_id": str, "item_id": str, "rank": np.int64}), answered, unknown)


def write(table: pd.DataFrame, path: Path) -> None:
    """Parquet or CSV by the suffix, written to a sibling and renamed, so a crash leaves no half file."""
    check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.partial")
    if path.suffix == ".parquet":
        table.to_parquet(staged, index=False)
    else:
        table.to_csv(staged, index=False)
    staged.replace(path)
