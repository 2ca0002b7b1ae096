"""One artifact version: its layout on disk, the reader that opens and verifies it, the writers.

    ARTIFACTS/
      20261128T120000123456/      one version, written by `recsys train`
        manifest.json             written last; lists a sha256 for every file
        user_tower/ item_tower/   SavedModels taking raw feature columns, plus the same
                                  function as numpy weights (numpy_tower.npz, numpy_tower.json)
        heads.npz heads.json      CTR/CVR heads (weights + config)
        users.parquet             user feature store (raw features by user_id)
        items.parquet             item catalogue (raw features by item_id)
        seen.parquet              (user_id, item_id) pairs seen in training data
        user_history.parquet      each user's last clicks of the training split, oldest first
                                  (only when the user tower takes a history)
        index/                    written by `recsys build-index`, its own manifest.json:
          index.faiss             FAISS inner-product index (search defaults travel with it)
          item_ids.npy            row -> item_id
          embeddings.npy          row -> item vector, for the heads
        index-<rev>/              a rebuilt index, the same files; `current_index` names it
        current_index             names the index directory to read (absent: index/)
      current                     names the version to serve; replaced atomically

Every file name of a version is declared here and nowhere else. `Version.open` resolves a
name under the root, verifies every checksum and reads both manifests once; its loaders then
hand out one artifact each. `create_version` and `write_index` stage what they write in a
hidden directory and write the manifest last, so a directory without manifest.json is not a
version, and `current` only ever names a version with a complete index: an interrupted
`train` or `build-index` leaves the previous version serving. A rebuilt index never replaces
a directory in place (no rename can do that atomically): it is staged under a fresh
`index-<rev>` name and `current_index` is switched to it in one rename, so a version always
has a whole index. A version is a name inside the root, never a path: `resolve` refuses
anything else, and a symlinked version directory that leads outside the root.

A process serving a version holds a shared `flock` on its manifest.json (`hold`); `prune`
removes a version only under an exclusive one, so it never deletes a version in use, by
this process or any other sharing the directory (containers on one volume included).

Adding an artifact: its file name below, a `write_*` method on VersionWriter and a loader on
Version, then its consumer.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys.artifacts.errors import ArtifactError
from recsys.artifacts.feature_store import FeatureStore, save_table
from recsys.artifacts.features import Feature, FeatureSpec
from recsys.artifacts.files import checksums, fsync_dir, sha256, staged_dir, write_json_atomic, write_text_atomic
from recsys.artifacts.manifests import IndexManifest, ModelManifest
from recsys.artifacts.manifests import validate as validate_manifest
from recsys.artifacts.heads import Heads
from recsys.artifacts.numpy_tower import NumpyTower
from recsys.artifacts.towers import Tower
from recsys.artifacts.user_history import StoredHistories

MANIFEST = "manifest.json"
CURRENT = "current"
INDEX_DIR = "index"            # the first index of a version
CURRENT_INDEX = "current_index"  # names a rebuilt index (index-<rev>); absent: INDEX_DIR
INDEX_LOCK = ".index.lock"     # held by the one build-index run writing a version's index
TOWER_DIRS = {"user": "user_tower", "item": "item_tower"}
NUMPY_TOWER = ("numpy_tower.npz", "numpy_tower.json")  # arrays, config; inside a tower directory
HEADS = ("heads.npz", "heads.json")                     # arrays, config
TABLES = {"user": "users.parquet", "item": "items.parquet"}
SEEN = "seen.parquet"
USER_HISTORY = "user_history.parquet"
INDEX_FILE, ITEM_IDS, EMBEDDINGS = "index.faiss", "item_ids.npy", "embeddings.npy"  # inside INDEX_DIR
# The only metric the service scores with (similarity = u·v, the heads take u·v).
INDEX_METRIC = "inner_product"
# What a version name may look like: one path component, never hidden, never `..`.
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_INDEX_REVISION = re.compile(r"index-[0-9A-Za-z]{1,64}")


# -- manifests ---------------------------------------------------------------------------

def write_manifest(directory: Path, data: dict, skip: tuple[str, ...] = ()) -> dict:
    """Write manifest.json last, with checksums of everything else in `directory` (but `skip`)."""
    data = dict(data, files=checksums(directory, skip=(MANIFEST, *skip)))
    write_json_atomic(Path(directory) / MANIFEST, data)
    return data


def read_manifest(directory: Path, schema: type | None = None) -> dict:
    """The manifest of `directory`, checked against `schema` (artifacts/manifests.py) when given."""
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise ArtifactError(f"{directory}: no {MANIFEST} (not a complete artifact)") from None
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON or bad UTF-8
        raise ArtifactError(f"{path}: unreadable ({e})") from None
    return validate_manifest(data, schema, str(path)) if schema is not None else data


def verify(directory: Path, schema: type | None = None) -> dict:
    """Read the manifest and check every file it lists; raise ArtifactError on a mismatch."""
    manifest = read_manifest(directory, schema)
    files = manifest.get("files", {}) if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ArtifactError(f"{Path(directory) / MANIFEST}: field 'files': expected an object of checksums")
    for rel, digest in files.items():
        p = Path(directory) / rel
        if not isinstance(rel, str) or ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ArtifactError(f"{directory}: {MANIFEST} lists a file outside its directory ({rel!r})")
        if not p.is_file():
            raise ArtifactError(f"{directory}: file {rel} listed in {MANIFEST} is missing")
        if sha256(p) != digest:
            raise ArtifactError(f"{directory}: file {rel} does not match its checksum")
    return manifest


def check_index(version_dir: Path, model: dict | None = None, index: dict | None = None) -> tuple[dict, dict]:
    """The model manifest and the index manifest of a version, checked to belong together.

    The index must have been built by this model version, with its embedding dimension,
    over its whole item catalogue, with the inner-product metric; otherwise ArtifactError
    names every field that differs.
    """
    version_dir = Path(version_dir)
    model = model if model is not None else read_manifest(version_dir)
    index = index if index is not None else read_manifest(index_dir(version_dir))
    catalogue = version_dir / TABLES["item"]
    try:
        count = pq.read_metadata(catalogue).num_rows  # the Parquet footer only
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{catalogue}: unreadable ({e})") from None
    want = {"model_version": model.get("version"), "dim": model.get("embedding_dim"), "count": count,
            "metric": INDEX_METRIC}
    bad = [f"{key} {index.get(key)!r} (model: {value!r})" for key, value in want.items() if index.get(key) != value]
    if bad:
        raise ArtifactError(f"{version_dir}: the index does not belong to this model: " + "; ".join(bad))
    return model, index


# -- the artifact root: which version ----------------------------------------------------

def new_version_name() -> str:
    # Sortable by time; microseconds keep two runs in one second apart.
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")


def is_version(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def index_dir(version_dir: Path) -> Path:
    """The directory of the version's index: what `current_index` names, else `index/`."""
    version_dir = Path(version_dir)
    pointer = version_dir / CURRENT_INDEX
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return version_dir / INDEX_DIR
    except (OSError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{pointer}: unreadable ({e})") from None
    if not _INDEX_REVISION.fullmatch(name):
        raise ArtifactError(f"{pointer}: does not name an index directory (got {name[:80]!r})")
    return version_dir / name


def has_index(version_dir: Path) -> bool:
    try:
        return (index_dir(version_dir) / MANIFEST).is_file()
    except ArtifactError:
        return False


def _inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks followed, is a directory directly under `root`."""
    try:
        return path.resolve(strict=True).parent == root.resolve(strict=True)
    except (OSError, RuntimeError):
        return False


def version_path(root: str | Path, name: str, what: str = "version") -> Path:
    """`root / name` for a version name; ArtifactError for a path, a hidden name or a symlink out of the root."""
    root = Path(root)
    if not isinstance(name, str) or not _VERSION_NAME.fullmatch(name):
        raise ArtifactError(f"{root}: {what} {str(name)[:80]!r} is not a version name "
                            "(letters, digits, '.', '_', '-'; a name inside the artifact root, not a path)")
    path = root / name
    if path.is_symlink() and not _inside(root, path):
        raise ArtifactError(f"{path}: a symlink to a directory outside the artifact root; not a version")
    return path


def list_versions(root: str | Path) -> list[Path]:
    """Complete versions under `root`, oldest first (never a symlink leading out of it)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _VERSION_NAME.fullmatch(p.name) and is_version(p)
                  and (not p.is_symlink() or _inside(root, p)))


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
    if not _VERSION_NAME.fullmatch(version) or not is_version(version_path(root, version)):
        raise ArtifactError(f"{root}: no complete version named {version!r}")
    if not has_index(root / version):
        raise ArtifactError(f"{root / version}: no index; `current` only ever names an indexed version")
    write_text_atomic(root / CURRENT, version + "\n")


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
    if now is not None and now > version and has_index(root / now) and is_version(root / now):
        return False
    set_current(root, version)
    return True


def resolve(root: str | Path, version: str | None = None, need_index: bool = False) -> Path:
    """The named version, or the version to use by default.

    With `need_index` (serving) the default is the one `current` names; only when there is
    no `current` at all is it the newest complete version with an index. A pointer naming a
    missing, incomplete or unindexed version is an error, never a reason to serve another
    one: a reload then keeps the served version and says why. Without `need_index`
    (training-side commands) the default is the newest complete version.
    """
    root = Path(root)
    if version:
        path = version_path(root, version)
    if not root.is_dir():
        raise ArtifactError(f"{root}: artifact root not found (run `recsys train --out {root}` first)")
    if version:
        if not is_version(path):
            raise ArtifactError(f"{root}: no complete version named {version!r}")
        if need_index and not has_index(path):
            raise ArtifactError(f"{path}: no index (run `recsys build-index --artifacts {root} --version {version}`)")
        return path
    versions = list_versions(root)
    if need_index:
        current = read_current(root)
        if current is not None:
            path = version_path(root, current, what=f"{CURRENT} names")
            if not is_version(path):
                raise ArtifactError(f"{root / CURRENT} names {current}, which is not a complete version "
                                    f"(its {MANIFEST} is missing)")
            if not has_index(path):
                raise ArtifactError(f"{root / CURRENT} names {current}, which has no complete index")
            return path
        versions = [v for v in versions if has_index(v)]
        if not versions:
            raise ArtifactError(f"{root}: no version with an index (run `recsys build-index --artifacts {root}`)")
    if not versions:
        raise ArtifactError(f"{root}: no complete model version (run `recsys train --out {root}` first)")
    return versions[-1]


# -- reading -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemIndex:
    """A version's item index; its files agree with each other and with its manifest."""

    ann: faiss.Index            # inner product, N rows; built-in search defaults (nprobe, efSearch)
    item_ids: np.ndarray        # (N,) str, row -> item_id
    embeddings: np.ndarray      # (N, D) float32, row -> item vector
    manifest: dict


@dataclass(frozen=True)
class Version:
    """An opened version: every checksum verified, the manifest read, the feature spec parsed.

    Plain data (a path and manifests), so it can be handed to another process; each loader
    reads its artifact afresh.
    """

    path: Path
    manifest: dict
    spec: FeatureSpec
    index_manifest: dict | None = None  # verified and paired with the model (opened with need_index)

    @classmethod
    def open(cls, root: str | Path, name: str | None = None, need_index: bool = False) -> Version:
        """Resolve `name` under `root` (see `resolve`) and open it; ArtifactError if it is damaged."""
        return cls.at(resolve(root, name, need_index), need_index)

    @classmethod
    def at(cls, path: str | Path, need_index: bool = False) -> Version:
        """Open the version directory `path`; with `need_index` its index is verified and paired too."""
        path = Path(path)
        manifest = verify(path, ModelManifest)
        spec = FeatureSpec.from_list(manifest["features"], where=str(path / MANIFEST))
        index = check_index(path, manifest, verify(index_dir(path), IndexManifest))[1] if need_index else None
        return cls(path, manifest, spec, index)

    @property
    def name(self) -> str:
        return self.manifest["version"]

    @property
    def has_index(self) -> bool:
        return has_index(self.path)

    def table(self, tower: str) -> FeatureStore:
        """The user feature store ("user") or the item catalogue ("item")."""
        return FeatureStore.load(self.path / TABLES[tower], self.spec.tower(tower), tower)

    def seen(self) -> pd.DataFrame:
        """Distinct (user_id, item_id) pairs of the training data."""
        path = self.path / SEEN
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path}: unreadable ({e})") from None

    @property
    def history_length(self) -> int:
        """How many recent items the user tower pools (0: it takes no history)."""
        return int(self.manifest.get("config", {}).get("history_length") or 0)

    def user_history(self) -> StoredHistories | None:
        """Each training user's stored history; None when the user tower takes none."""
        if not self.history_length:
            return None
        path = self.path / USER_HISTORY
        try:
            return StoredHistories(pd.read_parquet(path), self.history_length)
        except (OSError, ValueError, KeyError) as e:
            raise ArtifactError(f"{path}: unreadable ({e})") from None

    def numpy_tower(self, tower: str) -> NumpyTower:
        """The tower as numpy weights: `tower(columns)` -> (B, D) float32."""
        directory = self.path / TOWER_DIRS[tower]
        try:
            return NumpyTower(*_read_config_and_arrays(directory, *NUMPY_TOWER))
        except (OSError, KeyError, ValueError) as e:
            raise ArtifactError(f"{directory}: numpy tower unreadable ({e})") from None

    def saved_tower(self, tower: str) -> Tower:
        """The tower as the exported SavedModel (imports TensorFlow on first use)."""
        return Tower(self.path / TOWER_DIRS[tower], self.spec.tower(tower),
                     history=tower == "user" and self.history_length > 0)

    def heads(self) -> Heads:
        try:
            return Heads.from_arrays(*_read_config_and_arrays(self.path, *HEADS))
        except (OSError, KeyError, ValueError) as e:
            raise ArtifactError(f"{self.path}: heads unreadable ({e})") from None

    def index(self) -> ItemIndex:
        """The item index, verified and paired with this model unless opening did that already."""
        directory = index_dir(self.path)
        manifest = self.index_manifest
        if manifest is None:
            manifest = check_index(self.path, self.manifest, verify(directory, IndexManifest))[1]
        try:
            ann = faiss.read_index(str(directory / INDEX_FILE))
            item_ids = np.load(directory / ITEM_IDS)
            embeddings = np.load(directory / EMBEDDINGS)
        except (OSError, RuntimeError, ValueError) as e:
            raise ArtifactError(f"{directory}: index unreadable ({e})") from None
        if embeddings.ndim != 2 or not (ann.ntotal == len(embeddings) == len(item_ids) == manifest.get("count")) \
                or not (ann.d == embeddings.shape[1] == manifest.get("dim")):
            raise ArtifactError(f"{directory}: index, id map, embeddings and manifest disagree on size")
        if ann.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ArtifactError(f"{directory}: index metric is not {INDEX_METRIC}")
        return ItemIndex(ann, item_ids, embeddings, manifest)


def _read_config_and_arrays(directory: Path, arrays_file: str, config_file: str) -> tuple[dict, dict]:
    config = json.loads((directory / config_file).read_text())
    with np.load(directory / arrays_file) as z:
        return config, {k: z[k] for k in z.files}


def _write_config_and_arrays(directory: Path, arrays_file: str, config_file: str, config: dict,
                             arrays: dict[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / arrays_file, **arrays)
    (directory / config_file).write_text(json.dumps(config) + "\n")


# -- writing -----------------------------------------------------------------------------

class VersionWriter:
    """A version being staged under a hidden name: each `write_*` puts one artifact in place."""

    def __init__(self, staging: Path, name: str, final: Path):
        self.staging = staging
        self.name = name
        self.path = final       # where the version appears once written
        self.finished = False

    def tower_dir(self, tower: str) -> Path:
        """The directory the tower's SavedModel is exported into (not created: the exporter does)."""
        return self.staging / TOWER_DIRS[tower]

    def write_numpy_tower(self, tower: str, numpy_tower: NumpyTower) -> None:
        _write_config_and_arrays(self.tower_dir(tower), *NUMPY_TOWER, numpy_tower.config, numpy_tower.arrays)

    def write_heads(self, heads: Heads) -> None:
        _write_config_and_arrays(self.staging, *HEADS, *heads.to_arrays())

    def write_table(self, tower: str, frame: pd.DataFrame, features: tuple[Feature, ...]) -> None:
        save_table(frame, features, tower, self.staging / TABLES[tower])

    def write_seen(self, pairs: pd.DataFrame) -> None:
        pairs[["user_id", "item_id"]].drop_duplicates().to_parquet(self.staging / SEEN, index=False)

    def write_user_history(self, frame: pd.DataFrame) -> None:
        """(user_id, item_id, timestamp) rows grouped by user, oldest first."""
        frame[["user_id", "item_id", "timestamp"]].to_parquet(self.staging / USER_HISTORY, index=False)

    def finish(self, spec: FeatureSpec, embedding_dim: int, **fields) -> dict:
        """Write the manifest (the reader's contract: version, features, embedding_dim) last."""
        self.finished = True
        return write_manifest(self.staging, {**fields, "version": self.name, "features": spec.to_list(),
                                             "embedding_dim": int(embedding_dim)})


@contextmanager
def create_version(root: str | Path) -> Iterator[VersionWriter]:
    """Stage a new version under `root`; it appears, whole, once the block ends after `finish`."""
    name = new_version_name()
    final = Path(root) / name
    with staged_dir(final) as tmp:
        writer = VersionWriter(tmp, name, final)
        yield writer
        if not writer.finished:
            raise ArtifactError(f"{final}: version written without a manifest")


@contextmanager
def index_lock(version_dir: Path) -> Iterator[None]:
    """Hold the version's index lock for the block; ArtifactError at once if another job holds it."""
    path = Path(version_dir) / INDEX_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ArtifactError(f"{version_dir}: cannot write an index here ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArtifactError(f"{version_dir}: another build-index is writing this version's index; "
                                "wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def write_index(version: Version, ann: faiss.Index, item_ids: np.ndarray, embeddings: np.ndarray,
                **fields) -> Path:
    """Make `ann` over `embeddings` (N, D), rows named by `item_ids` (N,), the version's index.

    The manifest carries what the reader pairs with the model (model version, dimension,
    count, metric) plus `fields`. The first index is staged and renamed to `index/`; a
    rebuilt one is staged and renamed to a fresh `index-<rev>/`, then `current_index` is
    switched to it in one rename, and only then is the previous one removed: killed at any
    point, the version has its old index or its new one. Callers hold `index_lock`.
    """
    directory = version.path
    first = not (directory / INDEX_DIR).exists() and not (directory / CURRENT_INDEX).exists()
    final = directory / (INDEX_DIR if first else f"index-{new_version_name()}")
    with staged_dir(final) as tmp:
        try:
            faiss.write_index(ann, str(tmp / INDEX_FILE))
        except RuntimeError as e:  # FAISS reports a failed write (a full disk) this way, errno lost
            raise ArtifactError(f"{tmp / INDEX_FILE}: cannot write the index ({str(e).strip().splitlines()[-1]})") \
                from None
        np.save(tmp / ITEM_IDS, np.asarray(item_ids).astype(str))
        np.save(tmp / EMBEDDINGS, embeddings)
        write_manifest(tmp, {**fields, "model_version": version.name, "metric": INDEX_METRIC,
                             "dim": int(embeddings.shape[1]), "count": int(len(item_ids))})
    if not first:
        write_text_atomic(directory / CURRENT_INDEX, final.name + "\n")
    # What a previous or killed run left: older indexes and staging directories.
    for p in directory.iterdir():
        if p == final or p.name == INDEX_LOCK:
            continue
        if p.is_dir() and (p.name == INDEX_DIR or _INDEX_REVISION.fullmatch(p.name) or p.name.startswith(".index")):
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{CURRENT_INDEX}.tmp-"):
            p.unlink(missing_ok=True)
    return final


def hold(version_dir: Path):
    """A shared lock on the version's manifest, held while the returned file stays open: what
    `prune` sees as "in use". Read-only, so it works on a read-only mount; blocks only while
    a prune is removing this very version (whose files are then gone: loading it fails)."""
    try:
        f = open(Path(version_dir) / MANIFEST, "rb")
    except FileNotFoundError:
        raise ArtifactError(f"{version_dir}: no {MANIFEST} (not a complete artifact)") from None
    fcntl.flock(f, fcntl.LOCK_SH)
    return f


STALE_SECONDS = 3600  # a staging leftover this old belongs to no running job


def prune(root: str | Path, keep: int) -> dict:
    """Remove all but the `keep` newest complete versions under `root`.

    Also kept, whatever their age: the version `current` names, the newest version with an
    index (what serving falls back to without a pointer), and any version a process holds
    (`hold`). Hidden staging leftovers (`.NAME.tmp-*`, `.NAME.old-*`) older than an hour are
    removed too. A version is renamed to a hidden name under an exclusive lock, then deleted,
    so no reader sees it half removed. Returns what was removed and kept.
    """
    root = Path(root)
    if keep < 1:
        raise ArtifactError(f"--keep must be at least 1, got {keep}")
    if not root.is_dir():
        raise ArtifactError(f"{root}: artifact root not found")
    versions = list_versions(root)
    current = read_current(root)  # an unreadable pointer is an error: prune would not know what serves
    indexed = [v.name for v in versions if has_index(v)]
    protected = {v.name for v in versions[-keep:]} | {current} | set(indexed[-1:])
    removed, in_use = [], []
    for v in versions:
        if v.name in protected:
            continue
        with open(v / MANIFEST, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                in_use.append(v.name)
                continue
            doomed = root / f".{v.name}.tmp-prune-{os.getpid()}"
            os.replace(v, doomed)
            fsync_dir(root)
            shutil.rmtree(doomed)
        removed.append(v.name)
    stale = []
    for p in sorted(root.iterdir()):
        if re.fullmatch(r"\..+\.(tmp|old)-.*", p.name) and time.time() - _newest_mtime(p) > STALE_SECONDS:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            stale.append(p.name)
    kept = [v.name for v in list_versions(root)]
    return {"root": str(root), "keep": keep, "current": current, "removed": removed, "kept": kept,
            "in_use": in_use, "stale_removed": stale}


def _newest_mtime(path: Path) -> float:
    """The latest modification time in a tree: a staging directory still being written is young."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for p in path.rglob("*"):
            try:
                newest = max(newest, p.lstat().st_mtime)
            except FileNotFoundError:
                pass
    return newest
