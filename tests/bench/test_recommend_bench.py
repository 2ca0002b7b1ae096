"""The batch-recommendation benchmark end to end on the article's model."""

from __future__ import annotations

import pytest

from bench import recommend_bench


@pytest.mark.slow  # a benchmark: two runs of recsys recommend
def test_every_user_is_answered_and_the_section_written(seed_artifacts, tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    assert recommend_bench.main(["--artifacts", str(seed_artifacts), "--k", "5", "--out", str(out)]) == 0
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 100 |"))  # the seed data's 100 users
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "5" and float(cells[2]) > 0 and float(cells[4]) > 0
    assert float(cells[3].replace(",", "")) == pytest.approx(100 / float(cells[2]), rel=0.1)  # rounding of the wall
