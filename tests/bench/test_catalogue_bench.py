"""The live catalogue benchmark end to end on the article's model (its own catalogue store)."""

from __future__ import annotations

import pytest

from bench import catalogue_bench


@pytest.mark.slow  # a benchmark: a live server, the CLI, two load phases
def test_changes_are_served_and_the_section_written(seed_artifacts, tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    out.write_text("<!-- catalogue-bench:start -->\n<!-- catalogue-bench:end -->\n")
    catalogue_bench.main(["--artifacts", str(seed_artifacts), "--changes", "5", "--bulk", "50",
                          "--duration", "1", "--rounds", "2", "--connections", "2", "--out", str(out)])
    text = out.read_text()
    assert "on 200 items" in text and "| 50 new items by `recsys catalogue apply` / until served |" in text
    assert "2 alternating windows of 1 s each" in text
    assert text.count("met") >= 3
