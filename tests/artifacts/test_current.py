"""The `current` pointer and the model/index pairing check."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from recsys.artifacts import files
from recsys.artifacts import version as layout
from recsys.artifacts.errors import ArtifactError

V1, V2, V3 = "20260101T000000000000", "20260102T000000000000", "20260103T000000000000"


def make_version(root, name, index=True, items=3, embedding_dim=8, **index_fields):
    d = root / name
    d.mkdir(parents=True)
    pd.DataFrame({"item_id": [str(i) for i in range(items)]}).to_parquet(d / "items.parquet")
    layout.write_manifest(d, {"version": name, "embedding_dim": embedding_dim}, skip=(layout.INDEX_DIR,))
    if index:
        (d / layout.INDEX_DIR).mkdir()
        fields = {"model_version": name, "dim": embedding_dim, "count": items, "metric": "inner_product", **index_fields}
        layout.write_manifest(d / layout.INDEX_DIR, fields)
    return d


def test_resolve_serves_what_current_names(tmp_path):
    make_version(tmp_path, V1)
    make_version(tmp_path, V2)
    make_version(tmp_path, V3, index=False)
    assert layout.read_current(tmp_path) is None
    assert layout.resolve(tmp_path, need_index=True).name == V2  # no pointer: newest with an index
    layout.set_current(tmp_path, V1)
    assert (tmp_path / "current").read_text() == V1 + "\n" and layout.read_current(tmp_path) == V1
    assert layout.resolve(tmp_path, need_index=True).name == V1
    # Training-side callers (need_index=False) keep using the newest complete version.
    assert layout.resolve(tmp_path).name == V3
    assert layout.resolve(tmp_path, V2, need_index=True).name == V2  # a named version wins
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_pointer_naming_a_broken_version_is_an_error_never_a_rollback(tmp_path):
    make_version(tmp_path, V1)
    make_version(tmp_path, V2)
    layout.set_current(tmp_path, V2)
    # The version `current` names lost its manifest, its index manifest, its index, or itself.
    for i, rel in enumerate(["manifest.json", "index/manifest.json", "index", "."]):
        root = tmp_path / f"case{i}"
        shutil.copytree(tmp_path, root, ignore=shutil.ignore_patterns("case*"))
        target = root / V2 / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        with pytest.raises(ArtifactError, match=f"current names {V2}"):
            layout.resolve(root, need_index=True)
    (tmp_path / "current").write_text("../../etc\n")
    with pytest.raises(ArtifactError, match="does not name a version"):
        layout.resolve(tmp_path, need_index=True)
    (tmp_path / "current").unlink()  # only no pointer at all falls back
    assert layout.resolve(tmp_path, need_index=True).name == V2


def test_current_only_ever_names_a_complete_indexed_version(tmp_path):
    make_version(tmp_path, V1)
    make_version(tmp_path, V2, index=False)
    layout.set_current(tmp_path, V1)
    with pytest.raises(ArtifactError, match="no index"):
        layout.set_current(tmp_path, V2)
    for bad in (V3, "../x", ".hidden", ""):
        with pytest.raises(ArtifactError, match="no complete version"):
            layout.set_current(tmp_path, bad)
    assert layout.read_current(tmp_path) == V1


def test_promote_moves_forward_never_back(tmp_path):
    for v in (V1, V2, V3):
        make_version(tmp_path, v)
    assert layout.promote(tmp_path, V2) and layout.read_current(tmp_path) == V2
    assert not layout.promote(tmp_path, V1) and layout.read_current(tmp_path) == V2  # re-indexing an old one
    assert layout.promote(tmp_path, V3) and layout.read_current(tmp_path) == V3


def test_the_pointer_is_replaced_atomically(tmp_path, monkeypatch):
    make_version(tmp_path, V1)
    make_version(tmp_path, V2)
    layout.set_current(tmp_path, V1)

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        layout.set_current(tmp_path, V2)
    monkeypatch.undo()
    assert layout.read_current(tmp_path) == V1  # the old pointer, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [V1, V2, "current"]


def test_staged_versions_are_readable_by_other_users(tmp_path):
    with files.staged_dir(tmp_path / V1) as tmp:
        (tmp / "a").write_text("x")
    assert (tmp_path / V1).stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("field, value, reason", [
    ("model_version", V2, f"model_version '{V2}' (model: '{V1}')"),
    ("dim", 16, "dim 16 (model: 8)"),
    ("count", 2, "count 2 (model: 3)"),
    ("metric", "l2", "metric 'l2' (model: 'inner_product')"),
])
def test_check_index_names_what_does_not_match(tmp_path, field, value, reason):
    good = make_version(tmp_path, V1)
    model, index = layout.check_index(good)
    assert model["version"] == index["model_version"] == V1
    bad = make_version(tmp_path / "other", V1, **{field: value})
    with pytest.raises(ArtifactError, match="the index does not belong to this model") as e:
        layout.check_index(bad)
    assert str(e.value).endswith(reason)


def test_a_version_is_a_name_inside_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "other"
    make_version(root, V1)
    make_version(outside, V2)
    for bad in (f"../other/{V2}", str(outside / V2), "..", ".hidden", "a/b"):
        with pytest.raises(ArtifactError, match="not a version name"):
            layout.resolve(root, bad, need_index=True)
    (root / V3).symlink_to(outside / V2)  # a symlinked version directory leading out of the root
    with pytest.raises(ArtifactError, match="outside the artifact root"):
        layout.resolve(root, V3, need_index=True)
    assert [p.name for p in layout.list_versions(root)] == [V1]
    layout.set_current(root, V1)
    (root / "current").write_text(V3 + "\n")
    with pytest.raises(ArtifactError, match="outside the artifact root"):
        layout.resolve(root, need_index=True)
    (root / "current").unlink()
    assert layout.resolve(root, need_index=True).name == V1
    (root / "alias").symlink_to(root / V1)  # a symlink inside the root is still a name inside it
    assert layout.resolve(root, "alias").name == "alias"
