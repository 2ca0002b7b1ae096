"""`recsys simulate --profile realistic`: a planted world whose truth is written and recomputable."""

import filecmp
import json

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.errors import ConfigError, DataError
from recsys.model.data.dataset import load_dataset
from recsys.model.data.simulate import simulate
from recsys.model.data.world import World, parse_intents
from tests.conftest import recsys

SIZES = {"users": 3000, "items": 800, "interactions": 60000, "seed": 7}


def spearman(a, b) -> float:
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("realistic") / "d"
    summary = simulate("realistic", out, **SIZES, progress=False)
    assert summary["interactions"] == SIZES["interactions"] and summary["format"] == "csv"
    return out


@pytest.fixture(scope="module")
def loaded(world_dir):
    return load_dataset(world_dir), World.load(world_dir), pd.read_parquet(world_dir / "truth.parquet")


def test_loads_through_the_contract(loaded):
    ds, world, truth = loaded
    assert len(ds.users) == SIZES["users"] and len(ds.items) == SIZES["items"]
    assert len(ds.interactions) == len(truth) == SIZES["interactions"]
    assert ds.spec.names("user") == ["user_id", "age", "region", "device"]
    assert ds.spec.names("item") == ["item_id", "category", "brand", "price"]
    assert {f.name: f.kind for f in ds.spec.features}["price"] == "numeric"
    ts = ds.interactions["timestamp"].to_numpy()
    assert (np.diff(ts) >= 0).all() and ts[-1] > ts[0]  # monotone in generation order
    assert world.n_users == SIZES["users"] and world.n_items == SIZES["items"]


def test_funnel_in_expected_ranges(loaded):
    ds, _, truth = loaded
    click, conv = ds.interactions["click"], ds.interactions["conversion"]
    ctr, cvr = click.mean(), conv.sum() / click.sum()
    assert 0.03 < ctr < 0.20, ctr
    assert 0.10 < cvr < 0.30, cvr
    # conversion = click AND the counterfactual label drawn for every row
    assert (conv == click * truth["conversion_if_clicked"]).all()
    assert 0.10 < truth["conversion_if_clicked"].mean() < 0.35


def test_the_sparse_funnel_changes_only_the_rates(world_dir, tmp_path):
    """`--funnel sparse`: about 4 % CTR and 2 % CVR after a click, the same users, items and
    exposures; its truth (the world's constants) is written with it and reproduces its rows."""
    summary = simulate("realistic", tmp_path / "s", **SIZES, progress=False, funnel="sparse")
    assert 0.03 < summary["ctr"] < 0.06 and 0.01 < summary["cvr"] < 0.03, summary
    sparse, base = load_dataset(tmp_path / "s"), load_dataset(world_dir)
    assert sparse.items.equals(base.items) and sparse.users.equals(base.users)
    assert (sparse.interactions["timestamp"] == base.interactions["timestamp"]).all()
    world, truth = World.load(tmp_path / "s"), pd.read_parquet(tmp_path / "s" / "truth.parquet")
    rows = sparse.interactions
    p = world.p_click(rows["user_id"].to_numpy(), rows["item_id"].to_numpy(), at=rows["timestamp"].to_numpy(),
                      intent=truth["intent"].to_numpy())
    np.testing.assert_allclose(p, truth["p_click"], rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "s" / "world.json").read_text())["funnel"] == "sparse"
    with pytest.raises(ConfigError, match="unknown funnel"):
        simulate("realistic", tmp_path / "bad", users=10, items=10, interactions=10, funnel="dense")


def test_truth_functions_reproduce_the_written_truth(loaded):
    ds, world, truth = loaded
    u, i = ds.interactions["user_id"].to_numpy(), ds.interactions["item_id"].to_numpy()  # strings
    at, intent = ds.interactions["timestamp"].to_numpy(), truth["intent"].to_numpy()
    pc, pv = world.p_click(u, i, at=at, intent=intent), world.p_conversion(u, i, at=at)
    np.testing.assert_allclose(pc, truth["p_click"], atol=1e-6)
    np.testing.assert_allclose(pv, truth["p_conversion"], atol=1e-6)
    np.testing.assert_allclose(world.p_ctcvr(u.astype(int), i.astype(int), at=at, intent=parse_intents(intent)),
                               pc * pv, rtol=1e-5)
    # The user x items matrix and its chunked iterator agree with the pairwise functions.
    users = np.array(["1", "17", "2999"])
    m = world.matrix(users, "ctcvr")
    assert m.shape == (3, SIZES["items"])
    pairs = world.p_ctcvr(np.repeat(users, SIZES["items"]), np.tile(np.arange(1, SIZES["items"] + 1), 3))
    np.testing.assert_allclose(m.ravel(), pairs, rtol=1e-4, atol=1e-7)
    chunks = list(world.iter_matrix(np.arange(1, 11), "ctr", chunk=4))
    assert [len(c) for c, _ in chunks] == [4, 4, 2]
    np.testing.assert_allclose(np.vstack([mm for _, mm in chunks]), world.matrix(np.arange(1, 11), "ctr"), rtol=1e-5, atol=1e-7)
    with pytest.raises(DataError, match="out of range"):
        world.p_click([SIZES["users"] + 1], [1])


def test_truth_is_informative_and_labels_follow_it(loaded):
    ds, _, truth = loaded
    inter = ds.interactions
    # Observed rates rise with the true probabilities (calibration by decile).
    deciles = pd.qcut(truth["p_click"], 10, labels=False)
    observed = inter["click"].groupby(deciles).mean().to_numpy()
    expected = truth["p_click"].groupby(deciles).mean().to_numpy()
    np.testing.assert_allclose(observed, expected, atol=0.03)
    assert observed[-1] > 4 * observed[0]


def test_conversion_is_driven_by_other_factors(loaded):
    ds, world, truth = loaded
    assert spearman(truth["p_click"], truth["p_conversion"]) < 0.5
    rng = np.random.default_rng(0)
    u = rng.integers(1, SIZES["users"] + 1, 20000)
    i = rng.integers(1, SIZES["items"] + 1, 20000)
    assert spearman(world.p_click(u, i), world.p_conversion(u, i)) < 0.5
    # Ranking the would-convert labels by p_click is little better than chance; by the truth it is good.
    would = truth["conversion_if_clicked"].to_numpy()

    def auc(y, s):
        r = pd.Series(s).rank().to_numpy()
        return (r[y == 1].sum() - (y == 1).sum() * ((y == 1).sum() + 1) / 2) / ((y == 1).sum() * (y == 0).sum())

    assert auc(would, truth["p_conversion"].to_numpy()) > 0.75
    assert auc(would, truth["p_click"].to_numpy()) < 0.6
    # Price matters for conversion: dearer items convert less, on average.
    joined = ds.joined()
    cheap = joined["price"] < joined["price"].median()
    assert truth["p_conversion"][cheap].mean() > truth["p_conversion"][~cheap].mean()


def test_popularity_is_heavy_tailed(loaded):
    ds, _, _ = loaded
    counts = ds.interactions["item_id"].value_counts().to_numpy()  # descending
    top = max(1, SIZES["items"] // 100)
    assert counts[:top].sum() / counts.sum() > 0.10     # top 1 % of items > 10 % of exposures
    assert counts[0] > 20 * np.median(counts)


def test_features_carry_taste_for_cold_ids(loaded):
    """Items of one category share taste: their true click rates for a user correlate."""
    ds, world, _ = loaded
    m = world.matrix(np.arange(1, 201), "ctr")
    cat = ds.items.set_index("item_id").loc[[str(i) for i in range(1, SIZES["items"] + 1)], "category"].to_numpy()
    means = pd.DataFrame(m.T).groupby(cat).mean()  # per category, per user
    between = means.var(axis=0).mean()
    total = m.var(axis=1).mean()
    assert between / total > 0.2


def test_same_seed_same_files(world_dir, tmp_path):
    again = tmp_path / "again"
    simulate("realistic", again, **SIZES, progress=False)
    names = sorted(p.name for p in world_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(world_dir, again, names, shallow=False)
    assert not mismatch and not errors
    other = tmp_path / "other"
    simulate("realistic", other, **{**SIZES, "seed": 8}, progress=False)
    assert not filecmp.cmp(world_dir / "interactions.csv", other / "interactions.csv", shallow=False)


def test_renamed_features(tmp_path):
    out = tmp_path / "renamed"
    simulate("realistic", out, users=300, items=100, interactions=3000, seed=1, progress=False,
             rename={"price": "list_price"}, feature_prefix="x_", fmt="parquet")
    ds = load_dataset(out)
    assert ds.spec.names("user") == ["user_id", "x_age", "x_region", "x_device"]
    assert ds.spec.names("item") == ["item_id", "x_category", "x_brand", "list_price"]
    assert (out / "interactions.parquet").is_file() and not (out / "interactions.csv").exists()
    assert json.loads((out / "world.json").read_text())["features"]["price"] == "list_price"
    # The same world as without renaming: only the names differ.
    plain = tmp_path / "plain"
    simulate("realistic", plain, users=300, items=100, interactions=3000, seed=1, progress=False)
    base = load_dataset(plain)
    assert base.items["price"].tolist() == ds.items["list_price"].tolist()
    assert base.interactions.drop(columns="timestamp").equals(ds.interactions.drop(columns="timestamp"))
    with pytest.raises(ConfigError):
        simulate("realistic", tmp_path / "bad", users=10, items=10, interactions=10, rename={"user_id": "uid"})
    with pytest.raises(ConfigError):
        simulate("realistic", tmp_path / "bad", users=10, items=10, interactions=10, rename={"nope": "x"})


def test_cli_realistic_and_stale_side_files(tmp_path):
    out = tmp_path / "cli"
    proc = recsys("simulate", "--profile", "realistic", "--users", "200", "--items", "50", "--interactions", "2000",
                  "--seed", "3", "--feature-prefix", "f_", "--out", str(out))
    summary = json.loads(proc.stdout)
    assert summary["interactions"] == 2000 and 0 < summary["ctr"] < 1
    assert "simulate:" in proc.stderr  # progress on stderr
    ds = load_dataset(out)
    assert "f_age" in ds.users.columns and (out / "truth.parquet").is_file() and (out / "world.npz").is_file()
    # Writing the seed profile over it leaves no truth behind to mislead evaluation.
    recsys("simulate", "--profile", "seed", "--out", str(out))
    assert not (out / "truth.parquet").exists() and not (out / "world.npz").exists()
    assert load_dataset(out).spec.names("user")[1] == "user_age"
