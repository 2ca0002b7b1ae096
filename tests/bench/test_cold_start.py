"""The cold-start benchmark on a tiny data set: the held-out items never reach training, come
back through the live catalogue, and the bench writes only its own section."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.cold_start import hold_out, main
from bench.sections import write_section
from recsys.artifacts.version import Version
from recsys.model.data.dataset import load_dataset
from recsys.model.data.simulate import simulate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("cold") / "data"
    simulate("realistic", out, users=300, items=200, interactions=6000, progress=False)
    return out


def test_held_out_items_and_their_interactions_leave_the_training_data(tiny, tmp_path):
    held = hold_out(tiny, tmp_path / "train", 0.1, seed=3)
    full, train = load_dataset(tiny), load_dataset(tmp_path / "train")
    assert len(held) == 20 and set(held) <= set(full.items["item_id"])
    assert not set(held) & set(train.items["item_id"]) and not set(held) & set(train.interactions["item_id"])
    assert len(train.items) == 180 and train.users.equals(full.users)
    kept = full.interactions[~full.interactions["item_id"].isin(held)].reset_index(drop=True)
    pd.testing.assert_frame_equal(train.interactions, kept, check_dtype=False)
    assert len(kept) < len(full.interactions)


def test_the_bench_runs_end_to_end_and_writes_its_section(tiny, tmp_path, capsys):
    quality = tmp_path / "QUALITY.md"
    write_section(quality, "other", "kept as it is")
    work = tmp_path / "work"
    assert main(["--data", str(tiny), "--out", str(work), "--holdout", "0.25", "--rates", "0.1",
                 "--users", "50", "--epochs", "1", "--quality", str(quality)]) == 0
    result = json.loads(capsys.readouterr().out)
    run = result["rates"]["0.1"]
    assert run["items_per_set"] == 50 and run["users"] == 50
    for side in ("new", "seen"):
        assert 0 < run[side]["true_ndcg@50"] <= 1 and 0 <= run[side]["recall@10"] <= 1
    assert run["ratio"] == pytest.approx(run["new"]["true_ndcg@50"] / run["seen"]["true_ndcg@50"])
    whole = run["whole"]  # the unrestricted lists over trained and new items together
    assert 0 < whole["true_ndcg@50"] <= 1 and 0 < whole["new_share_truth"] < 1
    assert 0 <= whole["new_share_served"] <= 1

    # The trained version never saw a held-out item: not in its catalogue, not in its id vocabulary.
    held = set(pd.read_csv(work / "held-out.csv", dtype=str)["item_id"])
    version = Version.open(work / "artifacts-id-dropout-0.1")
    assert len(held) == 50
    assert not held & set(version.table("item").ids)
    assert not held & set(version.numpy_tower("item").config["vocabularies"]["item_id"])

    text = quality.read_text()
    assert "kept as it is" in text and text.count("<!-- cold-start:start -->") == 1
    assert "| 0.1" in text
