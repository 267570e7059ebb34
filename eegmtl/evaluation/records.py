"""Tidy EEG result records: the schema and their store (atomic, locked, resumable).

One record (row) per subject × fold × pipeline × seed, with the columns of the result-record
schema (``dataset, protocol, pipeline, subject, fold, seed``, the test metrics, ``score``,
``samples, time, n_epochs_trained, config_hash, config, versions``) plus MOABB's result columns,
so that the same file feeds :mod:`eegmtl.evaluation.tables`, :mod:`eegmtl.evaluation.plots` and
``moabb.analysis`` (through :func:`eegmtl.evaluation.tables.to_moabb`).

Storage is :class:`eegmtl._io.RecordStore`: every merge re-reads the file under a lock, replaces
rows with the same key (:data:`KEY_COLUMNS`) and rewrites it atomically, so parallel workers and
an interrupted run never lose finished rows, and a rerun skips them.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from eegmtl._io import RecordStore

__all__ = [
    "KEY_COLUMNS",
    "METRICS",
    "RECORD_COLUMNS",
    "TEST_METRICS",
    "combine_records",
    "done_keys",
    "drop_repeated_runs",
    "load_records",
    "merge_records",
    "normalize_records",
    "record_key",
    "record_store",
    "tag_alignment",
    "write_records",
]

#: Columns that identify a record; a rerun skips a row whose key (with the hash) exists.
KEY_COLUMNS: tuple[str, ...] = ("protocol", "pipeline", "subject", "fold", "seed", "config_hash")

#: Test-set metrics stored in every record.
METRICS: tuple[str, ...] = ("accuracy", "f1_macro", "kappa", "roc_auc")

#: Metrics measured on the test sessions; model selection must never use them.
TEST_METRICS = frozenset({"accuracy", "f1_macro", "kappa", "roc_auc", "score"})

#: Column order of the record files (the schema first, then MOABB and extra columns).
RECORD_COLUMNS: tuple[str, ...] = (
    # result-record schema (do not rename)
    "dataset", "protocol", "pipeline", "subject", "fold", "seed",
    "accuracy", "f1_macro", "kappa", "roc_auc", "score",
    "samples", "time", "n_epochs_trained", "config_hash", "config", "versions",
    # MOABB-compatible columns
    "samples_test", "session", "channels", "n_sessions", "n_classes",
    # validation part of the fold (model selection uses these, never the test set)
    "samples_val", "val_accuracy", "val_f1_macro",
    # provenance (not hashed): the training step's resolved gradient mode and settings, and
    # the machine the fit ran on (CPU model and SIMD level, GPU; ``eegmtl._io.machine_info``)
    "fit_seed", "val_subjects", "gradient_mode", "step_config", "machine",
)

_NUMERIC = (
    "subject", "fold", "seed", "accuracy", "f1_macro", "kappa", "roc_auc", "score", "samples",
    "time", "n_epochs_trained", "samples_test", "channels", "n_sessions", "n_classes",
    "samples_val", "val_accuracy", "val_f1_macro", "fit_seed",
)
_DTYPES = {"config_hash": str, "session": str, "val_subjects": str}
_KEY_TYPES = (str, str, int, int, int, str)


def record_store(path: str | os.PathLike[str] | io.StringIO) -> RecordStore:
    """The :class:`~eegmtl._io.RecordStore` of an EEG record file (key :data:`KEY_COLUMNS`)."""
    return RecordStore(path, KEY_COLUMNS, columns=RECORD_COLUMNS, sort_by=KEY_COLUMNS,
                       dtypes=_DTYPES, numeric=_NUMERIC, key_types=_KEY_TYPES)


def record_key(values: Iterable[Any]) -> tuple:
    """A :data:`KEY_COLUMNS` tuple with normalised types (str, str, int, int, int, str)."""
    return tuple(f(v) for f, v in zip(_KEY_TYPES, values))


def load_records(path: str | os.PathLike[str] | io.StringIO) -> pd.DataFrame:
    """Read a record file (CSV, or Parquet by extension).

    A missing file gives an empty frame with :data:`RECORD_COLUMNS`; an empty, truncated or
    corrupt file raises a :class:`ValueError` naming it.
    """
    store = record_store(path)
    return store.read(path) if isinstance(path, io.StringIO) else store.load()


def normalize_records(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as :func:`load_records` would return it after a CSV round trip (same dtypes and
    missing values), so in-memory and on-disk records compare equal."""
    return record_store(io.StringIO()).normalize(df)


def write_records(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically to ``path``; :data:`RECORD_COLUMNS` first, extra columns after.
    An interrupted write leaves the previous file intact."""
    return record_store(path).write(df)


def merge_records(new: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Add ``new`` rows to the record file at ``path`` safely across processes.

    Under an exclusive lock (``<path>.lock``) the file is re-read, rows with the same key
    (:data:`KEY_COLUMNS`) are replaced by the new ones and the union is written atomically.
    Several runs (two pipelines, a cluster sweep on a shared disk) can therefore add to one
    file without losing each other's rows. Returns the merged frame.
    """
    return record_store(path).merge(new)


def done_keys(df: pd.DataFrame) -> set[tuple]:
    """Set of :data:`KEY_COLUMNS` tuples present in ``df`` (types normalised)."""
    return record_store(io.StringIO()).done_keys(df)


def tag_alignment(df: pd.DataFrame) -> pd.DataFrame:
    """Suffix the pipeline names of Euclidean-aligned runs: ``+EA`` (transductive) or
    ``+EA[inductive]``, read from the ``alignment`` key of each row's ``config`` JSON, so that
    records with and without alignment can share one table."""
    if "config" not in df.columns or df.empty:
        return df
    suffix = {"transductive": "+EA", "inductive": "+EA[inductive]"}
    tags = {c: suffix.get(str(json.loads(c).get("alignment", "none")), "")
            for c in df["config"].dropna().unique() if str(c).startswith("{")}
    out = df.copy()
    out["pipeline"] = [p + tags.get(c, "") for p, c in zip(out["pipeline"], out["config"])]
    return out


def drop_repeated_runs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each run once: rows repeated across record files (same ``pipeline``,
    ``subject``, ``fold``, ``seed`` and ``config_hash``, e.g. a fold refitted into a second
    file) keep their first occurrence. A record taken over from another file
    (:mod:`eegmtl.evaluation.adopt`: ``adopted_from`` = ``<file>:<hash>``) is the run of that
    file's hash, so it and its original count once."""
    key = ["pipeline", "subject", "fold", "seed", "config_hash"]
    if not set(key) <= set(df.columns):  # not records of fits (e.g. a table of times)
        return df
    if "adopted_from" not in df:
        return df.drop_duplicates(key)
    origin = df["adopted_from"].astype("string").str.rsplit(":", n=1).str[-1]
    run = origin.fillna(df["config_hash"].astype("string"))
    keep = ~df[key[:-1]].assign(_run=run.to_numpy()).duplicated()
    return df[keep.to_numpy()]


def combine_records(paths: Iterable[str | os.PathLike[str]], *,
                    folds: Iterable[int] | None = None, tag: bool = True) -> pd.DataFrame:
    """Several EEG record files as one frame, as ``eegmtl report --combine`` reads them.

    Each file is read with :func:`load_records`, its aligned runs tagged ``+EA``
    (:func:`tag_alignment`; ``tag=False`` keeps the pipeline names as run, e.g. to match
    prediction files) and, with ``folds``, cut to those folds; the files are then
    concatenated in the order given and repeated runs dropped (:func:`drop_repeated_runs`:
    the first file wins). A missing file raises :class:`FileNotFoundError`.
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"record file(s) not found: {missing}")
    frames = []
    for path in paths:
        df = load_records(path)
        df = tag_alignment(df) if tag else df
        if folds is not None and "fold" in df.columns:
            df = df[df["fold"].isin(list(folds))]
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    return drop_repeated_runs(pd.concat(frames, ignore_index=True))
