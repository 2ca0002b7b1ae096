"""The time split: each user's latest interactions are held out, the same way every time."""

import math

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.errors import DataError
from recsys.model.data.dataset import split, split_rows
from tests.conftest import recsys


def interactions(seed=0, n_users=40, n=900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = np.concatenate([rng.integers(0, n_users, n), [n_users, n_users + 1, n_users + 1]])  # 1 and 2 rows
    return pd.DataFrame({"user_id": users.astype(str), "item_id": rng.integers(0, 50, len(users)).astype(str),
                         "click": rng.integers(0, 2, len(users)),
                         "timestamp": rng.integers(0, 200, len(users))})  # ties in time on purpose


def latest_rows(inter: pd.DataFrame, test_size: float) -> set[int]:
    """Each user's latest rows, user by user: ceil(share) of them, all but one when the user has two or more."""
    held = set()
    for _, rows in inter.assign(pos=np.arange(len(inter))).groupby("user_id"):
        rows = rows.sort_values(["timestamp", "pos"])
        n_test = math.ceil(test_size * len(rows) - 1e-9)
        n_test = min(n_test, len(rows) - 1) if len(rows) >= 2 else n_test
        held |= set(rows["pos"].iloc[len(rows) - n_test:])
    return held


@pytest.mark.parametrize("test_size", [0.2, 0.5])
def test_each_users_latest_rows_are_held_out(test_size):
    inter = interactions()
    train, test = split_rows(inter, "time", test_size, seed=42)
    assert set(test) == latest_rows(inter, test_size)
    assert sorted(np.concatenate([train, test])) == list(range(len(inter)))  # every row, once
    kept = inter.iloc[train]
    for user, rows in inter.groupby("user_id"):
        if len(rows) >= 2:
            assert user in set(kept["user_id"])  # a row to be known by
            # Nothing kept for training comes after anything held out.
            later = inter.iloc[test][inter.iloc[test]["user_id"] == user]["timestamp"].min()
            assert kept[kept["user_id"] == user]["timestamp"].max() <= later
    assert "40" not in set(kept["user_id"])  # a user's only row is held out


def test_the_time_split_is_reproducible_and_the_seed_only_orders_the_training_rows():
    inter = interactions()
    a, b = split_rows(inter, "time", 0.2, 42), split_rows(inter.copy(), "time", 0.2, 42)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    other = split_rows(inter, "time", 0.2, 7)
    assert np.array_equal(other[1], a[1]) and set(other[0]) == set(a[0]) and not np.array_equal(other[0], a[0])


def test_the_random_split_is_the_articles():
    inter = interactions()
    got, want = split_rows(inter, "random", 0.2, 42), split(len(inter), 0.2, 42)
    assert all(np.array_equal(x, y) for x, y in zip(got, want))


def test_the_time_split_needs_timestamps(seed_data, tmp_path):
    with pytest.raises(DataError, match="needs a timestamp column"):
        split_rows(interactions().drop(columns="timestamp"), "time")
    proc = recsys("train", "--data", str(seed_data), "--out", str(tmp_path), "--split", "time", check=False)
    assert proc.returncode == 2
    error = proc.stderr.splitlines()[-1]  # after the data set's summary line
    assert error.startswith(f"recsys: error: {seed_data}: the time split needs a timestamp column")
    assert proc.stderr.count("recsys: error") == 1
