"""`recsys recommend`: the batch job answers exactly what a real server's POST /recommend does."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.artifacts import version as layout
from recsys.service.batch import COLUMNS
from tests.conftest import recsys


def _served(server, user_id: str, k: int, objective: str, exclude_seen: bool) -> list[dict]:
    r = server.post("/recommend", json={"user_id": user_id, "k": k, "objective": objective,
                                        "exclude_seen": exclude_seen})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize(("objective", "exclude_seen", "suffix"),
                         [("ctcvr", False, ".parquet"), ("ctr", True, ".csv")])
def test_batch_equals_the_server(server, seed_artifacts, seed_data, tmp_path, objective, exclude_seen, suffix):
    users = pd.read_csv(seed_data / "users.csv", dtype=str)["user_id"].tolist()[:25]
    users_file = tmp_path / "users.csv"
    pd.DataFrame({"user_id": users + ["no-such-user"]}).to_csv(users_file, index=False)
    out = tmp_path / f"recs{suffix}"
    args = ["recommend", "--artifacts", str(seed_artifacts), "--users", str(users_file), "--k", "7",
            "--objective", objective, "--out", str(out)] + (["--exclude-seen"] if exclude_seen else [])
    proc = recsys(*args)
    assert "1 unknown user(s) skipped: 'no-such-user'" in proc.stderr

    table = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert tuple(table.columns) == COLUMNS
    assert table["user_id"].unique().tolist() == users
    for user in users:
        rows = table[table["user_id"] == user]
        served = _served(server, user, 7, objective, exclude_seen)
        assert rows["rank"].tolist() == list(range(1, len(served) + 1))
        assert rows["item_id"].tolist() == [i["item_id"] for i in served]
        for field in ("score", "p_click", "p_conversion", "similarity"):
            assert rows[field].to_numpy() == pytest.approx([i[field] for i in served], rel=1e-6, abs=1e-7)


def test_all_users_covers_the_feature_store(seed_artifacts, tmp_path):
    out = tmp_path / "all.parquet"
    recsys("recommend", "--artifacts", str(seed_artifacts), "--all-users", "--k", "3", "--out", str(out))
    table = pd.read_parquet(out)
    stored = pd.read_parquet(layout.resolve(seed_artifacts, need_index=True) / "users.parquet")["user_id"]
    assert set(table["user_id"]) == set(stored.astype(str))
    assert (table.groupby("user_id").size() == 3).all()


@pytest.mark.parametrize(("args", "message"), [
    (["--users", "missing.csv", "--k", "3", "--out", "x.csv"], "users file not found"),
    (["--all-users", "--k", "3", "--out", "x.json"], "output must end in .parquet or .csv"),
    (["--all-users", "--k", "0", "--out", "x.csv"], "expected a positive integer"),
])
def test_bad_input_is_one_line(seed_artifacts, tmp_path, args, message):
    args = [str(tmp_path / a) if a.endswith((".csv", ".json")) else a for a in args]
    proc = recsys("recommend", "--artifacts", str(seed_artifacts), *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    # argparse's own errors keep its usage lines above the error line
    assert lines[-1].startswith(("recsys: error:", "recsys recommend: error:")) and message in lines[-1], proc.stderr
