"""The tidy record store: a CSV (or Parquet) file of records merged atomically under a lock.

:class:`RecordStore` re-reads the file under :func:`~eegmtl._io.files.file_lock`, replaces the
rows whose key is among the new ones and writes the table with
:func:`~eegmtl._io.files.atomic_open`, so concurrent writers lose no rows.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import atomic_open, file_lock

__all__ = ["RecordStore"]


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
