"""Versions appear whole or not at all; the manifest detects damage."""

import pytest

from recsys.artifacts import files
from recsys.artifacts import version as layout
from recsys.artifacts.errors import ArtifactError


def test_staged_dir_is_all_or_nothing(tmp_path):
    final = tmp_path / "v1"
    with pytest.raises(RuntimeError):
        with files.staged_dir(final) as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("crash")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with files.staged_dir(final) as tmp:
        (tmp / "a").write_text("whole")
        layout.write_manifest(tmp, {"version": "v1"})
    assert (final / "a").read_text() == "whole"
    assert layout.verify(final)["files"] == {"a": files.sha256(final / "a")}


def test_replacing_a_directory_keeps_the_new_one_only(tmp_path):
    final = tmp_path / "index"
    for text in ("old", "new"):
        with files.staged_dir(final) as tmp:
            (tmp / "x").write_text(text)
    assert (final / "x").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["index"]


def test_verify_detects_a_changed_or_missing_file(tmp_path):
    (tmp_path / "a").write_text("1")
    layout.write_manifest(tmp_path, {})
    (tmp_path / "a").write_text("2")
    with pytest.raises(ArtifactError, match="does not match its checksum"):
        layout.verify(tmp_path)
    (tmp_path / "a").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        layout.verify(tmp_path)


def test_resolve_picks_the_newest_complete_version(tmp_path):
    for name in ("20260101T000000000000", "20260102T000000000000"):
        (tmp_path / name).mkdir()
        layout.write_manifest(tmp_path / name, {"version": name})
    (tmp_path / "20260103T000000000000").mkdir()  # no manifest: incomplete
    (tmp_path / ".20260104T.tmp-x").mkdir()       # staging directory
    assert layout.resolve(tmp_path).name == "20260102T000000000000"
    with pytest.raises(ArtifactError, match="no version with an index"):
        layout.resolve(tmp_path, need_index=True)
    with pytest.raises(ArtifactError, match="artifact root not found"):
        layout.resolve(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="no complete version named"):
        layout.resolve(tmp_path, "20260103T000000000000")
