"""MovieLens ratings.csv + movies.csv -> the dataset contract, with a leave-last-out test split."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.errors import DataError
from recsys.model.data.dataset import load_dataset
from recsys.model.data.movielens import convert
from tests.conftest import recsys

MOVIES = """movieId,title,genres\r
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\r
2,"American President, The (1995)",Comedy|Drama|Romance\r
3,Blade Runner (1982),Action|Sci-Fi|Thriller\r
4,Some Untitled Film,(no genres listed)\r
5,Film-Noir Classic (1944),Film-Noir\r
6,Cosmos (1980–1981),Documentary\r
7,Heat (1995),Action|Crime|Thriller\r
8,Fargo (1996),Comedy|Crime|Drama|Thriller\r
"""
# user 1: last rating is movie 7 (ts 50); user 2: a tie at ts 40 (movie 5 is the later row);
# user 3: a single rating (kept for training, no test item); user 4: rated everything but one.
RATINGS = """userId,movieId,rating,timestamp
1,1,4.0,10
1,3,2.5,20
1,7,5.0,50
1,2,3.0,30
2,2,4.5,10
2,8,1.0,40
2,5,4.0,40
3,3,4.0,5
4,1,5.0,1
4,2,4.0,2
4,3,3.0,3
4,4,4.0,4
4,5,2.0,5
4,6,1.0,6
4,7,4.0,7
"""


@pytest.fixture
def ml_dir(tmp_path) -> Path:
    d = tmp_path / "ml"
    d.mkdir()
    (d / "movies.csv").write_bytes(MOVIES.encode())  # CRLF, as the real files
    (d / "ratings.csv").write_text(RATINGS)
    return d


def test_converts_into_the_contract(ml_dir, tmp_path):
    out = tmp_path / "out"
    summary = convert(ml_dir, out, negatives=3, seed=1)
    ds = load_dataset(out)
    inter, test = ds.interactions, pd.read_parquet(out / "test.parquet")

    # Leave-last-out: the last rating by time (ties: the later row) per user with >= 2 ratings.
    got = dict(zip(test["user_id"].astype(str), test["item_id"].astype(str)))
    assert got == {"1": "7", "2": "5", "4": "7"}
    assert test.set_index("user_id").loc["1", "conversion"] == 1 and test.set_index("user_id").loc["1", "rating"] == 5.0
    # Test ratings are not in the interactions, in any form (not even as a negative).
    pairs = set(zip(inter["user_id"], inter["item_id"]))
    assert not {("1", "7"), ("2", "5"), ("4", "7")} & pairs

    clicks = inter[inter["click"] == 1]
    assert len(clicks) == 15 - 3 == summary["clicks"]
    ratings = pd.read_csv(ml_dir / "ratings.csv", dtype=str).astype({"rating": float})
    r = ratings.set_index(["userId", "movieId"])["rating"]
    expected = (r.loc[list(zip(clicks["user_id"], clicks["item_id"]))] >= 4).astype(int).to_numpy()
    assert (clicks["conversion"].to_numpy() == expected).all()       # rating >= 4 is a conversion
    assert ("3", "3") in set(zip(clicks["user_id"], clicks["item_id"]))  # a lone rating is kept

    negs = inter[inter["click"] == 0]
    assert (negs["conversion"] == 0).all()
    rated = set(zip(ratings["userId"], ratings["movieId"]))
    assert not set(zip(negs["user_id"], negs["item_id"])) & rated    # never a movie the user rated
    # 3 per training rating, except user 4 who has only movie 8 left to sample.
    per_user = negs.groupby("user_id").size().to_dict()
    assert per_user["1"] == 9 and per_user["2"] == 6 and per_user["3"] == 3 and per_user["4"] == 18
    assert set(negs.loc[negs["user_id"] == "4", "item_id"]) == {"8"}
    assert summary["negatives_short"] == 0
    # Negatives carry their rating's time; the log is in time order.
    assert set(negs.loc[negs["user_id"] == "3", "timestamp"]) == {5}
    assert (np.diff(inter["timestamp"].to_numpy()) >= 0).all()

    items = ds.items.set_index("item_id")
    assert items.loc["1", "genre"] == "Adventure" and items.loc["4", "genre"] == "none"
    assert items.loc["2", "year"] == 1995 and items.loc["6", "year"] == 1980
    assert items.loc["4", "year"] == 1995  # no year: the median
    assert items.loc["1", "n_genres"] == 5 and items.loc["4", "n_genres"] == 0
    assert items.loc["3", "g_sci_fi"] == 1 and items.loc["5", "g_film_noir"] == 1 and items.loc["1", "g_sci_fi"] == 0
    assert ds.spec.names("user") == ["user_id"] and len(ds.users) == 4 and len(ds.items) == 8
    assert json.loads((out / "convert.json").read_text())["test_users"] == 3


def test_deterministic_and_popularity_sampling(ml_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    convert(ml_dir, a, negatives=2, seed=5)
    convert(ml_dir, b, negatives=2, seed=5)
    assert (a / "interactions.csv").read_bytes() == (b / "interactions.csv").read_bytes()
    # Movie 7 is only ever rated as a test item: uniform negatives draw it (for users 2 and 3),
    # popularity negatives (by training rating counts) never do.
    for sampling, drawn in (("uniform", True), ("popularity", False)):
        out = tmp_path / sampling
        convert(ml_dir, out, negatives=50, seed=5, sampling=sampling, fmt="parquet")
        inter = load_dataset(out).interactions
        negs = inter[inter["click"] == 0]
        assert ("7" in set(negs["item_id"])) is drawn
        assert set(negs["item_id"]) <= set(inter.loc[inter["click"] == 1, "item_id"]) or drawn


def test_user_who_rated_everything_gets_no_negatives(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n2,B (2001),Comedy\n")
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,1\n1,2,3,2\n2,1,5,1\n")
    summary = convert(d, tmp_path / "out", negatives=2)
    inter = load_dataset(tmp_path / "out").interactions
    assert summary["negatives_short"] == 2 and len(inter[inter["user_id"] == "1"]) == 1
    assert set(inter.loc[(inter["user_id"] == "2") & (inter["click"] == 0), "item_id"]) == {"2"}


def test_missing_files_are_one_line(tmp_path):
    with pytest.raises(DataError, match="missing ratings.csv"):
        convert(tmp_path, tmp_path / "out")
    (tmp_path / "ratings.csv").write_text(RATINGS)
    with pytest.raises(DataError, match="missing movies.csv"):
        convert(tmp_path, tmp_path / "out")
    proc = recsys("convert", "movielens", "--ratings-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                  check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("recsys: error:") and "Traceback" not in proc.stderr


ML_SMALL = Path("/work/shared/data/ml-latest-small")


@pytest.mark.skipif(not (ML_SMALL / "ratings.csv").is_file(), reason="ml-latest-small not present")
def test_ml_latest_small(tmp_path):
    out = tmp_path / "ml"
    proc = recsys("convert", "movielens", "--ratings-dir", str(ML_SMALL), "--out", str(out))
    summary = json.loads(proc.stdout)
    assert (summary["users"], summary["items"], summary["ratings"]) == (610, 9742, 100836)
    assert summary["test_users"] == 610 and summary["clicks"] == 100836 - 610
    assert summary["interactions"] == 5 * summary["clicks"] and summary["negatives_short"] == 0
    ds = load_dataset(out)
    assert len(ds.interactions) == summary["interactions"] and ds.interactions["click"].mean() == pytest.approx(0.2)
    assert 0.4 < ds.interactions["conversion"].sum() / summary["clicks"] < 0.55
    assert len(pd.read_parquet(out / "test.parquet")) == 610
