"""Test helpers: copy a trained version under a new name, damage files on purpose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recsys.artifacts import files
from recsys.artifacts import version as layout


def clone_version(src: Path, root: Path, name: str, index: bool = True) -> Path:
    """A copy of version `src` named `name` under `root`, manifests rewritten to match.

    The copy is the same model under another version name; with `index` its index is
    copied too and re-stamped with the new model version. `current` is not touched.
    """
    dst = Path(root) / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(layout.INDEX_DIR))
    manifest = layout.read_manifest(dst)
    manifest.pop("files", None)
    layout.write_manifest(dst, dict(manifest, version=name), skip=(layout.INDEX_DIR,))
    if index:
        shutil.copytree(Path(src) / layout.INDEX_DIR, dst / layout.INDEX_DIR)
        edit_index_manifest(dst, model_version=name)
    return dst


def edit_index_manifest(version_dir: Path, **fields) -> None:
    """Change fields of an index manifest, checksums recomputed (a consistent but wrong index)."""
    index = Path(version_dir) / layout.INDEX_DIR
    manifest = json.loads((index / layout.MANIFEST).read_text())
    manifest.pop("files", None)
    layout.write_manifest(index, dict(manifest, **fields))


def truncate(path: Path) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def flip_byte(path: Path, offset: int = 100) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` outside hidden (staging) directories."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): files.sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}
