"""The benchmarks' plots, drawn from small fixed figures: valid PNGs beside the report, linked
from the benchmark's own section."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import index_bench, load_bench, plots
from bench.sections import write_section

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def matplotlib():
    return pytest.importorskip("matplotlib", reason="the plots need the `report` extra: pip install -e '.[report]'")


def linked_images(text: str, section: str, out: Path) -> list[Path]:
    """The images the section between `section`'s markers links, as paths; each must be a PNG."""
    body = text[text.index(f"<!-- {section}:start -->"):text.index(f"<!-- {section}:end -->")]
    paths = [out.parent / p for p in re.findall(r"!\[[^]]+\]\(([^)]+)\)", body)]
    for path in paths:
        assert path.read_bytes().startswith(PNG), path
        from matplotlib.image import imread

        height, width, _ = imread(path).shape
        assert width > 400 and height > 300, path  # decodes, and is a figure, not an empty canvas
    return paths


def load_row(config, c, rps, p50, p99):
    return {"config": config, "connections": c, "rps": rps, "p50": p50, "p75": p50 + 0.3 * (p99 - p50),
            "p90": p50 + 0.7 * (p99 - p50), "p99": p99, "errors": 0, "rss_mb": 700.0}


LOAD_ROWS = [load_row("baseline", 1, 470, 2.0, 3.3), load_row("baseline", 8, 515, 15.2, 20.7),
             load_row("baseline", 32, 467, 68.5, 86.0), load_row("batched", 1, 1025, 0.96, 1.07),
             load_row("batched", 8, 1344, 6.0, 9.8), load_row("batched", 32, 1418, 22.2, 32.8)]


def test_load_plots_are_drawn_and_linked_from_the_load_section(matplotlib, tmp_path):
    out = tmp_path / "docs" / "PERFORMANCE.md"
    write_section(out, "index-bench", "kept as it is")
    images = plots.load(LOAD_ROWS, ["baseline", "batched"], out, load_bench.SECTION)
    assert [path for _, path in images] == ["performance/load-bench-throughput.png",
                                            "performance/load-bench-latency.png"]
    info = {"load_start": 0.5, "load_end": 0.7, "model": "m", "candidates": 100, "index": "i", "items": 10**6}
    args = SimpleNamespace(argv=[], k=20, duration=10.0, warmup=3.0, section=load_bench.SECTION)
    write_section(out, load_bench.SECTION, load_bench.report(LOAD_ROWS, args, info, load_bench.CONFIGS, images))
    text = out.read_text()
    assert linked_images(text, load_bench.SECTION, out) == [out.parent / "performance" / "load-bench-throughput.png",
                                                             out.parent / "performance" / "load-bench-latency.png"]
    assert "kept as it is" in text and "![latency percentiles at 32 connections]" in text


def test_without_matplotlib_the_section_says_why_there_is_no_plot(monkeypatch, tmp_path):
    monkeypatch.setattr(plots, "pyplot", lambda: None)
    out = tmp_path / "PERFORMANCE.md"
    images = plots.load(LOAD_ROWS, ["baseline", "batched"], out, load_bench.SECTION)
    info = {"load_start": 0.5, "load_end": 0.7, "model": "m", "candidates": 100, "index": "i", "items": 10**6}
    args = SimpleNamespace(argv=[], k=20, duration=10.0, warmup=3.0, section=load_bench.SECTION)
    text = load_bench.report(LOAD_ROWS, args, info, load_bench.CONFIGS, images)
    assert images == [] and "No plots: matplotlib is not installed" in text and "![" not in text
    assert not (tmp_path / "performance").exists()


def index_row(items, fmt, p50, recall):
    return index_bench.Row(items, fmt, "p", 1.0, 10**6, 10**6, p50, p50 * 2, 1000.0, recall)


def test_index_plot_is_drawn_and_linked_from_the_index_section(matplotlib, tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    rows = [index_row(100_000, "flat", 1.8, 1.0), index_row(100_000, "hnsw", 0.17, 0.962),
            index_row(100_000, "ivf", 0.074, 0.975), index_row(1_000_000, "flat", 11.6, 1.0),
            index_row(1_000_000, "hnsw", 0.21, 0.945), index_row(1_000_000, "ivf", 0.19, 0.976)]
    images = plots.index(rows, 100, out, "index-bench-trained", (0.3, 0.97, "targets at 1,000,000 items"))
    assert [path for _, path in images] == ["performance/index-bench-trained-recall.png"]
    args = SimpleNamespace(embeddings="v", k=100, latency_queries=1000, queries=1000, batch=32)
    write_section(out, "index-bench-trained", index_bench.section(rows, index_bench.machine(), "cmd", "data", args,
                                                                  (1.0, 1.0), images))
    text = out.read_text()
    assert linked_images(text, "index-bench-trained", out) == [tmp_path / "performance" / "index-bench-trained-recall.png"]
