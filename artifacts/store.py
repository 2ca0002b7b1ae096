"""Versioned artifact directories.

    ARTIFACTS/
      20261128T120000123456/      one version, written by `recsys train`
        manifest.json             written last; lists a sha256 for every file
        user_tower/ item_tower/   SavedModels taking raw feature columns
        heads.npz heads.json      CTR/CVR heads (weights + config)
        users.parquet             user feature store (raw features by user_id)
        items.parquet             item catalogue (raw features by item_id)
        seen.parquet              (user_id, item_id) pairs seen in training data
        index/                    written by `recsys build-index`, own manifest.json

A version is staged in a hidden temporary directory and renamed into place, so a reader
never sees a half-written one; a directory without manifest.json is not a version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from artifacts.errors import ArtifactError

MANIFEST = "manifest.json"
INDEX_DIR = "index"


def new_version_name() -> str:
    # Sortable by time; microseconds keep two runs in one second apart.
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(directory: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under `directory`, keyed by relative posix path."""
    out = {}
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory).as_posix()
        if p.is_file() and rel != MANIFEST and not any(rel == s or rel.startswith(s + "/") for s in skip):
            out[rel] = sha256(p)
    return out


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_manifest(directory: Path, data: dict, skip: tuple[str, ...] = ()) -> dict:
    """Write manifest.json last, with checksums of everything else in `directory`."""
    data = dict(data, files=checksums(directory, skip))
    write_json_atomic(directory / MANIFEST, data)
    return data


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: no {MANIFEST} (not a complete artifact)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: unreadable ({e})") from None


def verify(directory: Path) -> dict:
    """Read the manifest and check every file it lists; raise ArtifactError on a mismatch."""
    manifest = read_manifest(directory)
    for rel, digest in manifest.get("files", {}).items():
        p = Path(directory) / rel
        if not p.is_file():
            raise ArtifactError(f"{directory}: file {rel} listed in {MANIFEST} is missing")
        if sha256(p) != digest:
            raise ArtifactError(f"{directory}: file {rel} does not match its checksum")
    return manifest


def list_versions(root: str | Path) -> list[Path]:
    """Complete versions under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def resolve(root: str | Path, version: str | None = None, need_index: bool = False) -> Path:
    """The named version, or the newest complete one (with an index if `need_index`)."""
    root = Path(root)
    if not root.is_dir():
        raise ArtifactError(f"{root}: artifact root not found (run `recsys train --out {root}` first)")
    if version:
        path = root / version
        if not (path / MANIFEST).is_file():
            raise ArtifactError(f"{root}: no complete version named {version!r}")
        if need_index and not (path / INDEX_DIR / MANIFEST).is_file():
            raise ArtifactError(f"{path}: no index (run `recsys build-index --artifacts {root} --version {version}`)")
        return path
    versions = list_versions(root)
    if need_index:
        versions = [v for v in versions if (v / INDEX_DIR / MANIFEST).is_file()]
        if not versions:
            raise ArtifactError(f"{root}: no version with an index (run `recsys build-index --artifacts {root}`)")
    if not versions:
        raise ArtifactError(f"{root}: no complete model version (run `recsys train --out {root}` first)")
    return versions[-1]


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a hidden temporary directory beside `final`; on success rename it to `final`.

    On any error the temporary directory is removed and `final` is untouched. An existing
    `final` is replaced: moved aside first, then removed once the new one is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
