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
      current                     names the version to serve; replaced atomically

A version is staged in a hidden temporary directory and renamed into place, so a reader
never sees a half-written one; a directory without manifest.json is not a version.
`current` is switched (temp file + rename) only once a version has a complete index, so an
interrupted `train` or `build-index` leaves the previous version serving.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.hashing import sha256

MANIFEST = "manifest.json"
INDEX_DIR = "index"
CURRENT = "current"
# The only metric the service scores with (similarity = u·v, the heads take u·v).
INDEX_METRIC = "inner_product"
# What a version name may look like: one path component, never hidden, never `..`.
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_version_name() -> str:
    # Sortable by time; microseconds keep two runs in one second apart.
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")


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


def has_index(version_dir: Path) -> bool:
    return (Path(version_dir) / INDEX_DIR / MANIFEST).is_file()


def read_current(root: str | Path) -> str | None:
    """The version `ROOT/current` names, or None when there is no pointer."""
    path = Path(root) / CURRENT
    try:
        name = path.read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: unreadable ({e})") from None
    if not _VERSION_NAME.fullmatch(name):
        raise ArtifactError(f"{path}: does not name a version (got {name[:80]!r})")
    return name


def set_current(root: str | Path, version: str) -> None:
    """Point `ROOT/current` at `version` atomically; the version must have a complete index."""
    root = Path(root)
    if not _VERSION_NAME.fullmatch(version) or not (root / version / MANIFEST).is_file():
        raise ArtifactError(f"{root}: no complete version named {version!r}")
    if not has_index(root / version):
        raise ArtifactError(f"{root / version}: no index; `current` only ever names an indexed version")
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / CURRENT)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)


def promote(root: str | Path, version: str) -> bool:
    """Make `version` current unless `current` already names a newer indexed version.

    Version names sort by creation time, so re-indexing an old version (say, to try another
    index format) never rolls serving back; pin a version (`--version`) to roll back.
    Returns whether `current` now names `version`.
    """
    root = Path(root)
    try:
        now = read_current(root)
    except ArtifactError:
        now = None  # an unreadable pointer is replaced
    if now is not None and now > version and has_index(root / now) and (root / now / MANIFEST).is_file():
        return False
    set_current(root, version)
    return True


def resolve(root: str | Path, version: str | None = None, need_index: bool = False) -> Path:
    """The named version, or the version to use by default.

    With `need_index` (serving) the default is the one `current` names, falling back to the
    newest complete version with an index when there is no usable pointer; without it
    (training-side commands) the newest complete version.
    """
    root = Path(root)
    if not root.is_dir():
        raise ArtifactError(f"{root}: artifact root not found (run `recsys train --out {root}` first)")
    if version:
        path = root / version
        if not (path / MANIFEST).is_file():
            raise ArtifactError(f"{root}: no complete version named {version!r}")
        if need_index and not has_index(path):
            raise ArtifactError(f"{path}: no index (run `recsys build-index --artifacts {root} --version {version}`)")
        return path
    versions = list_versions(root)
    if need_index:
        try:
            current = read_current(root)
        except ArtifactError:
            current = None
        if current is not None and (root / current / MANIFEST).is_file() and has_index(root / current):
            return root / current
        versions = [v for v in versions if has_index(v)]
        if not versions:
            raise ArtifactError(f"{root}: no version with an index (run `recsys build-index --artifacts {root}`)")
    if not versions:
        raise ArtifactError(f"{root}: no complete model version (run `recsys train --out {root}` first)")
    return versions[-1]


def catalogue_size(version_dir: Path) -> int:
    """Rows in the version's item catalogue, read from the Parquet footer only."""
    import pyarrow.parquet as pq

    path = Path(version_dir) / "items.parquet"
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path}: unreadable ({e})") from None


def check_index(version_dir: Path, model: dict | None = None, index: dict | None = None) -> tuple[dict, dict]:
    """The model manifest and the index manifest of a version, checked to belong together.

    The index must have been built by this model version, with its embedding dimension,
    over its whole item catalogue, with the inner-product metric; otherwise ArtifactError
    names every field that differs.
    """
    version_dir = Path(version_dir)
    model = model if model is not None else read_manifest(version_dir)
    index = index if index is not None else read_manifest(version_dir / INDEX_DIR)
    want = {"model_version": model.get("version"), "dim": model.get("embedding_dim"),
            "count": catalogue_size(version_dir), "metric": INDEX_METRIC}
    bad = [f"{key} {index.get(key)!r} (model: {value!r})" for key, value in want.items() if index.get(key) != value]
    if bad:
        raise ArtifactError(f"{version_dir}: the index does not belong to this model: " + "; ".join(bad))
    return model, index


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a hidden temporary directory beside `final`; on success rename it to `final`.

    On any error the temporary directory is removed and `final` is untouched. An existing
    `final` is replaced: moved aside first, then removed once the new one is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the version from a service running as another user
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
