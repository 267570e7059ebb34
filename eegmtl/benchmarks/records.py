"""Records of the vision benchmarks: the column schema and the record store.

One row per data set × method × seed × task (plus a ``task="avg"`` row per run), in a
:class:`eegmtl._io.RecordStore` keyed by ``(config_hash, task)``: merged atomically under a
lock, so parallel shards share one file, and Δp against EW (:func:`fill_delta_p`) is refreshed
on every merge.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from eegmtl._io import RecordStore
from eegmtl.mtl.metrics import delta_p

__all__ = [
    "COLUMNS",
    "HISTORY_COLUMNS",
    "fill_delta_p",
    "load_history",
    "load_records",
    "record_store",
    "write_history",
    "write_records",
]

#: Columns of the records, in file order (the result-record schema first).
COLUMNS: tuple[str, ...] = (
    "benchmark", "dataset", "model", "method", "seed", "epochs", "task", "accuracy",
    "avg_accuracy", "delta_p", "brier", "ece", "entropy", "conflict_rate", "time",
    "config_hash", "config", "weighting", "aggregator", "flat_rho", "n_train", "n_val",
    "n_test", "best_epoch", "val_avg_accuracy", "n_conflict_probes", "protocol_hash",
    "device", "machine", "versions", "gradient_mode", "step_config",
)

#: Leading columns of the per-epoch history file (then the trainer's epoch keys:
#: ``val_<task>_accuracy``, ``val_<task>_loss``, ``train_loss``, ``time``...).
HISTORY_COLUMNS: tuple[str, ...] = (
    "dataset", "model", "method", "seed", "epoch", "val_avg_accuracy", "config_hash",
)


def record_store(path: str | os.PathLike[str]) -> RecordStore:
    """The :class:`~eegmtl._io.RecordStore` of a vision results file: key
    ``(config_hash, task)``, :data:`COLUMNS` first, Δp refreshed on every merge."""
    return RecordStore(
        path, ("config_hash", "task"), columns=COLUMNS,
        sort_by=["dataset", "model", "method", "seed", "task"],
        dtypes={"config_hash": str, "protocol_hash": str}, finalize=fill_delta_p,
        normalize_new=False,
    )


def load_records(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results CSV (empty frame with :data:`COLUMNS` when the file does not exist; a
    truncated or corrupt file raises a :class:`ValueError` naming it)."""
    return record_store(path).load()


def fill_delta_p(records: pd.DataFrame) -> pd.DataFrame:
    """Recompute ``delta_p`` of every run against EW of the same ``protocol_hash`` and seed.

    Δp (Lin et al., RLW, TMLR 2022, Eq. 9; :func:`eegmtl.mtl.metrics.delta_p`) over the
    per-task test accuracies (higher is better), in %; the same value on every row of a run;
    NaN when the file holds no EW run of the group or an EW task accuracy is 0. EW itself
    gets 0.
    """
    df = records.copy()
    if df.empty:
        return df
    df["delta_p"] = np.nan
    per_task = df[df["task"] != "avg"]
    for _key, group in per_task.groupby(["protocol_hash", "seed"], dropna=False):
        base = group[group["method"] == "ew"]
        if base.empty:
            continue
        base_acc = dict(zip(base["task"], base["accuracy"].astype(float)))
        for chash, run in group.groupby("config_hash"):
            acc = dict(zip(run["task"], run["accuracy"].astype(float)))
            if set(acc) != set(base_acc) or any(v == 0 for v in base_acc.values()):
                continue  # Δp is undefined against a zero reference accuracy (NaN)
            value = delta_p(acc, {k: base_acc[k] for k in acc}, True)
            df.loc[df["config_hash"] == chash, "delta_p"] = value
    return df


def write_records(
    path: str | os.PathLike[str], new: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Merge ``new`` rows into the results file (atomic, under a lock) and refresh Δp.

    Rows of ``new`` replace existing rows with the same ``(config_hash, task)``. Returns the
    whole table as written.
    """
    return record_store(path).merge(new)


def history_store(path: str | os.PathLike[str]) -> RecordStore:
    """The :class:`~eegmtl._io.RecordStore` of a per-epoch history file: key
    ``(config_hash, epoch)``, :data:`HISTORY_COLUMNS` first."""
    return RecordStore(
        path, ("config_hash", "epoch"), columns=HISTORY_COLUMNS,
        sort_by=["dataset", "model", "method", "seed", "epoch"],
        dtypes={"config_hash": str}, key_types=(str, int), normalize_new=False,
    )


def load_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a per-epoch history file (empty frame when it does not exist)."""
    return history_store(path).load()


def write_history(
    path: str | os.PathLike[str], history: pd.DataFrame, run: dict[str, object]
) -> pd.DataFrame:
    """Merge one run's epoch history (``Trainer.history_frame()``) with the run's identifying
    columns ``run`` (dataset, model, method, seed, config_hash) into ``path``."""
    rows = history.assign(**run)
    return history_store(path).merge(rows)
