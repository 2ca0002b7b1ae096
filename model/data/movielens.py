"""MovieLens (`ratings.csv` + `movies.csv`, the ml-latest / ml-25m layout) -> the dataset contract.

    recsys convert movielens --ratings-dir PATH --out DIR [--negatives 4 --sampling uniform --seed 0]

The input is read from where it lies and never copied: MovieLens is licensed for research
use only, so neither it nor anything derived from it belongs in this repository.

- Leave-last-out: each user's last rating by time (ties: the later row of ratings.csv) is
  the test item. It goes to `test.parquet` (user_id, item_id, rating, conversion,
  timestamp) and NOT into the interactions, so nothing downstream can train on it. A user
  with a single rating keeps it for training and has no test item.
- Every other rating is a clicked exposure; a rating >= 4 is also a conversion.
- Each such rating gets `negatives` non-click exposures of movies the user never rated
  (the test movie counts as rated, so it is never a training negative), drawn with
  replacement, uniformly over movies.csv (default; as in NCF, He et al. 2017) or in
  proportion to training rating counts (`popularity`: harder negatives, the model can no
  longer win by popularity alone). They carry the timestamp of their rating.
- A movie rated more than once by a user keeps its last rating.
- Items: every movie of movies.csv with `genre` (the first listed, "none" when none is),
  `year` (from the title's "(YYYY)"; the median year when missing), `n_genres` and one 0/1
  numeric `g_<genre>` flag per genre. Users: `user_id` only (a feature derived from the
  ratings would leak the labels of the rows the trainer holds out).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import ConfigError, DataError
from recsys.artifacts.features import Feature, FeatureSpec
from recsys.model.data.dataset import resolve_format, write_dataset

CONVERSION_RATING = 4.0
SAMPLING = ("uniform", "popularity")   # how non-click exposures are drawn from unrated movies
_YEAR = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{4})?\)\s*$")
NO_GENRE = "(no genres listed)"


def _read(path: Path, columns: list[str], dtype: dict) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path.parent}: missing {path.name} (expected the MovieLens ratings.csv + movies.csv layout)")
    try:
        frame = pd.read_csv(path, dtype=dtype, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    return frame[columns]


def read_movielens(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings, movies) with ids as strings, ratings and timestamps numeric."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: MovieLens directory not found")
    ratings = _read(directory / "ratings.csv", ["userId", "movieId", "rating", "timestamp"],
                    {"userId": str, "movieId": str})
    movies = _read(directory / "movies.csv", ["movieId", "title", "genres"],
                   {"movieId": str, "title": str, "genres": str})
    path = directory / "ratings.csv"
    for col in ("rating", "timestamp"):
        values = pd.to_numeric(ratings[col], errors="coerce")
        if values.isna().any():
            raise DataError(f"{path}: {int(values.isna().sum())} row(s) with a non-numeric {col}")
        ratings[col] = values
    ratings["timestamp"] = ratings["timestamp"].astype(np.int64)
    if ratings.empty:
        raise DataError(f"{path}: no ratings")
    dups = movies["movieId"].duplicated()
    if dups.any():
        raise DataError(f"{directory / 'movies.csv'}: {int(dups.sum())} duplicate movieId(s)")
    unknown = ~ratings["movieId"].isin(movies["movieId"])
    if unknown.any():
        raise DataError(f"{path}: {int(unknown.sum())} rating(s) of movies missing from movies.csv, "
                        f"e.g. {ratings['movieId'][unknown].iloc[0]!r}")
    return ratings, movies


def _slug(genre: str) -> str:
    return "g_" + re.sub(r"[^a-z0-9]+", "_", genre.lower()).strip("_")


def movie_features(movies: pd.DataFrame) -> tuple[pd.DataFrame, FeatureSpec]:
    genres = movies["genres"].where(movies["genres"] != NO_GENRE, "").str.split("|")
    genres = genres.map(lambda gs: [g for g in gs if g])
    year = pd.to_numeric(movies["title"].str.strip().str.extract(_YEAR)[0], errors="coerce")
    fill = round(float(year.median())) if year.notna().any() else 2000
    items = pd.DataFrame({
        "item_id": movies["movieId"].to_numpy(),
        "genre": genres.map(lambda gs: gs[0] if gs else "none").to_numpy(),
        "year": year.fillna(fill).astype(np.int64).to_numpy(),
        "n_genres": genres.map(len).astype(np.int64).to_numpy(),
    })
    names = sorted({g for gs in genres for g in gs})
    slugs = {}
    for g in names:
        slug = _slug(g)[:64]
        if slug in slugs.values() or slug == "g_":
            continue  # two spellings of one genre, or nothing left of it: keep the first
        slugs[g] = slug
    flags = {slug: genres.map(lambda gs, g=g: g in gs).to_numpy(np.int8) for g, slug in slugs.items()}
    items = pd.concat([items, pd.DataFrame(flags)], axis=1)
    spec = FeatureSpec((
        Feature("user_id", "user", "id"),
        Feature("item_id", "item", "id"),
        Feature("genre", "item", "categorical", 8),
        Feature("year", "item", "numeric"),
        Feature("n_genres", "item", "numeric"),
        *(Feature(slug, "item", "numeric") for slug in slugs.values()),
    ))
    return items, spec


def leave_last_out(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): each user's last rating by time (ties: later row) is the test rating,
    for users with at least two ratings. Repeated (user, movie) ratings keep the last."""
    r = ratings.assign(_row=np.arange(len(ratings)))
    r = r.sort_values(["userId", "timestamp", "_row"], kind="stable")
    r = r.drop_duplicates(["userId", "movieId"], keep="last")
    last = ~r["userId"].duplicated(keep="last")
    several = r["userId"].map(r["userId"].value_counts()) > 1
    test = r[last & several]
    train = r[~(last & several)]
    return train.drop(columns="_row"), test.drop(columns="_row")


def sample_negatives(user_idx: np.ndarray, rated_keys: np.ndarray, n_items: int, per_row: int,
                     rng: np.random.Generator, weights: np.ndarray | None = None,
                     max_rounds: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(row, item index) of `per_row` negatives per entry of user_idx, never an item in
    rated_keys (sorted user * n_items + item), by rejection; rows whose user rated (almost)
    everything may come back short."""
    rows = np.repeat(np.arange(len(user_idx)), per_row)
    users = user_idx[rows]
    cdf = None if weights is None else np.cumsum(weights / weights.sum())

    def draw(k: int) -> np.ndarray:
        if cdf is None:
            return rng.integers(0, n_items, k)
        return np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), n_items - 1)

    items = draw(len(rows))
    ok = np.zeros(len(rows), bool)
    todo = np.arange(len(rows))
    for _ in range(max_rounds):
        keys = users[todo].astype(np.int64) * n_items + items[todo]
        pos = np.minimum(np.searchsorted(rated_keys, keys), len(rated_keys) - 1)
        clash = rated_keys[pos] == keys
        ok[todo[~clash]] = True
        todo = todo[clash]
        if not len(todo):
            break
        items[todo] = draw(len(todo))
    return rows[ok], items[ok]


def convert(ratings_dir: str | Path, out: str | Path, negatives: int = 4, seed: int = 0,
            sampling: str = "uniform", fmt: str = "auto") -> dict:
    """Write the dataset (users, items, interactions, features.toml) and test.parquet."""
    if negatives < 0:
        raise ConfigError(f"--negatives must be >= 0, not {negatives}")
    if sampling not in SAMPLING:
        raise ConfigError(f"--sampling must be one of {', '.join(SAMPLING)}, not {sampling!r}")
    resolve_format(fmt, 0)  # a bad format fails before the ratings are read
    ratings, movies = read_movielens(ratings_dir)
    items, spec = movie_features(movies)
    train, test = leave_last_out(ratings)

    item_pos = pd.Index(items["item_id"])
    user_ids = np.sort(ratings["userId"].unique())
    user_pos = pd.Index(user_ids)
    n_items = len(items)
    all_r = pd.concat([train, test])
    rated = np.unique(user_pos.get_indexer(all_r["userId"]).astype(np.int64) * n_items
                      + item_pos.get_indexer(all_r["movieId"]))
    tu = user_pos.get_indexer(train["userId"])
    ti = item_pos.get_indexer(train["movieId"])
    weights = None
    if sampling == "popularity":
        weights = np.bincount(ti, minlength=n_items).astype(np.float64)
    rng = np.random.default_rng(seed)
    neg_rows, neg_items = sample_negatives(tu, rated, n_items, negatives, rng, weights)

    ts = train["timestamp"].to_numpy()
    n_pos = len(train)
    inter = pd.DataFrame({
        "user_id": np.concatenate([user_ids[tu], user_ids[tu[neg_rows]]]),
        "item_id": np.concatenate([items["item_id"].to_numpy()[ti], items["item_id"].to_numpy()[neg_items]]),
        "click": np.concatenate([np.ones(n_pos, np.int8), np.zeros(len(neg_rows), np.int8)]),
        "conversion": np.concatenate([(train["rating"].to_numpy() >= CONVERSION_RATING).astype(np.int8),
                                      np.zeros(len(neg_rows), np.int8)]),
        "timestamp": np.concatenate([ts, ts[neg_rows]]),
    })
    # Log order: by time, each rating followed by its negatives.
    order_key = np.concatenate([np.arange(n_pos), neg_rows])
    order = np.lexsort((np.arange(len(inter)), order_key, inter["timestamp"].to_numpy()))
    inter = inter.iloc[order].reset_index(drop=True)

    users = pd.DataFrame({"user_id": user_ids})
    fmt = resolve_format(fmt, len(inter))
    write_dataset(Path(out), users, items, inter, spec, fmt)
    test_out = pd.DataFrame({
        "user_id": test["userId"].to_numpy(), "item_id": test["movieId"].to_numpy(),
        "rating": test["rating"].to_numpy(np.float64),
        "conversion": (test["rating"].to_numpy() >= CONVERSION_RATING).astype(np.int8),
        "timestamp": test["timestamp"].to_numpy(np.int64)})
    test_out.to_parquet(Path(out) / "test.parquet", index=False)
    summary = {
        "users": len(users), "items": len(items), "ratings": len(ratings), "interactions": len(inter),
        "clicks": int(n_pos), "conversions": int(inter["conversion"].sum()), "test_users": len(test_out),
        "negatives_per_rating": negatives, "sampling": sampling, "negatives_short": int(n_pos * negatives - len(neg_rows)),
        "seed": seed, "format": fmt,
    }
    (Path(out) / "convert.json").write_text(json.dumps({"source": "movielens", **summary}, indent=2) + "\n")
    return summary
