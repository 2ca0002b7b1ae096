"""File hashing: the checksums of an artifact version and the fingerprint of a data set."""

from __future__ import annotations

import hashlib
from pathlib import Path


def update(h: hashlib._Hash, path: Path) -> None:
    """Feed the bytes of `path` to `h`, a megabyte at a time."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def sha256(path: Path) -> str:
    """Hex sha256 of one file."""
    h = hashlib.sha256()
    update(h, path)
    return h.hexdigest()
