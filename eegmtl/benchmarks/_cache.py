"""Disk cache for built benchmark arrays: atomic ``.npz`` files keyed by a content hash."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eegmtl._io import atomic_open, config_hash

__all__ = ["cache_dir", "config_key", "file_sha256", "load_npz", "save_npz_atomic"]


def cache_dir(path: str | os.PathLike[str] | None = None, sub: str = "") -> Path:
    """Cache folder: ``path``, else ``$EEGMTL_CACHE_DIR``, else ``~/.cache/eegmtl``
    (plus the sub-folder ``sub``)."""
    if path is not None:
        root = Path(path).expanduser()
    elif os.environ.get("EEGMTL_CACHE_DIR"):
        root = Path(os.environ["EEGMTL_CACHE_DIR"]).expanduser()
    else:
        root = Path.home() / ".cache" / "eegmtl"
    return root / sub if sub else root


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """SHA-256 hex digest of a file (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_key(config: Mapping[str, Any], files: Iterable[str | os.PathLike[str]] = ()) -> str:
    """Short hash of a JSON-serialisable config plus the SHA-256 of the given source files."""
    payload = {"config": dict(config), "files": [file_sha256(f) for f in files]}
    return config_hash(payload, 16, style="loose")


def save_npz_atomic(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (uncompressed npz) through a temporary file + rename, so a
    crash or a concurrent reader never sees a half-written cache file."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def load_npz(path: str | os.PathLike[str], keys: Iterable[str]) -> dict[str, np.ndarray] | None:
    """Load every key of a cache file, or ``None`` if it is missing, unreadable or incomplete."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError):
        return None
