"""The user tower's history: windows that never hold the row's own label, a trained and
exported model whose numpy and SavedModel towers agree, and the stored histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.user_history import history_column
from recsys.artifacts.version import Version
from recsys.model.training.history import PAD, Histories, from_interactions
from tests.conftest import recsys


def _clicks(rng, n_users=30, n_items=40, n=600, timed=True) -> pd.DataFrame:
    frame = pd.DataFrame({"user_id": rng.integers(0, n_users, n).astype(str),
                          "item_id": rng.integers(0, n_items, n).astype(str),
                          "click": rng.integers(0, 2, n), "conversion": 0})
    if timed:
        frame["timestamp"] = rng.integers(0, 50, n).astype(float)  # many ties on purpose
    return frame


def _windows(h: Histories, inter: pd.DataFrame, users: pd.Index, codes: pd.Series) -> np.ndarray:
    user_pos = users.get_indexer(inter["user_id"])
    times = inter["timestamp"].to_numpy(float) if h.timed else None
    own = None if h.timed else codes.reindex(inter["item_id"]).to_numpy(np.int32)
    return h.window(user_pos, h.ends(user_pos, times), own)


def leaks(h: Histories, windows: np.ndarray, inter: pd.DataFrame, codes: pd.Series) -> int:
    """Rows whose history holds what it must not: with time, a click at or after the row's time
    (the row itself among them); without time, the row's own item."""
    bad = 0
    by_user = {u: g for u, g in inter[inter["click"] == 1].groupby("user_id")}
    for r, (user, item, t) in enumerate(zip(inter["user_id"], inter["item_id"],
                                            inter.get("timestamp", pd.Series([np.nan] * len(inter))))):
        window = windows[r][windows[r] != PAD]
        if not h.timed:
            bad += int(codes[item] in window)
            continue
        clicks = by_user.get(user)
        allowed = set() if clicks is None else set(codes.reindex(clicks.loc[clicks["timestamp"] < t, "item_id"]))
        bad += int(not set(window.tolist()) <= allowed)
    return bad


@pytest.mark.parametrize("timed", [True, False])
def test_windows_never_hold_the_rows_label(timed):
    rng = np.random.default_rng(0)
    inter = _clicks(rng, timed=timed)
    users = pd.Index(sorted(inter["user_id"].unique()))
    codes = pd.Series(np.arange(1, 41, dtype=np.int32), index=[str(i) for i in range(40)])
    h = from_interactions(inter, users, codes, length=5, seed=0)
    windows = _windows(h, inter, users, codes)
    assert windows.shape == (len(inter), 5)
    assert leaks(h, windows, inter, codes) == 0
    # Not vacuous: most rows have a history, and a full one where the user has enough clicks.
    assert (windows != PAD).any(axis=1).mean() > 0.8
    # Oldest first: padding only at the front.
    assert all((w[w != PAD] == w[np.argmax(w != PAD):]).all() for w in windows if (w != PAD).any())


def test_the_leak_check_catches_a_planted_leak():
    """A window that ends after the row's time (<= instead of <) holds the row's own click."""
    rng = np.random.default_rng(1)
    inter = _clicks(rng)
    users = pd.Index(sorted(inter["user_id"].unique()))
    codes = pd.Series(np.arange(1, 41, dtype=np.int32), index=[str(i) for i in range(40)])

    class Leaky(Histories):
        def ends(self, user_pos, times):
            return super().ends(user_pos, np.asarray(times) + 0.5)  # includes same-time clicks

    clicks = inter[inter["click"] == 1]
    leaky = Leaky(users.get_indexer(clicks["user_id"]), codes.reindex(clicks["item_id"]).to_numpy(np.int32),
                  clicks["timestamp"].to_numpy(float), len(users), 5, 0)
    assert leaks(leaky, _windows(leaky, inter, users, codes), inter, codes) > 0


def test_time_windows_are_the_last_clicks_strictly_before():
    inter = pd.DataFrame({"user_id": ["a"] * 4, "item_id": ["1", "2", "3", "4"], "click": [1, 1, 1, 1],
                          "conversion": 0, "timestamp": [30.0, 10.0, 20.0, 20.0]})
    users = pd.Index(["a"])
    codes = pd.Series([1, 2, 3, 4], index=["1", "2", "3", "4"], dtype=np.int32)
    h = from_interactions(inter, users, codes, length=2, seed=0)
    w = h.window(np.zeros(3, int), h.ends(np.zeros(3, int), np.array([20.0, 25.0, 5.0])), None)
    assert w[0].tolist() == [PAD, 2]       # before 20: only item 2 (t=10); the two at t=20 are not before
    assert w[1].tolist() == [3, 4]         # before 25: 2, 3, 4 -> the last two, oldest first
    assert w[2].tolist() == [PAD, PAD]


def test_history_column_right_aligns_the_newest():
    col = history_column([["a", "b", "c"], [], ["x"]], 2)
    assert col.tolist() == [["b", "c"], ["", ""], ["", "x"]]


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    out = tmp_path_factory.mktemp("hist") / "data"
    recsys("simulate", "--profile", "realistic", "--users", "400", "--items", "150", "--interactions", "12000",
           "--out", str(out))
    return out


@pytest.mark.parametrize("table", ["own", "shared"])
def test_trained_history_tower_numpy_matches_savedmodel(realistic, tmp_path, table):
    recsys("train", "--data", str(realistic), "--out", str(tmp_path), "--epochs", "2", "--history-length", "8",
           "--history-table", table)
    version = Version.open(tmp_path)
    assert version.history_length == 8
    stored = version.user_history()
    users = version.table("user")
    ids = users.ids[:40]
    cols = users.rows(np.arange(40))
    histories = [stored.get(u) for u in ids]
    histories[1], histories[2] = [], ["not-an-item", histories[0][-1] if histories[0] else "1"]
    cols["history"] = history_column(histories, 8)
    a, b = version.numpy_tower("user")(cols), version.saved_tower("user")(cols)
    assert np.abs(a - b).max() <= 1e-5
    # The history moves the embedding: the same user with and without it differ.
    assert np.abs(a[0] - version.numpy_tower("user")({**cols, "history": history_column([[]] * 40, 8)})[0]).max() > 1e-4


def test_stored_histories_are_each_users_latest_clicks(realistic, tmp_path):
    recsys("train", "--data", str(realistic), "--out", str(tmp_path), "--epochs", "1", "--history-length", "5")
    version = Version.open(tmp_path)
    stored = pd.read_parquet(version.path / "user_history.parquet")
    inter = pd.read_csv(realistic / "interactions.csv", dtype={"user_id": str, "item_id": str})
    clicks = inter[inter["click"] == 1].sort_values(["user_id", "timestamp"], kind="stable")
    expected = clicks.groupby("user_id").tail(5)[["user_id", "item_id", "timestamp"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True),
                                  expected.astype({"timestamp": float}), check_dtype=False)
    # Oldest first within each user, and as the service reads it.
    assert stored.groupby("user_id", sort=False)["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()
    some = expected["user_id"].iloc[0]
    assert version.user_history().get(some) == expected.loc[expected["user_id"] == some, "item_id"].tolist()


def test_evaluation_histories_hold_no_held_out_row(realistic, tmp_path):
    """The evaluation scores users with the training split's clicks, not the version's (all data)."""
    from recsys.model.data.dataset import load_dataset, split
    from recsys.model.evaluation import evaluate as ev

    recsys("train", "--data", str(realistic), "--out", str(tmp_path), "--epochs", "1", "--history-length", "5")
    version = Version.open(tmp_path)
    seen = {}

    class Spy(ev.ModelScorer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["histories"] = self.histories

    original = ev.ModelScorer
    ev.ModelScorer = Spy
    try:
        ev.evaluate(tmp_path, realistic, ks=(10,), baselines=False)
    finally:
        ev.ModelScorer = original
    ds = load_dataset(realistic)
    cfg = version.manifest["config"]
    _, test_rows = split(len(ds.interactions), cfg["test_size"], cfg["seed"])
    held_out = ds.interactions.iloc[test_rows]
    held_out = held_out[held_out["click"] == 1]
    stored = seen["histories"]
    assert len(stored) > 0
    # No held-out click (user, item, time) appears in any history the evaluation used.
    pairs = {(u, i) for u in stored._by_user for i in stored.get(u)}
    train = ds.interactions.drop(index=ds.interactions.index[test_rows])
    train_pairs = set(train.loc[train["click"] == 1, ["user_id", "item_id"]].itertuples(index=False, name=None))
    assert pairs <= train_pairs
    only_held_out = set(zip(held_out["user_id"], held_out["item_id"])) - train_pairs
    assert only_held_out and not (pairs & only_held_out)
