"""File I/O and provenance shared by every layer: atomic writes, a file lock, config hashes,
library versions and the tidy record store.

Nothing here imports torch or the rest of :mod:`eegmtl`, so the MTL core, the benchmarks, the
evaluation and the experiments can all build on it.

Atomic writes (:func:`atomic_write`, :func:`atomic_open`) write a temporary file
``.<name>.<pid>.tmp`` in the target's folder, flush and ``fsync`` it, rename it over the target
with :func:`os.replace` (atomic on POSIX) and ``fsync`` the folder where the OS allows it. A
reader therefore sees the old file or the new one, never a truncated one. A temporary file left by
a writer that was killed (``SIGKILL``) is removed by the next save of the same target.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata as _metadata
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "DEFAULT_VERSION_PACKAGES",
    "RecordStore",
    "atomic_open",
    "atomic_write",
    "config_hash",
    "file_lock",
    "library_versions",
    "read_json",
    "stable_json",
    "write_json",
]


# --------------------------------------------------------------------------- atomic writes
def _tmp_name(path: Path, pid: int | None = None) -> Path:
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def _remove_stale_temps(path: Path) -> None:
    """Delete ``.<name>.<pid>.tmp`` files of ``path`` whose writer process no longer exists."""
    prefix, me = f".{path.name}.", os.getpid()
    with contextlib.suppress(OSError):
        for tmp in path.parent.iterdir():
            name = tmp.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid = name[len(prefix):-len(".tmp")]
            if not pid.isdigit() or int(pid) == me or _pid_alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                tmp.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:  # make the rename durable (not supported on every OS / file system)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8",
    newline: str | None = "",
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` atomically when the block exits cleanly.

    Parameters
    ----------
    path : path-like
        Target file; its folder is created when missing.
    mode : {"w", "wb"}
        Text or binary.
    encoding, newline
        Text mode only; ``newline=""`` writes line endings unchanged.

    If the block raises, the temporary file is removed and the target is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = _tmp_name(path)
    kwargs: dict[str, Any] = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (``str`` as UTF-8, line endings unchanged) to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, **json_kwargs: Any) -> Path:
    """``json.dump(obj)`` to ``path`` atomically (``json_kwargs`` go to :func:`json.dumps`)."""
    return atomic_write(path, json.dumps(obj, **json_kwargs))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Load a JSON file; an empty or truncated file raises a :class:`ValueError` naming it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path} is empty; it was not written completely. Delete it and rerun.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); it is truncated or corrupt. Delete it and rerun."
        ) from err


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive POSIX ``flock`` on ``<path>.lock`` (next to ``path``) for the block.

    Several processes (e.g. workers of a sweep on a shared disk) that update the same file take
    turns. Where :mod:`fcntl` does not exist (Windows) the block runs unlocked.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield lock
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield lock
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- hashing
def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, sets and paths to plain JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_jsonable(v) for v in obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy array or scalar
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"cannot put a {type(obj).__name__} ({obj!r}) into a result config: configs must hold "
        "JSON-like values (numbers, strings, lists, dicts). Pass a name instead of an object."
    )


def stable_json(obj: Any) -> str:
    """Canonical JSON text of ``obj`` (sorted keys, no spaces, tuples as lists)."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(
    obj: Any, length: int = 12, *, style: Literal["canonical", "loose"] = "canonical"
) -> str:
    """Short hex hash of a configuration.

    Parameters
    ----------
    obj : JSON-like
        The configuration.
    length : int
        Number of hex digits kept.
    style : {"canonical", "loose"}
        ``"canonical"`` (EEG records): SHA-1 of :func:`stable_json`; two configs that differ
        only in key order or list/tuple type hash the same, any value change changes the hash,
        and objects that are not JSON-like are refused. ``"loose"`` (vision records and the
        benchmark cache, kept so their stored hashes stay valid): SHA-256 of
        ``json.dumps(obj, sort_keys=True, default=str)``.
    """
    if style == "canonical":
        return hashlib.sha1(stable_json(obj).encode("utf-8")).hexdigest()[:length]
    if style == "loose":
        text = json.dumps(obj, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:length]
    raise ValueError(f"style must be 'canonical' or 'loose', got {style!r}")


# --------------------------------------------------------------------------- versions
#: Packages whose versions go into every record by default.
DEFAULT_VERSION_PACKAGES: tuple[str, ...] = (
    "eegmtl", "torch", "numpy", "scipy", "scikit-learn", "mne", "moabb", "pandas",
    "braindecode", "pyriemann",
)


def library_versions(names: Sequence[str] | None = None) -> dict[str, str | None]:
    """Installed versions of ``names`` (default :data:`DEFAULT_VERSION_PACKAGES`), ``None`` for
    a package that is not installed; read from package metadata, nothing is imported.
    ``"python"`` gives the interpreter's version."""
    import platform

    out: dict[str, str | None] = {}
    for name in DEFAULT_VERSION_PACKAGES if names is None else names:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            out[name] = None
    return out


# --------------------------------------------------------------------------- record store
class RecordStore:
    """A tidy CSV (or Parquet) file of records, merged atomically under a lock.

    Parameters
    ----------
    path : path-like
        The record file (``.parquet`` by extension, CSV otherwise).
    key : sequence of str
        Columns that identify a record; a merged row replaces a stored row with the same key.
    columns : sequence of str
        Preferred column order (present columns first in this order, extra columns after).
    sort_by : sequence of str, optional
        Stable sort of the merged table (default: no sort).
    dtypes : mapping, optional
        ``dtype`` of :func:`pandas.read_csv` (e.g. ``{"config_hash": str}``).
    numeric : sequence of str
        Columns coerced to numbers after loading.
    key_types : sequence of callables, optional
        One converter per key column for :meth:`done_keys` (default ``str``).
    finalize : callable, optional
        Applied to the merged frame before it is written (e.g. recomputing derived columns).
    normalize_new : bool
        Round-trip new rows through CSV before merging, so in-memory rows compare equal to
        stored ones.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: Sequence[str],
        *,
        columns: Sequence[str] = (),
        sort_by: Sequence[str] | None = None,
        dtypes: Mapping[str, Any] | None = None,
        numeric: Sequence[str] = (),
        key_types: Sequence[Callable[[Any], Any]] | None = None,
        finalize: Callable[[Any], Any] | None = None,
        normalize_new: bool = True,
    ) -> None:
        self.path = Path(path) if not isinstance(path, io.StringIO) else path
        self.key = tuple(key)
        self.columns = tuple(columns)
        self.sort_by = None if sort_by is None else list(sort_by)
        self.dtypes = dict(dtypes or {})
        self.numeric = tuple(numeric)
        self.key_types = tuple(key_types) if key_types is not None else (str,) * len(self.key)
        if len(self.key_types) != len(self.key):
            raise ValueError("key_types needs one converter per key column")
        self.finalize = finalize
        self.normalize_new = normalize_new

    def __repr__(self) -> str:
        return f"RecordStore({str(self.path)!r}, key={list(self.key)})"

    # ----------------------------------------------------------------- reading
    def read(self, source: Any) -> Any:
        """Parse records from ``source`` (a path or a text buffer) with this store's dtypes."""
        import pandas as pd

        is_path = not isinstance(source, io.StringIO)
        if is_path and Path(source).suffix == ".parquet":
            df = pd.read_parquet(source)
        else:
            try:
                df = pd.read_csv(source, dtype=self.dtypes or None, keep_default_na=True)
            except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
                where = source if is_path else "the record buffer"
                raise ValueError(
                    f"cannot read the record file {where}: {err}. It is empty, truncated or "
                    "not a CSV written by eegmtl; restore it from version control or delete it "
                    "to start over."
                ) from err
        for col in self.numeric:
            if col in df.columns:
                df[col] = pd.to_numeric(df[col], errors="coerce")
        return df

    def load(self) -> Any:
        """The stored records (empty frame with :attr:`columns` when the file does not exist)."""
        import pandas as pd

        if isinstance(self.path, Path) and not self.path.is_file():
            return pd.DataFrame(columns=list(self.columns))
        return self.read(self.path)

    def normalize(self, df: Any) -> Any:
        """``df`` as :meth:`load` would return it after a CSV round trip."""
        return self.read(io.StringIO(df.to_csv(index=False, lineterminator="\n")))

    # ----------------------------------------------------------------- keys
    def _key(self, values: Iterable[Any]) -> tuple:
        return tuple(f(v) for f, v in zip(self.key_types, values))

    def done_keys(self, df: Any | None = None) -> set[tuple]:
        """Set of key tuples in ``df`` (default: the stored records), types normalised."""
        df = self.load() if df is None else df
        if df.empty:
            return set()
        missing = [c for c in self.key if c not in df.columns]
        if missing:
            raise ValueError(
                f"record file {self.path} lacks key columns {missing}; was it written by eegmtl?"
            )
        return {self._key(r) for r in df[list(self.key)].itertuples(index=False)}

    # ----------------------------------------------------------------- writing
    def _ordered(self, df: Any) -> Any:
        cols = [c for c in self.columns if c in df.columns]
        return df[cols + [c for c in df.columns if c not in cols]]

    def write(self, df: Any) -> Path:
        """Replace the file by ``df`` atomically (preferred column order first)."""
        df = self._ordered(df)
        with atomic_open(self.path, "wb") as fh:
            if self.path.suffix == ".parquet":
                df.to_parquet(fh, index=False)
            else:
                fh.write(df.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        return self.path

    def merge(self, new: Any | None = None) -> Any:
        """Merge ``new`` rows into the file under :func:`file_lock` and return the whole table.

        The file is re-read under the lock, stored rows whose key is among the new rows are
        dropped, the new rows are appended (the last of duplicated new keys wins), the table is
        finalised, sorted and written atomically. Concurrent writers lose no rows.
        """
        import pandas as pd

        with file_lock(self.path):
            old = self.load()
            if new is not None and not new.empty:
                new = self.normalize(new) if self.normalize_new else new.copy()
                keys = [self._key(r) for r in new[list(self.key)].itertuples(index=False)]
                last = {k: i for i, k in enumerate(keys)}
                new = new[[last[k] == i for i, k in enumerate(keys)]]
            frames = []
            if not old.empty:
                new_keys = self.done_keys(new) if new is not None and not new.empty else set()
                keep = [self._key(k) not in new_keys
                        for k in old[list(self.key)].itertuples(index=False)]
                frames.append(old[keep])
            if new is not None and not new.empty:
                frames.append(new)
            df = pd.concat(frames, ignore_index=True) if frames else old
            if not df.empty:
                if self.finalize is not None:
                    df = self.finalize(df)
                if self.sort_by is not None:
                    df = df.sort_values(self.sort_by, kind="stable").reset_index(drop=True)
            self.write(df)
        return self._ordered(df)
