"""Dataset contract validation: each broken input gives one clear DataError."""

import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from recsys.artifacts.errors import DataError
from recsys.model.data.dataset import load_dataset, split


@pytest.fixture
def data(seed_data, tmp_path):
    out = tmp_path / "d"
    shutil.copytree(seed_data, out)
    return out


def test_loads_seed(data):
    ds = load_dataset(data)
    assert len(ds.users) == 100 and len(ds.items) == 200 and len(ds.interactions) == 1000
    assert ds.interactions["user_id"].map(type).eq(str).all()  # ids are strings
    assert ds.users["city_code"].map(type).eq(str).all()  # categories are strings
    assert ds.items["item_price"].dtype == np.float32


def test_parquet_is_read_too(data):
    for name in ("users", "items", "interactions"):
        pd.read_csv(data / f"{name}.csv").to_parquet(data / f"{name}.parquet", index=False)
        (data / f"{name}.csv").unlink()
    a, b = load_dataset(data), load_dataset(data)
    assert len(a.interactions) == 1000 and a.fingerprint == b.fingerprint


def _edit(path, fn):
    frame = pd.read_csv(path)
    fn(frame).to_csv(path, index=False)


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "items.csv").unlink(), "missing items.csv or items.parquet"),
    (lambda d: (d / "features.toml").unlink(), "features.toml not found"),
    (lambda d: _edit(d / "users.csv", lambda f: f.drop(columns=["user_age"])), "missing column(s) ['user_age']"),
    (lambda d: (d / "features.toml").write_text(
        (d / "features.toml").read_text().replace('kind = "numeric"', 'kind = "float"', 1)), "unknown kind 'float'"),
    (lambda d: _edit(d / "interactions.csv", lambda f: f.assign(conversion=f["conversion"].where(f.index != 0, 1),
                                                                 click=f["click"].where(f.index != 0, 0))),
     "1 row(s) have a conversion without a click"),
    (lambda d: _edit(d / "interactions.csv", lambda f: f.assign(click=f["click"].where(f.index != 3, 2))),
     "label 'click' must be 0 or 1"),
    (lambda d: _edit(d / "users.csv", lambda f: pd.concat([f, f.iloc[:2]])), "2 duplicate user_id(s)"),
    (lambda d: _edit(d / "interactions.csv", lambda f: f.assign(item_id=f["item_id"].where(f.index >= 3, 999))),
     "3 interaction(s) reference unknown item_ids"),
    (lambda d: _edit(d / "items.csv", lambda f: f.assign(item_price=f["item_price"].astype(object).where(f.index != 0, "cheap"))),
     "numeric feature 'item_price' has 1 missing or non-numeric value(s)"),
    (lambda d: (d / "features.toml").write_text("[[feature]\nname="), "not valid TOML"),
])
def test_contract_errors(data, breakage, message):
    breakage(data)
    with pytest.raises(DataError) as err:
        load_dataset(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_split_matches_sklearn():
    n = 1000
    train, test = split(n, 0.2, 42)
    sk_train, sk_test = train_test_split(np.arange(n), test_size=0.2, random_state=42)
    assert train.tolist() == sk_train.tolist() and test.tolist() == sk_test.tolist()


def test_an_events_file_adds_positive_interactions_and_counts_what_it_drops(data):
    base = load_dataset(data)
    user, item = base.interactions["user_id"].iloc[0], base.interactions["item_id"].iloc[0]
    pd.DataFrame({"user_id": [user, user, user, "nobody", user],
                  "item_id": [item, item, "2", item, "no-item"],
                  "event": ["click", "conversion", "conversion", "click", "click"],
                  "timestamp": [10, 11, 12, 13, 14]}).to_csv(data / "events.csv", index=False)
    ds = load_dataset(data)
    added = ds.interactions.iloc[len(base.interactions):]
    # The click and its conversion are one interaction; the lone conversion implies its click.
    assert sorted(added[["user_id", "item_id", "click", "conversion"]].values.tolist()) == \
        sorted([[user, item, 1, 1], [user, "2", 1, 1]])
    assert (ds.events.events, ds.events.interactions, ds.events.unknown_users, ds.events.unknown_items) == (5, 2, 1, 1)
    assert ds.fingerprint != base.fingerprint


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.assign(event="view"), "column 'event' must be one of"),
    (lambda f: f.drop(columns="timestamp"), "missing column"),
    (lambda f: f.assign(timestamp="soon"), "column 'timestamp' has 1 missing or non-numeric"),
])
def test_a_broken_events_file_is_one_clear_error(data, edit, message):
    frame = pd.DataFrame({"user_id": ["1"], "item_id": ["1"], "event": ["click"], "timestamp": [1.0]})
    edit(frame).to_csv(data / "events.csv", index=False)
    with pytest.raises(DataError, match=message):
        load_dataset(data)
