"""The fold runner: every method on every subject × fold × seed of a protocol, one record
per fit, in parallel, resumable.

:func:`run_protocol` builds the folds with :mod:`eegmtl.evaluation.splitters`, the estimators
with :mod:`eegmtl.evaluation.methods`, fits them with joblib (any backend;
:mod:`eegmtl.evaluation.dispatch`), scores the test rows
with :mod:`eegmtl.evaluation.scoring` and merges one record per fit into the record file
(:mod:`eegmtl.evaluation.records`), atomically, so an interrupted run loses at most the fits in
progress and a rerun skips finished rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegmtl._io import config_hash, library_versions, machine_info, stable_json
from eegmtl.evaluation.dispatch import batched_units, fit_units
from eegmtl.evaluation.fit_fold import TEST_SESSION_LABEL as TEST_SESSION_LABEL
from eegmtl.evaluation.fit_fold import _Task, fit_seed
from eegmtl.evaluation.methods import resolve_methods
from eegmtl.evaluation.predictions import fit_stem
from eegmtl.evaluation.records import (
    KEY_COLUMNS,
    RECORD_COLUMNS,
    done_keys,
    load_records,
    normalize_records,
    record_key,
)
from eegmtl.evaluation.splitters import (
    make_splits,
    normalize_protocol,
    trial_subjects_sessions,
)
from eegmtl.parallel import WorkerDiedError, worker_threads

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_DATA_SOURCE",
    "WorkerDiedError",
    "fit_seed",
    "load_default_data",
    "run_protocol",
]

#: config keys that do not change results and are left out of the config hash
UNHASHED_KEYS = frozenset({"device", "verbose", "progress", "n_jobs"})

#: ``dataset`` column of records made on the local 2b export (every script uses this label)
DEFAULT_DATASET = "BNCI2014_004-export"
#: how :func:`run_protocol` loads the data when none is given (recorded in the config hash)
DEFAULT_DATA_SOURCE = "load_bci2b(source='export', units='uV')"


def load_default_data(
    subjects: Sequence[int] = tuple(range(1, 10)),
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """BCIC IV 2b from the local epoched export, all sessions, in µV (the deep models are
    trained on raw µV input; CSP-type pipelines are scale-free)."""
    from eegmtl.eeg.datasets import load_bci2b

    return load_bci2b(source="export", subjects=list(subjects), units="uV")


def _validate_data(data: Any) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    try:
        X, y, metadata = data
    except (TypeError, ValueError):
        raise TypeError("data must be a tuple (X, y, metadata)") from None
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 3:
        raise ValueError(f"X must be (n_trials, n_channels, n_times), got shape {X.shape}")
    if not (len(X) == len(y) == len(metadata)):
        raise ValueError(f"X ({len(X)}), y ({len(y)}) and metadata ({len(metadata)}) must have "
                         "one row per trial")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or Inf; clean the epochs before evaluating")
    return X, y, metadata.reset_index(drop=True)


# --------------------------------------------------------------------------- the runner
def run_protocol(
    protocol: str,
    methods: Sequence[str] | Mapping[str, Any],
    subjects: Sequence[int] | None = None,
    data: tuple[np.ndarray, np.ndarray, pd.DataFrame] | None = None,
    *,
    n_folds: int = 5,
    folds: Sequence[int] | None = None,
    seeds: Sequence[int] = (0,),
    split_seed: int = 42,
    n_jobs: int = 1,
    backend: str = "loky",
    address: str | None = None,
    results_path: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    dataset: str = DEFAULT_DATASET,
    data_source: str | None = None,
    history_dir: str | os.PathLike[str] | None = None,
    torch_threads: int | None = None,
    predictions_dir: str | os.PathLike[str] | None = None,
    alignment: str = "none",
    validation: str = "random",
    checkpoint_dir: str | os.PathLike[str] | None = None,
    plan_only: bool = False,
    expected_fit_s: Mapping[str, float] | None = None,
    batch_fits: int = 1,
    deadline: float | None = None,
    batch_speedup: float = 1.0,
) -> pd.DataFrame:
    """Run ``methods`` on every subject × fold × seed of ``protocol`` and record the results.

    Parameters
    ----------
    protocol : str
        ``"subject_dependent"`` (``"sd"``) or ``"subject_independent"`` (``"si"``).
    methods : sequence of str or mapping
        Registry names of :mod:`eegmtl.evaluation.methods` (``"MixNet"``, ``"CSP+LDA"``, ...),
        or a mapping ``pipeline name -> registry name | MethodSpec | unfitted estimator``.
        Estimators whose ``fit`` accepts ``X_val``/``y_val`` (MixNet) get the fold's
        validation part for early stopping; others (the baselines) are fitted on the training
        part only.
    subjects : sequence of int, optional
        Target subjects; default all subjects in the metadata.
    data : (X, y, metadata), optional
        Epochs ``(n_trials, n_channels, n_times)``, labels and per-trial metadata with
        ``subject`` and ``session``. Default: ``load_bci2b(source="export")``, all subjects.
    n_folds, split_seed : int
        Folds per subject and their ``random_state``; default 5 and 42 (reference).
    folds : sequence of int, optional
        Run only these folds (1-based), e.g. ``(1,)`` for a quick run. Default all.
    seeds : sequence of int
        Repetitions; each fit is seeded with :func:`fit_seed` (seed, subject, fold).
    n_jobs : int
        Parallel fits (joblib); ``-1`` uses all cores.
    backend : str
        ``"loky"`` (default), ``"dask"``, ``"ray"`` or any joblib backend name
        (:func:`eegmtl.parallel.parallel_backend`). Without ``address``, ``"dask"`` / ``"ray"``
        start a local cluster of ``n_jobs`` workers for the run. The records do not depend on
        the backend (not part of the config hash).
    address : str, optional
        A running cluster: Dask scheduler address or Ray address (``"auto"``,
        ``"ray://host:10001"``); its workers must be able to import eegmtl.
    results_path : path, optional
        CSV (or ``.parquet``) record file. Records are rewritten atomically after every finished
        fit. ``None`` keeps records in memory only.
    resume : bool
        Skip fits whose (protocol, pipeline, subject, fold, seed, config_hash) is already in
        ``results_path``; ``False`` drops those rows and refits them.
    progress : bool
        tqdm progress bar over fits.
    method_params : mapping, optional
        ``{pipeline name: {config key: value}}`` overrides (e.g. ``max_epochs``).
    dataset : str
        Value of the ``dataset`` column.
    data_source : str, optional
        Identifies the data in the config hash (default: ``dataset``).
    history_dir : path, optional
        Save each fit's training history (an estimator ``history_`` DataFrame) as CSV here.
    torch_threads : int, optional
        torch and BLAS threads of each fit (:func:`eegmtl.parallel.pinned_threads`); default 1
        when fits run in workers, unchanged for a serial run in this process.
    predictions_dir : path, optional
        Save each fit's test-set predictions (:func:`fold_predictions`: true and predicted label
        and class probabilities per trial, with the trial's subject/session) as CSV here.
    alignment : {"none", "transductive", "inductive"}
        Euclidean alignment per recording (subject × session, :mod:`eegmtl.eeg.alignment`)
        before every fit: ``"transductive"`` aligns each recording on its own trials, test
        recordings included (the cross-subject literature's setting); ``"inductive"`` fits the
        references on the fold's training trials only. Recorded as the config key
        ``alignment`` (absent for ``"none"``, so earlier records keep their hashes).
    checkpoint_dir : path, optional
        Epoch checkpoints of the fits in progress, one folder per fit (estimators with
        throttled epoch checkpoints: the braindecode baselines and the MixNet family;
        :data:`eegmtl.evaluation.fit_fold.CHECKPOINT_EVERY_S`). A fit interrupted by a crash
        or a kill continues from its last checkpoint when the run is started again, with the
        result of an uninterrupted fit; a folder is deleted once its record is written.
        Not part of the config hash.
    plan_only : bool, default False
        Fit nothing; return the fits still to run instead (see Returns), for
        :func:`eegmtl.evaluation.estimate.estimate_remaining`.
    expected_fit_s : mapping, optional
        ``{pipeline name: expected seconds per fit}``. When given, fits start longest first
        (pipelines without an entry last; otherwise in the usual subject, fold, pipeline
        order), so that parallel workers do not wait on one long fit started last (longest
        processing time first scheduling). Only the order changes: every fit is seeded from
        its own key, so the records are the same.
    batch_fits : int, default 1
        With ``K > 1``, the fits of a braindecode pipeline
        (:class:`~eegmtl.eeg.deep_baselines.BraindecodeClassifier`) that have a validation part
        are trained up to K at a time as one stacked network
        (:func:`eegmtl.eeg.batched_fit.fit_batched`; fits of one pipeline with equal training
        sizes), each with its own seed, data and early stopping; their records say so
        (``step_config`` ``{"batched_fits": k}``) and their ``time`` is the batch's wall time
        over k. Other pipelines are fitted one by one. No epoch checkpoints inside a batch.
    deadline : float, optional
        Wall-clock time (``time.time()``) by which the run should end: a fit starts only if
        ``now + expected_fit_s[pipeline]`` is before it — once fits of the pipeline have
        finished in this call, the median of their times instead —, a fit without an expected
        time only while the deadline has not passed; the others are left for a later run (the
        same call resumes them). A batch of 2 to ``batch_fits`` fits is expected to take
        ``max(1, batch_fits / batch_speedup)`` single fits' time, whatever its size (a smaller
        batch takes no longer than a full one), and a finished batch counts as that many.
        Fits are handed to the workers one at a time when a deadline is set, so the check is
        made as each fit starts.
    batch_speedup : float, default 1.0
        How many times faster a fit runs inside a batch of ``batch_fits`` than alone (e.g. the
        ``batched_speedup`` that ``eegmtl bench fits`` measured on the device), for the
        ``deadline`` rule only; 1.0 assumes no gain.

    Returns
    -------
    DataFrame
        The records of all requested fits (finished now or earlier), sorted by key;
        ``attrs["n_fitted"]`` is the number of fits this call ran (0 when every fit had a
        record) and ``attrs["n_deferred"]`` the number it left for a later run because of
        ``deadline``. With ``plan_only``: one row per fit still to run (``protocol``,
        ``pipeline``, ``subject``, ``fold``, ``seed``, ``config_hash`` and ``checkpoint``,
        whether an interrupted fit's epoch checkpoint is in ``checkpoint_dir``), with
        ``attrs["n_done"]``, the requested fits that already have a record.
    """
    protocol = normalize_protocol(protocol)
    if batch_fits < 1:
        raise ValueError(f"batch_fits must be >= 1, got {batch_fits}.")
    if not batch_speedup > 0:
        raise ValueError(f"batch_speedup must be > 0, got {batch_speedup}.")
    if folds is not None:
        unknown = sorted({int(f) for f in folds} - set(range(1, int(n_folds) + 1)))
        if unknown:
            raise ValueError(f"folds {unknown} do not exist: with n_folds={n_folds} the folds "
                             f"are 1-{n_folds}.")
    if data is None:
        # SD needs only the target subjects' trials; SI needs every subject (the training pool)
        needed = (subjects if protocol == "subject_dependent" and subjects is not None
                  else range(1, 10))
        data = load_default_data(sorted({int(s) for s in needed}))
        data_source = data_source or DEFAULT_DATA_SOURCE
    X, y, metadata = _validate_data(data)
    all_subjects, sessions = trial_subjects_sessions(metadata)
    subjects = (sorted(set(all_subjects.tolist())) if subjects is None
                else [int(s) for s in subjects])
    seeds = [int(s) for s in seeds]
    resolved = resolve_methods(methods, protocol, method_params)
    protocol_cfg = {"protocol": protocol, "n_folds": int(n_folds), "split_seed": int(split_seed),
                    "data": data_source or dataset}
    recordings = np.char.add(np.char.add(all_subjects.astype(str), "-"), sessions.astype(str))
    if alignment not in ("none", "transductive", "inductive"):
        raise ValueError(f"alignment must be 'none', 'transductive' or 'inductive', got "
                         f"{alignment!r}.")
    if alignment != "none":
        protocol_cfg["alignment"] = alignment
    if validation != "random":  # absent for the reference split, so earlier hashes hold
        protocol_cfg["validation"] = validation
    if alignment == "transductive":  # each recording on its own trials: the same in every fold
        from eegmtl.eeg.alignment import align_recordings

        X = align_recordings(X, recordings, mode="transductive")

    tasks: list[_Task] = []
    for subject in subjects:
        splits = make_splits(protocol, metadata, subject, n_folds, split_seed, y=y,
                             validation=validation)
        for sp in splits:
            if folds is not None and sp.fold not in set(folds):
                continue
            for name, (method, cfg) in resolved.items():
                full = {**protocol_cfg, "method_config": cfg}
                hashed = {**protocol_cfg,
                          "method_config": {k: v for k, v in cfg.items()
                                            if k not in UNHASHED_KEYS}}
                h = config_hash(hashed)
                for seed in seeds:
                    tasks.append(_Task(protocol, name, subject, sp.fold, seed, h,
                                       stable_json(full), sp, method))

    existing = load_records(results_path) if results_path is not None else pd.DataFrame(
        columns=list(RECORD_COLUMNS))
    wanted = {(t.protocol, t.pipeline, t.subject, t.fold, t.seed, t.config_hash) for t in tasks}
    if not resume and not existing.empty:
        keep = [record_key(k) not in wanted
                for k in existing[list(KEY_COLUMNS)].itertuples(index=False)]
        existing = existing[keep]
    done = done_keys(existing) if resume else set()
    todo = [t for t in tasks
            if (t.protocol, t.pipeline, t.subject, t.fold, t.seed, t.config_hash) not in done]
    if expected_fit_s:  # longest first (stable: the usual order within a pipeline)
        todo.sort(key=lambda t: -float(expected_fit_s.get(t.pipeline, 0.0) or 0.0))
    if plan_only:
        return _plan(todo, len(tasks) - len(todo), checkpoint_dir)

    common = {
        "dataset": dataset,
        "versions": json.dumps(library_versions(), sort_keys=True),
        "machine": json.dumps(machine_info(), sort_keys=True),
        "n_sessions": {int(s): int(len(np.unique(sessions[all_subjects == s])))
                       for s in np.unique(all_subjects)},
        "history_dir": os.fspath(history_dir) if history_dir is not None else None,
        "predictions_dir": os.fspath(predictions_dir) if predictions_dir is not None else None,
        "trial_meta": (metadata[[c for c in ("subject", "session", "session_index")
                                 if c in metadata.columns]]
                       if predictions_dir is not None else None),
        "torch_threads": worker_threads(torch_threads, backend, n_jobs),
        "alignment": alignment,
        "recordings": recordings,
        "checkpoint_dir": os.fspath(checkpoint_dir) if checkpoint_dir is not None else None,
    }
    rows = existing.to_dict("records") if not existing.empty else []
    n_deferred = 0
    if todo:
        units = batched_units(todo, batch_fits) if batch_fits > 1 else list(todo)
        n_deferred = fit_units(
            units, X, y, common, rows, desc=protocol, n_jobs=n_jobs, backend=backend,
            address=address, torch_threads=torch_threads, results_path=results_path,
            checkpoint_dir=checkpoint_dir, progress=progress, deadline=deadline,
            expected_fit_s=expected_fit_s, batch_fits=batch_fits, batch_speedup=batch_speedup)
    if results_path is not None and Path(results_path).exists():
        df = load_records(results_path)
    else:
        df = normalize_records(_sorted(pd.DataFrame(rows, columns=None if rows
                                                    else list(RECORD_COLUMNS))))
    mask = [record_key(k) in wanted for k in df[list(KEY_COLUMNS)].itertuples(index=False)]
    out = df[mask].reset_index(drop=True)
    out.attrs["n_fitted"] = len(todo) - n_deferred
    out.attrs["n_deferred"] = n_deferred
    return out


def _plan(todo: list[_Task], n_done: int,
          checkpoint_dir: str | os.PathLike[str] | None) -> pd.DataFrame:
    """The fits of ``todo`` as a frame (``plan_only`` of :func:`run_protocol`)."""
    def has_checkpoint(t: _Task) -> bool:
        if checkpoint_dir is None:
            return False
        folder = Path(checkpoint_dir) / fit_stem(t.protocol, t.pipeline, t.subject, t.fold,
                                                 t.seed, t.config_hash)
        return folder.is_dir() and any(folder.iterdir())

    plan = pd.DataFrame(
        [(t.protocol, t.pipeline, t.subject, t.fold, t.seed, t.config_hash, has_checkpoint(t))
         for t in todo],
        columns=[*KEY_COLUMNS, "checkpoint"])
    plan.attrs["n_done"] = n_done
    return plan


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    return df.sort_values(["protocol", "pipeline", "subject", "fold", "seed", "config_hash"],
                          kind="stable").reset_index(drop=True)
