"""The funnel benchmark on tiny data: both funnel shapes simulated, both CVR losses trained and
scored, the decision follows the figures, and the bench writes only its own section."""

from __future__ import annotations

import json

import pytest

from bench.funnel import LOSSES, choice, main
from bench.sections import write_section

pytestmark = pytest.mark.slow  # four trainings


def test_the_bench_trains_both_losses_on_both_funnels_and_writes_its_section(tmp_path, capsys):
    quality = tmp_path / "QUALITY.md"
    write_section(quality, "other", "kept as it is")
    assert main(["--out", str(tmp_path / "work"), "--users", "300", "--items", "100", "--interactions", "8000",
                 "--seeds", "1", "--epochs", "1", "--quality", str(quality)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"realistic", "sparse"}
    assert result["sparse"]["data"]["cvr"] < 0.05 < result["realistic"]["data"]["cvr"]
    for funnel in result.values():
        for loss in LOSSES:
            (scores,) = funnel["runs"][loss]
            assert 0 < scores["true_ndcg@50_by_ctcvr"] <= 1 and 0 <= scores["ctcvr_auc"] <= 1
    best, score = choice(result)
    assert score[best] == max(score.values())
    text = quality.read_text()
    assert "kept as it is" in text and f"so **{best}**" in text and "| sparse |" in text


def test_the_choice_averages_each_funnels_mean_over_seeds():
    run = lambda *v: [{"true_ndcg@50_by_ctcvr": x} for x in v]  # noqa: E731
    result = {"a": {"runs": {"masked": run(0.5, 0.7), "esmm": run(0.5)}},
              "b": {"runs": {"masked": run(0.2), "esmm": run(0.4, 0.4)}}}
    best, score = choice(result)
    assert best == "esmm" and score == pytest.approx({"masked": 0.4, "esmm": 0.45})
