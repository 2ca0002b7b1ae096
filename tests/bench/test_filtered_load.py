"""The filtered load benchmark end to end on the article's model: wrk against a real server
with a filter in every request, and the recall of the filtered candidate search, which on
the seed model's exact (flat) index must be 1: the service's search and the exact scan agree."""

from __future__ import annotations

import shutil

import pytest

from bench import filtered_load


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
@pytest.mark.slow  # a benchmark: wrk against a live server
def test_end_to_end_on_the_seed_model(seed_artifacts, tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    assert filtered_load.main(["--artifacts", str(seed_artifacts), "--attribute", "item_price",
                               "--shares", "0.5,0.05", "--connections", "2", "--duration", "1", "--warmup", "1",
                               "--queries", "10", "--depth", "10", "--out", str(out)]) == 0
    table = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| ")]
    rows = {cells[0].strip(): cells for cells in table[1:]}
    one_off = "about 5 %, a new bound every request"
    assert list(rows) == ["everything (unfiltered)", "50 %", "5 %", one_off]
    assert rows[one_off][1].strip() == "varies" and rows[one_off][8].strip() == ""
    assert int(rows["everything (unfiltered)"][1].replace(",", "")) == 200  # the seed catalogue
    assert 0 < int(rows["5 %"][1]) < int(rows["50 %"][1]) < 200
    for name, cells in rows.items():
        assert float(cells[2].replace(",", "")) > 0 and int(cells[7]) == 0  # requests served, no errors
        if name not in ("everything (unfiltered)", one_off):
            assert float(cells[8]) == 1.0


def test_thresholds_split_the_catalogue_at_the_shares(seed_artifacts):
    limits, items = filtered_load.thresholds(seed_artifacts, "item_price", [0.5, 0.05])
    assert items == 200 and limits[0.05] <= limits[0.5]
