"""Records of fits already made by another command, taken over instead of refitted.

The record store names a fit by ``(protocol, pipeline, subject, fold, seed, config_hash)``; the
hash covers the protocol settings (split, alignment, validation mode, data label) and the
pipeline's configuration (:func:`eegmtl.evaluation.runner.run_protocol`). The same trials of the
local export carry two data labels: :data:`~eegmtl.evaluation.runner.DEFAULT_DATASET` where the
caller passes the data (``eegmtl benchmark``) and
:data:`~eegmtl.evaluation.runner.DEFAULT_DATA_SOURCE` where the runner loads them itself
(``eegmtl sd`` / ``eegmtl si`` and the ``pipelines/`` scripts). One fit made by both commands
therefore has two hashes, and a benchmark run would repeat the fits those commands recorded.

:func:`adoptable` finds, for the fits a run still has to make, records of the same fits in other
record files: a record is taken only if its configuration, with the data label set to the
run's, hashes *exactly* to the planned fit's hash (every other setting equal) and its data
label is one of :data:`SAME_DATA`. The record keeps its scores, time, versions and machine; its
``config`` and ``config_hash`` are the run's, and ``adopted_from`` names the file and the
original hash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from eegmtl._io import config_hash, stable_json
from eegmtl.evaluation.records import KEY_COLUMNS, load_records
from eegmtl.evaluation.runner import DEFAULT_DATA_SOURCE, DEFAULT_DATASET, UNHASHED_KEYS

__all__ = ["SAME_DATA", "adoptable", "read_candidates", "relabel"]

#: data labels of the same trials (the local export in µV, all sessions)
SAME_DATA = frozenset({DEFAULT_DATASET, DEFAULT_DATA_SOURCE})


def relabel(config: str, dataset: str = DEFAULT_DATASET) -> tuple[str, str] | None:
    """A record's ``config`` (JSON) with its data label set to ``dataset``, and its hash.

    The hash is computed as :func:`~eegmtl.evaluation.runner.run_protocol` computes it (the
    protocol settings and the method configuration without
    :data:`~eegmtl.evaluation.runner.UNHASHED_KEYS`). ``None`` when the record's data label is
    not in :data:`SAME_DATA` (other data: nothing to adopt).
    """
    full = json.loads(config)
    if full.get("data") not in SAME_DATA or dataset not in SAME_DATA:
        return None
    full["data"] = dataset
    method = full.get("method_config", {})
    hashed = {**full, "method_config": {k: v for k, v in method.items()
                                        if k not in UNHASHED_KEYS}}
    return stable_json(full), config_hash(hashed)


def read_candidates(paths: Sequence[str | PathLike[str]]) -> pd.DataFrame:
    """The records of ``paths`` (in that order) with an ``adopted_from`` column
    (``<file name>:<config_hash>``); files without the key columns are skipped."""
    frames = []
    for path in paths:
        df = load_records(path)
        if df.empty or not set(KEY_COLUMNS) | {"config"} <= set(df.columns):
            continue
        frames.append(df.assign(adopted_from=Path(path).name + ":" + df["config_hash"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def adoptable(todo: pd.DataFrame, candidates: pd.DataFrame,
              dataset: str = DEFAULT_DATASET) -> pd.DataFrame:
    """Records of ``candidates`` that are fits of ``todo``, relabelled as ``todo``'s.

    Parameters
    ----------
    todo : DataFrame
        The fits to make, with the :data:`~eegmtl.evaluation.records.KEY_COLUMNS`
        (``run_protocol(..., plan_only=True)``).
    candidates : DataFrame
        Records of other files (:func:`read_candidates`); where several hold one fit, a fit
        trained alone is preferred to one trained in a batch of fits (``step_config``
        ``batched_fits``), then the earlier row.
    dataset : str
        The run's data label.

    Returns
    -------
    DataFrame
        One record per adoptable fit, with the run's ``config`` and ``config_hash`` and the
        candidates' other columns (``adopted_from`` included); empty when there is none.
    """
    if todo.empty or candidates.empty:
        return pd.DataFrame()
    keys = ["protocol", "pipeline", "subject", "fold", "seed"]
    wanted = todo[list(KEY_COLUMNS)].drop_duplicates()
    pool = candidates.merge(wanted[keys], on=keys)  # same fit by name: check the hash
    if pool.empty:
        return pd.DataFrame()
    relabelled = [relabel(c, dataset) for c in pool["config"]]
    pool = pool.assign(config=[r[0] if r else None for r in relabelled],
                       config_hash=[r[1] if r else None for r in relabelled])
    pool = pool.merge(wanted, on=list(KEY_COLUMNS))  # the exact planned fit
    batched = pool.get("step_config", pd.Series("", index=pool.index)).astype(str)
    pool = (pool.assign(_batched=batched.str.contains("batched_fits"))
            .sort_values("_batched", kind="stable").drop(columns="_batched"))
    return pool.drop_duplicates(list(KEY_COLUMNS)).reset_index(drop=True)
