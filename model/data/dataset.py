"""Reading, validating and writing a dataset directory (the dataset contract in docs/DATA.md).

Ids and categorical values are read as strings; numerics as floats; labels as 0/1.
Anything that breaks the contract raises DataError with one line saying what and where.
Interactions that reference unknown users or items are an error (with the count), not
silently dropped: a broken join should stop training, not shrink it. The optional events
file (the service's event log, `recsys events export`) is different: users and items come
and go after a data set is cut, so its events of unknown users or items are dropped and
counted (`Dataset.events`), the rest added as positive interactions.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts import hashing
from recsys.artifacts.errors import ConfigError, DataError
from recsys.artifacts.events import COLUMNS as EVENT_COLUMNS
from recsys.artifacts.events import EVENTS
from recsys.artifacts.features import KEYS, FeatureSpec

LABELS = ("click", "conversion")
FORMATS = ("auto", "csv", "parquet")
PARQUET_ABOVE = 1_000_000   # format "auto": Parquet above this many interactions, CSV below
# Files that only some sources write; removed before writing so none is left stale.
SIDE_FILES = ("truth.parquet", "world.npz", "world.json", "test.parquet", "convert.json")


@dataclass
class EventsAdded:
    """What the events file added: events read, interactions they became, events dropped."""

    path: Path
    events: int
    interactions: int
    unknown_users: int
    unknown_items: int

    def describe(self) -> str:
        return (f"{self.path.name}: {self.events} events -> {self.interactions} positive interactions; dropped "
                f"{self.unknown_users} of unknown users, {self.unknown_items} of unknown items")


@dataclass
class Dataset:
    directory: Path
    spec: FeatureSpec
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    fingerprint: str
    events: EventsAdded | None = None  # None without an events file

    def joined(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """Interactions (optionally a subset of row positions) with user and item features."""
        inter = self.interactions if rows is None else self.interactions.iloc[rows]
        user_cols = [c for c in self.spec.names("user") if c != "user_id"]
        item_cols = [c for c in self.spec.names("item") if c != "item_id"]
        out = inter.merge(self.users[["user_id", *user_cols]], on="user_id", how="left")
        return out.merge(self.items[["item_id", *item_cols]], on="item_id", how="left")


def find_table(directory: Path, name: str, optional: bool = False) -> Path | None:
    found = [p for p in (directory / f"{name}.parquet", directory / f"{name}.csv") if p.is_file()]
    if not found and optional:
        return None
    if not found:
        raise DataError(f"{directory}: missing {name}.csv or {name}.parquet")
    if len(found) > 1:
        raise DataError(f"{directory}: both {name}.csv and {name}.parquet exist; keep one")
    return found[0]


FLOAT32_LIMIT = float(np.finfo(np.float32).max)


def read_table(path: Path, string_columns: list[str]) -> pd.DataFrame:
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype={c: str for c in string_columns}, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return frame


def _require(frame: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")


def _entity_table(directory: Path, spec: FeatureSpec, tower: str) -> pd.DataFrame:
    key = KEYS[tower]
    path = find_table(directory, f"{tower}s")
    feats = [f for f in spec.tower(tower) if f.name != key]
    strings = [key] + [f.name for f in feats if not f.is_numeric]
    frame = read_table(path, strings)
    _require(frame, [key] + [f.name for f in feats], path)
    frame = frame[[key] + [f.name for f in feats]].copy()
    for col in strings:
        if col == key and (frame[col].isna() | (frame[col].astype(str) == "")).any():
            raise DataError(f"{path}: row(s) with an empty {key}")
        frame[col] = frame[col].fillna("").astype(str)  # a missing category is the OOV bucket
    dups = frame[key].duplicated()
    if dups.any():
        raise DataError(f"{path}: {int(dups.sum())} duplicate {key}(s), e.g. {frame[key][dups].iloc[0]!r}")
    for f in feats:
        if f.is_numeric:
            values = pd.to_numeric(frame[f.name], errors="coerce")
            bad = values.isna() | ~np.isfinite(values.astype(float))
            if bad.any():
                raise DataError(f"{path}: numeric feature '{f.name}' has {int(bad.sum())} missing or non-numeric value(s)")
            # Towers compute in float32: a larger value becomes inf there, and the model NaN.
            big = np.abs(values.astype(float)) > FLOAT32_LIMIT
            if big.any():
                row = int(np.flatnonzero(big.to_numpy())[0])
                raise DataError(f"{path}: data row {row + 1}, column '{f.name}': {values.iloc[row]!r} is beyond the "
                                f"float32 range the model computes in (|x| <= {FLOAT32_LIMIT:.3g})")
            frame[f.name] = values.astype(np.float32)
    return frame


def _labels(frame: pd.DataFrame, path: Path) -> None:
    for col in LABELS:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            raise DataError(f"{path}: label '{col}' must be 0 or 1; {int(bad.sum())} row(s) are not, "
                            f"e.g. {frame[col][bad].iloc[0]!r}")
        frame[col] = values.astype(np.int8)
    orphan = (frame["conversion"] == 1) & (frame["click"] == 0)
    if orphan.any():
        raise DataError(f"{path}: {int(orphan.sum())} row(s) have a conversion without a click")


def fingerprint(paths: list[Path]) -> str:
    """16 hex digits of sha256 over each file's name and bytes: equal for the same data set."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        hashing.update(h, p)
    return h.hexdigest()[:16]


def load_dataset(directory: str | Path) -> Dataset:
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: dataset directory not found")
    spec = FeatureSpec.load(directory / "features.toml")
    users = _entity_table(directory, spec, "user")
    items = _entity_table(directory, spec, "item")
    path = find_table(directory, "interactions")
    inter = read_table(path, ["user_id", "item_id"])
    _require(inter, ["user_id", "item_id", *LABELS], path)
    keep = ["user_id", "item_id", *LABELS] + (["timestamp"] if "timestamp" in inter.columns else [])
    inter = inter[keep].copy()
    inter["user_id"] = inter["user_id"].astype(str)
    inter["item_id"] = inter["item_id"].astype(str)
    if inter.empty:
        raise DataError(f"{path}: no interactions")
    _labels(inter, path)
    for key, table in (("user_id", users), ("item_id", items)):
        unknown = ~inter[key].isin(table[key])
        if unknown.any():
            raise DataError(f"{path}: {int(unknown.sum())} interaction(s) reference unknown {key}s, "
                            f"e.g. {inter[key][unknown].iloc[0]!r}")
    files = [directory / "features.toml", find_table(directory, "users"), find_table(directory, "items"), path]
    events_path, added = find_table(directory, "events", optional=True), None
    if events_path is not None:
        extra, added = _events(events_path, users, items, timed="timestamp" in inter.columns)
        inter = pd.concat([inter, extra], ignore_index=True)
        files.append(events_path)
    inter = inter.reset_index(drop=True)
    return Dataset(directory, spec, users, items, inter, fingerprint(files), added)


def _events(path: Path, users: pd.DataFrame, items: pd.DataFrame, timed: bool) -> tuple[pd.DataFrame, EventsAdded]:
    """The events file as interactions: every click a row (click 1); a conversion the
    conversion of the same user's earliest unconverted click of that item, else a row of its
    own (click 1, conversion 1: a conversion implies the click)."""
    frame = read_table(path, ["user_id", "item_id", "event"])
    _require(frame, list(EVENT_COLUMNS), path)
    ev = frame[list(EVENT_COLUMNS)].copy()
    for key in ("user_id", "item_id"):
        ev[key] = ev[key].astype(str)
        empty = ev[key].isna() | (ev[key] == "")
        if empty.any():
            raise DataError(f"{path}: {int(empty.sum())} event(s) with an empty {key}")
    bad = ~ev["event"].isin(EVENTS)
    if bad.any():
        raise DataError(f"{path}: column 'event' must be one of {list(EVENTS)}; {int(bad.sum())} row(s) are not, "
                        f"e.g. {ev['event'][bad].iloc[0]!r}")
    stamps = pd.to_numeric(ev["timestamp"], errors="coerce").astype(float)
    if (~np.isfinite(stamps)).any():
        raise DataError(f"{path}: column 'timestamp' has {int((~np.isfinite(stamps)).sum())} missing or "
                        "non-numeric value(s) (epoch seconds)")
    ev["timestamp"] = stamps
    unknown_user = ~ev["user_id"].isin(users["user_id"])
    unknown_item = ~unknown_user & ~ev["item_id"].isin(items["item_id"])
    kept = ev[~unknown_user & ~unknown_item].sort_values(["user_id", "item_id", "timestamp"], kind="stable")
    pair = [kept["user_id"], kept["item_id"]]
    nth = kept.groupby([*pair, kept["event"]]).cumcount()  # the n-th click / conversion of its pair
    is_click = kept["event"] == "click"
    conversions = (~is_click).groupby(pair).transform("sum")
    clicks = is_click.groupby(pair).transform("sum")
    rows = kept[is_click | (nth >= clicks)]  # clicks, and the conversions no click precedes
    converted = ~is_click | (nth < conversions)
    out = pd.DataFrame({"user_id": rows["user_id"], "item_id": rows["item_id"], "click": np.int8(1),
                        "conversion": converted[rows.index].astype(np.int8)})
    if timed:
        out["timestamp"] = rows["timestamp"]
    added = EventsAdded(path, len(ev), len(out), int(unknown_user.sum()), int(unknown_item.sum()))
    return out.reset_index(drop=True), added


def split(n: int, test_size: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions; the same permutation as scikit-learn's train_test_split."""
    n_test = math.ceil(test_size * n)
    perm = np.random.RandomState(seed).permutation(n)
    return perm[n_test:], perm[:n_test]


def time_split(users: pd.Series, timestamps: pd.Series, test_size: float = 0.2,
               seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions: each user's latest ceil(test_size x rows) rows by time are held
    out, at most all but one where the user has two or more (a user keeps a row to be known by).

    Ties in time go by row order. The training positions come in a seeded random order (the
    validation rows are taken from their front), the held-out ones in row order.
    """
    user_codes = pd.factorize(users, sort=False)[0]
    n = len(user_codes)
    order = np.lexsort((np.arange(n), timestamps.to_numpy(np.float64), user_codes))  # by user, then time
    counts = np.bincount(user_codes, minlength=user_codes.max() + 1 if n else 0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    n_test = np.ceil(test_size * counts - 1e-9).astype(np.int64)  # 0.2 x 5 rows is 1, not 2
    n_test = np.where(counts >= 2, np.minimum(n_test, counts - 1), n_test)
    sorted_users = user_codes[order]
    rank_from_end = starts[sorted_users] + counts[sorted_users] - np.arange(n)  # 1 = the user's latest row
    held = rank_from_end <= n_test[sorted_users]
    test = np.sort(order[held])
    train = order[~held]
    return np.random.RandomState(seed).permutation(train), test


def split_rows(interactions: pd.DataFrame, how: str = "random", test_size: float = 0.2,
               seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions of `interactions`: the one place training and evaluation take
    their split from, so both hold out the same rows. `how` (TrainConfig.split):

    random   a seeded share of all rows (the article's split)
    time     each user's latest rows by `timestamp` (time_split): the model is scored on what came after
    """
    if how == "time":
        if "timestamp" not in interactions.columns:
            raise DataError("the time split needs a timestamp column in the interactions; this data set has "
                            "none (use the random split)")
        return time_split(interactions["user_id"], interactions["timestamp"], test_size, seed)
    if how != "random":
        raise ConfigError(f"split must be random or time, not {how!r}")
    return split(len(interactions), test_size, seed)


def write_dataset(out: Path, users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame,
                  spec: FeatureSpec, fmt: str = "csv") -> None:
    """Write the three tables ("csv" or "parquet") and features.toml to `out`, replacing any data set there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for side in SIDE_FILES:
        (out / side).unlink(missing_ok=True)
    for name, frame in (("users", users), ("items", items), ("interactions", interactions)):
        for stale in (out / f"{name}.csv", out / f"{name}.parquet"):
            stale.unlink(missing_ok=True)
        if fmt == "parquet":
            frame.to_parquet(out / f"{name}.parquet", index=False)
        else:
            frame.to_csv(out / f"{name}.csv", index=False)
    spec.dump(out / "features.toml")


def resolve_format(fmt: str, n_interactions: int) -> str:
    """"csv" or "parquet" for one of FORMATS; "auto" picks Parquet above PARQUET_ABOVE interactions."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "auto":
        return "parquet" if n_interactions > PARQUET_ABOVE else "csv"
    return fmt
