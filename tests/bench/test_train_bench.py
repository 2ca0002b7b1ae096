"""The training benchmark runs end to end on a tiny data set and writes only its own section."""

import pytest

from bench.sections import write_section
from bench.train_bench import main


@pytest.mark.slow  # a benchmark: trains the project's loop and a plain keras fit
def test_train_bench_writes_its_section(tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    write_section(out, "other", "kept as it is")
    assert main(["--users", "300", "--items", "200", "--interactions", "6000", "--batch-size", "256",
                 "--baseline-steps", "8", "--out", str(out)]) == 0
    text = out.read_text()
    assert "kept as it is" in text and text.count("<!-- train-bench:start -->") == 1
    rows = [line for line in text.splitlines() if line.startswith(("| plain", "| project"))]
    assert len(rows) == 2
    for row in rows:
        examples_per_s = float(row.split("|")[2].replace(",", ""))
        assert examples_per_s > 0
    assert main(["--users", "300", "--items", "200", "--interactions", "6000", "--batch-size", "256",
                 "--baseline-steps", "8", "--out", str(out)]) == 0
    assert out.read_text().count("<!-- train-bench:start -->") == 1  # replaced, not appended


def test_write_section_replaces_only_its_own(tmp_path):
    out = tmp_path / "p.md"
    write_section(out, "a", "first-body")
    write_section(out, "b", "second-body")
    write_section(out, "a", "third-body")
    text = out.read_text()
    assert "third-body" in text and "second-body" in text and "first-body" not in text
    assert text.index("<!-- a:start -->") < text.index("<!-- b:start -->")
