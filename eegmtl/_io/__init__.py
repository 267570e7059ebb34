"""File I/O and provenance shared by every layer: atomic writes, a file lock, config hashes,
library versions, the machine and the tidy record store.

Nothing here imports torch or the rest of :mod:`eegmtl`, so the MTL core, the benchmarks, the
evaluation and the experiments can all build on it. One module per job:
:mod:`~eegmtl._io.files` (atomic writes, JSON files, the file lock),
:mod:`~eegmtl._io.provenance` (canonical JSON, config hashes, library versions, the
machine) and
:mod:`~eegmtl._io.records` (:class:`RecordStore`); every public name is re-exported here.
"""

from __future__ import annotations

from .files import atomic_open, atomic_write, file_lock, read_json, write_json
from .provenance import (
    DEFAULT_VERSION_PACKAGES,
    config_hash,
    data_digest,
    fit_fingerprint,
    library_versions,
    machine_info,
    stable_json,
)
from .records import RecordStore

__all__ = [
    "DEFAULT_VERSION_PACKAGES",
    "RecordStore",
    "atomic_open",
    "atomic_write",
    "config_hash",
    "data_digest",
    "fit_fingerprint",
    "file_lock",
    "library_versions",
    "machine_info",
    "read_json",
    "stable_json",
    "write_json",
]
