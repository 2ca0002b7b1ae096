"""Index formats: every kind survives write/read with its search knobs, ivf's recall, auto."""

from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:   # bench/ is a top-level folder, not part of the installed package
    sys.path.insert(0, str(ROOT))

from bench.vectors import clustered  # noqa: E402
from recsys.index import formats  # noqa: E402


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found, exact)]))


@pytest.fixture(scope="module")
def data():
    """Clustered, L2-normalised 32-d items and queries, and the exact top 100."""
    items, queries = clustered(20_000, 200, seed=7)
    exact = faiss.IndexFlatIP(32)
    exact.add(items)
    return items, queries, exact.search(queries, 100)[1]


@pytest.fixture(scope="module")
def small(data):
    items, queries, _ = data
    return items[:3000], queries[:20]


def roundtrip(index: faiss.Index, tmp_path: Path) -> faiss.Index:
    path = tmp_path / "index.faiss"
    faiss.write_index(index, str(path))
    return faiss.read_index(str(path))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_kind_round_trips_with_its_search_params(kind, small, tmp_path):
    items, queries = small
    index = formats.build(kind, items)
    back = roundtrip(index, tmp_path)
    assert back.ntotal == len(items) and back.d == 32 and back.metric_type == faiss.METRIC_INNER_PRODUCT
    # The defaults travel with the file: the read-back index answers like the built one.
    assert np.array_equal(back.search(queries, 50)[1], index.search(queries, 50)[1])
    formats.set_search_params(back, nprobe=7, ef_search=33)   # the service passes both, whatever the kind
    if kind == "ivf":
        assert faiss.extract_index_ivf(back).nprobe == 7
    if kind == "hnsw":
        assert faiss.downcast_index(back).hnsw.efSearch == 33
    formats.set_search_params(index, nprobe=7, ef_search=33)
    assert np.array_equal(back.search(queries, 50)[1], index.search(queries, 50)[1])


def test_built_indexes_carry_the_service_defaults(small):
    items, _ = small
    assert faiss.extract_index_ivf(formats.build("ivf", items)).nprobe == formats.DEFAULT_NPROBE == 32
    assert formats.build("hnsw", items).hnsw.efSearch == formats.DEFAULT_EF_SEARCH == 64


def test_ivf_reaches_recall_100_with_default_params(data, tmp_path):
    items, queries, exact = data
    index = formats.build("ivf", items)
    found = index.search(queries, 100)[1]
    assert recall(found, exact) >= 0.95, recall(found, exact)
    # As the service uses it: read back from disk, its nprobe and ef_search defaults passed.
    back = roundtrip(index, tmp_path)
    formats.set_search_params(back, nprobe=32, ef_search=64)
    assert recall(back.search(queries, 100)[1], exact) >= 0.95


def test_ivf_list_count_scales_with_the_catalogue():
    assert formats.ivf_nlist(1_000_000) == 2500
    assert formats.ivf_nlist(20_000) == 353
    assert formats.ivf_nlist(1_000) == 1_000 // 39    # at least 39 vectors per list for k-means
    assert formats.ivf_nlist(10) == 1


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_tiny_catalogues_build_every_kind(kind):
    """30 items, fewer than one IVF list needs: each kind still finds every item, itself first."""
    items, _ = clustered(30, 1, seed=1)
    sims, rows = formats.build(kind, items).search(items[:2], 30)
    assert [sorted(r) for r in rows.tolist()] == [list(range(30))] * 2  # no -1 slots, no repeats
    assert rows[:, 0].tolist() == [0, 1] and np.all(np.diff(sims, axis=1) <= 1e-6)


def test_auto_picks_flat_up_to_the_threshold_then_ivf():
    assert formats.choose("auto", 1) == "flat"
    assert formats.choose("auto", formats.AUTO_FLAT_MAX) == "flat" == formats.choose("auto", 100_000)
    assert formats.choose("auto", formats.AUTO_FLAT_MAX + 1) == "ivf" == formats.choose("auto", 1_000_000)
    for kind in ("flat", "hnsw", "ivf"):
        assert formats.choose(kind, 10) == kind == formats.choose(kind, 10_000_000)
    with pytest.raises(ValueError, match="unknown index kind"):
        formats.build("auto", np.zeros((2, 4), np.float32))   # choose() first, then build()
