"""`recsys catalogue apply`: a change file validated whole, applied all or nothing, one-line errors;
and a newly trained version serving the store's state."""

from __future__ import annotations

import shutil

import httpx
import pandas as pd
import pytest

from recsys.artifacts.catalogue import Catalogue
from tests.conftest import recsys
from tests.service.servers import TOKEN, start_serve

HEADER = "item_id,op,item_category,item_brand,item_price\n"


def apply(artifacts, db, path):
    return recsys("catalogue", "apply", "--artifacts", str(artifacts), "--file", str(path), "--catalogue-db", str(db),
                  check=False)


def test_a_change_file_is_applied_whole(seed_artifacts, tmp_path):
    db = tmp_path / "c.db"
    csv = tmp_path / "changes.csv"
    csv.write_text(HEADER + "new-1,upsert,books,brandA,12.5\n5,unavailable,,,\n7,delete,,,\nnew-1,unavailable,,,\n")
    proc = apply(seed_artifacts, db, csv)
    assert proc.returncode == 0, proc.stderr
    assert '"applied": 4' in proc.stdout
    store = Catalogue(db)
    assert store.item("new-1") == ("unavailable", {"item_category": "books", "item_brand": "brandA",
                                                   "item_price": 12.5})
    assert store.item("5") == ("unavailable", None)
    assert store.item("7") == ("deleted", None)
    parquet = tmp_path / "more.parquet"
    pd.DataFrame({"item_id": [5, 7], "op": ["available", "upsert"], "item_category": [None, "toys"],
                  "item_brand": [None, "brandC"], "item_price": [None, 3.0]}).to_parquet(parquet)
    proc = apply(seed_artifacts, db, parquet)
    assert proc.returncode == 0, proc.stderr
    assert store.item("5")[0] == "available" and store.item("7")[0] == "available"


@pytest.mark.parametrize("body, message", [
    (HEADER + "new-1,upsert,books,brandA,12.5\nnew-2,upsert,books,,3\n",
     "row 3: item_brand: missing; an upsert needs every item feature"),
    (HEADER + "new-1,upsert,books,brandA,12.5\n5,sell,,,\n", "row 3: op: must be one of"),
    (HEADER + "new-1,upsert,books,brandA,cheap\n", "row 2: item_price: must be a finite number"),
    (HEADER + "5,unavailable,,,\nnope,delete,,,\n", "row 3: item_id: 'nope' is not in the catalogue"),
    (HEADER + "7,delete,,,\n7,available,,,\n", "row 3: item_id: '7' is not in the catalogue"),
    ("item_id,op,colour\n5,unavailable,\n", "column 'colour' is not an item feature"),
    ("item_id,item_price\n5,3\n", "no column 'op'"),
])
def test_a_bad_file_applies_nothing_and_says_where_in_one_line(seed_artifacts, tmp_path, body, message):
    db = tmp_path / "c.db"
    csv = tmp_path / "changes.csv"
    csv.write_text(body)
    proc = apply(seed_artifacts, db, csv)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recsys: error: ") and message in lines[0], proc.stderr
    assert Catalogue(db).last_seq() == 0


def test_a_missing_or_unknown_kind_of_file_is_one_line(seed_artifacts, tmp_path):
    for path in (tmp_path / "none.csv", tmp_path / "changes.json"):
        proc = apply(seed_artifacts, tmp_path / "c.db", path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "recsys: error:" in proc.stderr


@pytest.mark.slow  # trains and indexes a second version
def test_a_newly_trained_version_keeps_an_earlier_unavailability(seed_artifacts, seed_data, tmp_path):
    root = tmp_path / "artifacts"
    shutil.copytree(seed_artifacts, root)
    csv = tmp_path / "changes.csv"
    csv.write_text(HEADER + "5,unavailable,,,\n6,delete,,,\nnew-1,upsert,books,brandA,12.5\n")
    assert apply(root, root / "catalogue.db", csv).returncode == 0
    before = (root / "current").read_text().strip()
    recsys("train", "--data", str(seed_data), "--out", str(root), "--epochs", "1")
    recsys("build-index", "--artifacts", str(root))
    assert (root / "current").read_text().strip() != before
    server = start_serve(root, "--max-k", "300", RECSYS_ADMIN_TOKEN=TOKEN)
    server.wait_ready()
    try:
        with httpx.Client(base_url=server.base) as client:
            assert client.get("/readyz").json()["model_version"] != before
            items = [i["item_id"] for i in client.post("/recommend", json={"user_id": 1, "k": 300}).json()["items"]]
            assert "5" not in items and "6" not in items and "new-1" in items and len(items) == 199
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert client.get("/admin/items/5", headers=auth).json()["status"] == "unavailable"
    finally:
        server.stop()
        server.kill()
