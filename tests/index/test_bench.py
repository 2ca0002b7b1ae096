"""The index benchmark runs end to end at a tiny size and owns only its section of the report."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bench.sections import write_section

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:   # bench/ is a top-level folder, not part of the installed package
    sys.path.insert(0, str(ROOT))

from bench import index_bench, vectors  # noqa: E402

TINY = ["--sizes", "3000", "--queries", "40", "--latency-queries", "20", "--batch-seconds", "0"]


def rows_of(text: str) -> list[list[str]]:
    section = text[text.index(index_bench.START):text.index(index_bench.END)]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_runs_end_to_end_and_writes_a_table(tmp_path, capsys):
    out = tmp_path / "PERFORMANCE.md"
    assert index_bench.main([*TINY, "--out", str(out)]) == 0
    text = out.read_text()
    header, rule, *rows = rows_of(text)
    assert tuple(header) == index_bench.COLUMNS
    assert {"build s", "index MB", "RSS +MB", "p50 ms", "p99 ms", "batch q/s", "recall@100",
            "p50 ×flat", "q/s ×flat", "build ×flat"} <= set(header)
    assert [r[1] for r in rows] == list(index_bench.FORMATS) and all(r[0] == "3,000" for r in rows)
    by_format = {r[1]: dict(zip(header, r)) for r in rows}
    assert by_format["flat"]["recall@100"] == "1.0000" and by_format["flat"]["p50 ×flat"] == "1×"
    assert float(by_format["ivf"]["recall@100"]) >= 0.9
    assert "python -m bench.index_bench --sizes 3000" in text and "faiss" in text and "cores" in text
    assert "[index-bench]" in capsys.readouterr().err   # progress on stderr
    try:  # the plot beside the file, linked from the section, when the `report` extra is installed
        import matplotlib  # noqa: F401
    except ImportError:
        assert "No plots: matplotlib is not installed" in text
    else:
        assert "](performance/index-bench-recall.png)" in text
        assert (tmp_path / "performance" / "index-bench-recall.png").read_bytes().startswith(b"\x89PNG")


def test_rerun_replaces_only_its_own_section(tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    out.write_text("# Performance\n\n## Training throughput\n\nkeep me\n")
    args = [*TINY, "--formats", "flat,ivf", "--out", str(out)]
    index_bench.main(args)
    out.write_text(out.read_text() + "\n## Load test\n\nkeep me too\n")
    index_bench.main([*args[:-2], "--seed", "5", "--out", str(out)])
    text = out.read_text()
    assert text.count(index_bench.START) == 1 == text.count(index_bench.END)
    assert text.startswith("# Performance\n\n## Training throughput\n\nkeep me\n")
    assert text.rstrip().endswith("## Load test\n\nkeep me too") and "--seed 5" in text
    assert [r[1] for r in rows_of(text)[2:]] == ["flat", "ivf"]


def test_write_section_refuses_a_broken_file(tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    out.write_text(f"x\n{index_bench.START}\nhalf a section\n")
    with pytest.raises(ValueError, match="without"):
        write_section(out, index_bench.SECTION, "new")


def test_runs_on_a_models_embeddings(tmp_path):
    items, _ = vectors.clustered(2500, 1, seed=3)
    version = tmp_path / "20260101T000000" / "index"
    version.mkdir(parents=True)
    np.save(version / "embeddings.npy", items)
    out = tmp_path / "p.md"
    base = ["--queries", "30", "--latency-queries", "10", "--batch-seconds", "0", "--formats", "flat,ivf",
            "--out", str(out)]
    index_bench.main(["--sizes", "2000", "--embeddings", str(version.parent), *base])
    text = out.read_text()
    assert "item embeddings from" in text and [r[0] for r in rows_of(text)[2:]] == ["2,000", "2,000"]
    with pytest.raises(SystemExit):
        index_bench.main(["--sizes", "5000", "--embeddings", str(version / "embeddings.npy"), *base])
    index_bench.main(["--sizes", "5000", "--upsample", "--embeddings", str(version / "embeddings.npy"), *base])
    assert "upsampled" in out.read_text()


def test_clustered_vectors_are_unit_and_clustered():
    items, queries = vectors.clustered(5000, 100, seed=1)
    assert items.dtype == np.float32 and items.shape == (5000, 32) and queries.shape == (100, 32)
    assert np.allclose(np.linalg.norm(items, axis=1), 1, atol=1e-5)
    # Clustered: a query's best item is far closer than a random item.
    sims = queries @ items.T
    assert sims.max(axis=1).mean() > 0.8 > 0.2 > abs(sims.mean())
    more = vectors.resample(items, 6000, seed=1)
    assert more.shape == (6000, 32) and np.allclose(np.linalg.norm(more, axis=1), 1, atol=1e-5)


@pytest.mark.slow  # a benchmark on the trained model's embeddings
def test_a_trained_model_is_queried_with_its_users_embeddings_into_its_own_section(seed_artifacts, tmp_path):
    from recsys.artifacts import version as layout
    from recsys.service.recommender import Query, Recommender
    from recsys.service.settings import Settings

    version = layout.resolve(seed_artifacts, need_index=True)
    queries = vectors.user_queries(version, 10, seed=1)
    rec = Recommender(layout.Version.at(version, need_index=True), Settings())
    users = rec.user_vectors([Query(str(u), 1) for u in rec.users.ids])[0]
    nearest = np.abs(queries[:, None, :] - users[None, :, :]).max(axis=2).min(axis=1)
    assert queries.shape == (10, rec.searcher.dim) and nearest.max() <= 1e-6  # each one is a stored user's
    assert vectors.user_queries(version / "index", 10) is None  # not a model version: no users

    out = tmp_path / "PERFORMANCE.md"
    index_bench.main([*TINY, "--out", str(out)])
    args = ["--sizes", "150", "--formats", "flat,ivf", "--queries", "40", "--latency-queries", "20",
            "--batch-seconds", "0", "--embeddings", str(version), "--section", "index-bench-trained"]
    assert index_bench.main([*args, "--out", str(out)]) == 0
    text = out.read_text()
    assert "<!-- index-bench:start -->" in text and "<!-- index-bench-trained:start -->" in text
    assert "real queries" in text and "trained embeddings" in text
