"""The version reader and writers: open + verify once, refuse damage, one owner for the layout."""

from __future__ import annotations

import subprocess
import sys

import faiss
import numpy as np
import pandas as pd
import pytest

from recsys.artifacts import version as layout
from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.features import FeatureSpec
from recsys.artifacts.heads import Heads
from recsys.artifacts.numpy_tower import NumpyTower
from recsys.artifacts.version import Version, create_version, write_index
from tests.artifacts.versions import clone_version, edit_index_manifest, flip_byte
from tests.conftest import ROOT

V1 = "20260101T000000000000"
SPEC = FeatureSpec.from_list([{"name": "user_id", "tower": "user", "kind": "id"},
                              {"name": "age", "tower": "user", "kind": "numeric"},
                              {"name": "item_id", "tower": "item", "kind": "id"}])


def tiny_tower() -> NumpyTower:
    """user_id embedding (3, 4) + standardised age -> one dense layer -> (B, 2)."""
    rng = np.random.default_rng(0)
    config = {"features": [{"name": "user_id", "kind": "id"}, {"name": "age", "kind": "numeric"}],
              "vocabularies": {"user_id": ["a", "b"]}, "activations": ["linear"], "l2_normalize": False}
    arrays = {"user_id_embedding": rng.normal(size=(3, 4)).astype(np.float32),
              "age_mean": np.float32(30), "age_variance": np.float32(100),
              "dense_0_kernel": rng.normal(size=(5, 2)).astype(np.float32),
              "dense_0_bias": np.zeros(2, np.float32)}
    return NumpyTower(config, arrays)


def tiny_heads() -> Heads:
    return Heads("dot", {h: [(np.array([[1.5]], np.float32), np.zeros(1, np.float32), "linear")]
                         for h in ("ctr", "cvr")})


def write_tiny(root, finish: bool = True) -> layout.VersionWriter:
    users = pd.DataFrame({"user_id": ["a", "b"], "age": [20.0, 40.0]})
    items = pd.DataFrame({"item_id": ["x", "y", "z"]})
    with create_version(root) as w:
        w.write_numpy_tower("user", tiny_tower())
        w.write_heads(tiny_heads())
        w.write_table("user", users, SPEC.tower("user"))
        w.write_table("item", items, SPEC.tower("item"))
        w.write_seen(pd.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["x", "x", "y"]}))
        if finish:
            w.finish(SPEC, 2, note="tiny")
    return w


def test_the_writer_stages_a_version_and_the_reader_gets_back_what_was_written(tmp_path):
    w = write_tiny(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [w.name] and w.path == tmp_path / w.name
    v = Version.open(tmp_path)
    assert v.path == w.path and v.name == w.name and v.spec == SPEC and v.manifest["note"] == "tiny"
    assert v.manifest["embedding_dim"] == 2 and not v.has_index
    assert set(v.manifest["files"]) == {"user_tower/numpy_tower.npz", "user_tower/numpy_tower.json", "heads.npz",
                                        "heads.json", "users.parquet", "items.parquet", "seen.parquet"}
    cols = {"user_id": np.array(["a", "b", "unknown"], dtype=object), "age": np.array([1.0, 50.0, 30.0], np.float32)}
    assert np.array_equal(v.numpy_tower("user")(cols), tiny_tower()(cols))
    u, items = np.ones((1, 2), np.float32), np.arange(6, dtype=np.float32).reshape(3, 2)
    assert np.array_equal(v.heads().predict(u, items)[0], tiny_heads().predict(u, items)[0])
    assert v.table("user").ids.tolist() == ["a", "b"] and len(v.table("item")) == 3
    assert v.seen().values.tolist() == [["a", "x"], ["a", "y"]]  # distinct pairs

    vectors = np.eye(3, 2, dtype=np.float32)
    ann = faiss.IndexFlatIP(2)
    ann.add(vectors)
    write_index(v, ann, v.table("item").ids, vectors, kind="flat")
    assert layout.promote(tmp_path, v.path.name) and layout.read_current(tmp_path) == v.path.name
    served = Version.open(tmp_path, need_index=True)
    assert served.index_manifest == {**served.index_manifest, "model_version": w.name, "dim": 2, "count": 3,
                                     "metric": "inner_product", "kind": "flat"}
    index = served.index()
    assert index.item_ids.tolist() == ["x", "y", "z"] and index.ann.ntotal == 3
    assert np.array_equal(index.embeddings, vectors)


def test_an_unfinished_or_failed_version_never_appears(tmp_path):
    with pytest.raises(ArtifactError, match="without a manifest"):
        write_tiny(tmp_path, finish=False)
    with pytest.raises(RuntimeError):
        with create_version(tmp_path) as w:
            w.write_heads(tiny_heads())
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_opening_hands_out_every_artifact_and_only_the_saved_model_imports_tensorflow(seed_artifacts):
    script = f"""
import sys
from recsys.artifacts.version import Version
v = Version.open({str(seed_artifacts)!r}, need_index=True)
users, items, seen = v.table("user"), v.table("item"), v.seen()
u = v.numpy_tower("user")(users.rows([0, 1]))
index = v.index()
p_click, _ = v.heads().predict(u[:, None, :], index.embeddings[None, :5])
assert (len(users), len(items), u.shape, p_click.shape) == (100, 200, (2, 32), (2, 5))
assert index.ann.ntotal == 200 and len(seen) > 0 and v.index_manifest["model_version"] == v.name
assert "tensorflow" not in sys.modules, "a numpy-only load imported TensorFlow"
assert v.saved_tower("user")(users.rows([0])).shape == (1, 32)
assert "tensorflow" in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def copy(seed_artifacts, tmp_path):
    return clone_version(layout.resolve(seed_artifacts, need_index=True), tmp_path, V1)


@pytest.mark.parametrize("rel", ["users.parquet", "heads.npz", "user_tower/numpy_tower.npz",
                                 "item_tower/saved_model.pb", "seen.parquet"])
def test_a_tampered_model_file_is_refused_on_open(copy, rel):
    flip_byte(copy / rel)
    with pytest.raises(ArtifactError, match=f"file {rel} does not match its checksum"):
        Version.open(copy.parent, V1)


@pytest.mark.parametrize("rel", ["index.faiss", "item_ids.npy", "embeddings.npy"])
def test_a_tampered_index_file_is_refused_when_the_index_is_wanted(copy, rel):
    flip_byte(copy / layout.INDEX_DIR / rel)
    with pytest.raises(ArtifactError, match=f"file {rel} does not match its checksum"):
        Version.open(copy.parent, V1, need_index=True)
    opened = Version.open(copy.parent, V1)  # training-side commands do not need the index
    with pytest.raises(ArtifactError, match=f"file {rel} does not match its checksum"):
        opened.index()


def test_an_index_of_another_model_is_refused_on_open(copy):
    edit_index_manifest(copy, count=199)
    with pytest.raises(ArtifactError, match="the index does not belong to this model: count 199 .model: 200."):
        Version.open(copy.parent, V1, need_index=True)


def test_a_directory_that_is_not_a_model_version_is_refused(copy):
    with pytest.raises(ArtifactError, match="not a model version"):
        Version.at(copy / layout.INDEX_DIR)


def test_an_opened_version_survives_pickling_for_worker_processes(copy):
    import pickle

    v = Version.open(copy.parent, V1, need_index=True)
    back = pickle.loads(pickle.dumps(v))
    assert back == v and back.index().ann.ntotal == 200


LAYOUT_NAMES = (layout.MANIFEST, *layout.NUMPY_TOWER, *layout.HEADS, *layout.TABLES.values(), layout.SEEN,
                layout.INDEX_FILE, layout.ITEM_IDS, layout.EMBEDDINGS)


def test_file_names_of_a_version_are_written_only_in_the_version_module():
    """Every other module gets its paths from artifacts/version.py (docstrings included)."""
    owner = ROOT / "artifacts" / "version.py"
    code = [p for folder in ("artifacts", "index", "service", "model", "recsys", "bench")
            for p in sorted((ROOT / folder).rglob("*.py"))]
    assert owner in code and len(code) > 30
    found = {(p.relative_to(ROOT).as_posix(), name) for p in code if p != owner
             for name in LAYOUT_NAMES if name in p.read_text()}
    assert found == set()
    assert all(name in owner.read_text() for name in LAYOUT_NAMES)
