"""Fit one method on one fold and return its record (the unit of work of the fold runner).

:func:`fit_seed` derives the seed of every fit from (seed, subject, fold) with numpy's
``SeedSequence``; ``_run_task`` seeds the global and torch generators with it, fits the
estimator (with the fold's validation rows when ``fit`` takes ``X_val`` / ``y_val``, and its
validation and test trials without labels for ``unlabeled_trials="transductive"``:
:func:`unlabeled_rows`), scores the test rows with :mod:`eegmtl.evaluation.scoring` and returns
one record of the EEG record schema (:mod:`eegmtl.evaluation.records`). With a
``checkpoint_dir`` in the runner's settings, estimators that write epoch checkpoints (the
braindecode baselines and the MixNet family) get a folder per fit there, written at most every
:data:`CHECKPOINT_EVERY_S` seconds unless the estimator sets its own ``checkpoint_every_s``, and
resume an interrupted fit exactly; the record's ``time`` then counts the training time carried
over.
:func:`eegmtl.evaluation.runner.run_protocol` builds the tasks and runs them in joblib workers.
"""

from __future__ import annotations

import inspect
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from eegmtl._io import stable_json
from eegmtl.evaluation.predictions import fit_stem
from eegmtl.evaluation.records import write_records
from eegmtl.evaluation.scoring import (
    compute_metrics,
    fold_predictions,
    predict_with_scores,
    score_predictions,
)
from eegmtl.evaluation.splitters import Split
from eegmtl.parallel import keep_worker_alive, pinned_threads

__all__ = ["CHECKPOINT_EVERY_S", "TEST_SESSION_LABEL", "accepts_validation", "fit_seed",
           "set_random_state", "unlabeled_rows"]

#: MOABB-style name of the test sessions 4–5 (MOABB calls 2b's sessions 0train … 4test)
TEST_SESSION_LABEL = "3test+4test"
#: seconds between two epoch checkpoints of a fit the runner checkpoints (at most one write per
#: interval: an interrupted fit loses less than this much training)
CHECKPOINT_EVERY_S = 30.0


def fit_seed(seed: int, subject: int, fold: int) -> int:
    """The seed of one fit, derived from (seed, subject, fold) with numpy's ``SeedSequence``,
    so every fit is seeded explicitly and runs give the same result in any order or process."""
    return int(np.random.SeedSequence([int(seed), int(subject), int(fold)]).generate_state(1)[0])


def set_random_state(est: Any, value: int) -> Any:
    """``est`` with every ``random_state`` (its own and its steps') set to ``value``."""
    if hasattr(est, "get_params"):
        keys = [k for k in est.get_params(deep=True)
                if k == "random_state" or k.endswith("__random_state")]
        if keys:
            est.set_params(**dict.fromkeys(keys, value))
    return est


def _fit_takes(est: Any, *names: str) -> bool:
    """Whether ``est.fit`` has every parameter in ``names``."""
    try:
        params = inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False
    return all(n in params for n in names)


def accepts_validation(est: Any) -> bool:
    """Whether ``est.fit`` takes a validation fold (``X_val``, ``y_val``)."""
    return _fit_takes(est, "X_val", "y_val")


def unlabeled_rows(est: Any, split: Split) -> np.ndarray | None:
    """Rows whose trials ``est`` gets *without labels* at fit (``fit(..., X_unlabeled=...)``):
    the fold's validation and test rows, for an estimator with ``unlabeled_trials=
    "transductive"`` (:class:`eegmtl.mixnet.classifier.MixNetClassifier`), else ``None``."""
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    if params.get("unlabeled_trials") != "transductive":
        return None
    if not _fit_takes(est, "X_unlabeled"):
        raise TypeError(f"{type(est).__name__} has unlabeled_trials='transductive' but its fit "
                        "takes no X_unlabeled.")
    return np.concatenate([split.val, split.test])


def _n_epochs(est: Any) -> float:
    for obj in (est, getattr(est, "steps", [[None, None]])[-1][1]):
        if obj is None:
            continue
        for attr in ("n_epochs_trained_", "n_epochs_"):
            v = getattr(obj, attr, None)
            if v is not None:
                return float(v)
        hist = getattr(obj, "history_", None)
        if hist is not None and hasattr(hist, "__len__") and not isinstance(hist, pd.DataFrame):
            return float(len(hist))  # skorch / braindecode History: one entry per epoch
    return float("nan")


def _step_config(est: Any) -> dict[str, Any]:
    """The training step's resolved arithmetic choices of a fitted estimator
    (``step_config_``, e.g. MixNet's), or ``{}`` for estimators without one."""
    for obj in (est, getattr(est, "steps", [[None, None]])[-1][1]):
        cfg = getattr(obj, "step_config_", None)
        if isinstance(cfg, Mapping):
            return dict(cfg)
    return {}


@dataclass(frozen=True)
class _Task:
    protocol: str
    pipeline: str
    subject: int
    fold: int
    seed: int
    config_hash: str
    config_json: str
    split: Split
    method: Any  # MethodSpec or an unfitted sklearn estimator


def _checkpointable(est: Any) -> bool:
    """Estimators that write throttled epoch checkpoints (``checkpoint_dir`` and
    ``checkpoint_every_s`` parameters, ``fit(..., resume=...)``): the braindecode baselines and
    :class:`~eegmtl.mixnet.MixNetClassifier`."""
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    return ("checkpoint_dir" in params and "checkpoint_every_s" in params
            and _fit_takes(est, "resume"))


def _build(method: Any) -> Any:
    if hasattr(method, "build"):
        return method.build()
    return clone(method)


def _start(task: _Task, X: np.ndarray, common: Mapping[str, Any]) -> tuple[Any, int, np.ndarray]:
    """Seeded, unfitted estimator of ``task``, its fit seed and the trials it sees (aligned on
    the fold's training trials for inductive alignment)."""
    seed = fit_seed(task.seed, task.subject, task.fold)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (global state, for estimators that use it)
    est = set_random_state(_build(task.method), seed)
    if "torch" in sys.modules:  # the factory imported a torch-based estimator: seed it too
        from eegmtl.mtl.runtime import seed_everything

        seed_everything(seed)
    if common.get("alignment") == "inductive":  # references from this fold's training trials
        from eegmtl.eeg.alignment import align_fold

        X = align_fold(X, common["recordings"], task.split.train, mode="inductive")
    return est, seed, X


def _run_task(
    task: _Task, X: np.ndarray, y: np.ndarray, common: Mapping[str, Any],
) -> dict[str, Any]:
    """Fit one method on one fold and return its record (runs in a joblib worker)."""
    keep_worker_alive()  # one worker runs many fits: no new process (and CUDA context) per fit
    sp = task.split
    est, seed, X = _start(task, X, common)
    X_tr, y_tr = X[sp.train], y[sp.train]
    X_va, y_va = X[sp.val], y[sp.val]
    stem = fit_stem(task.protocol, task.pipeline, task.subject, task.fold, task.seed,
                    task.config_hash)
    fit_kwargs: dict[str, Any] = {}
    rows = unlabeled_rows(est, sp)
    if rows is not None:  # trials only: their labels never leave this function
        fit_kwargs["X_unlabeled"] = X[rows]
    if common.get("checkpoint_dir") and _checkpointable(est):  # an interrupted fit resumes
        folder = Path(common["checkpoint_dir"]) / stem
        est.set_params(checkpoint_dir=str(folder))
        if est.get_params(deep=False)["checkpoint_every_s"] is None:  # not after every epoch
            est.set_params(checkpoint_every_s=CHECKPOINT_EVERY_S)
        fit_kwargs["resume"] = folder.is_dir() and any(folder.iterdir())  # an earlier attempt
    t0 = time.perf_counter()
    with pinned_threads(common.get("torch_threads")):  # torch + BLAS threads, restored after
        if len(sp.val) and accepts_validation(est):
            est.fit(X_tr, y_tr, X_val=X_va, y_val=y_va, **fit_kwargs)
        else:
            est.fit(X_tr, y_tr, **fit_kwargs)
    # a resumed fit counts the training time its checkpoint carried over
    fit_time = time.perf_counter() - t0 + float(getattr(est, "resumed_seconds_", 0.0))
    return _record(task, est, seed, X, y, common, fit_time)


def _run_batch(
    tasks: list[_Task], X: np.ndarray, y: np.ndarray, common: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Fit the tasks of one batch (one braindecode recipe, fits of equal training size) at
    once with :func:`eegmtl.eeg.batched_fit.fit_batched` and return their records; each
    record's ``time`` is the batch's wall time divided by the number of fits."""
    from eegmtl.eeg.batched_fit import fit_batched

    keep_worker_alive()
    started = [_start(t, X, common) for t in tasks]
    data = [(Xi[t.split.train], y[t.split.train], Xi[t.split.val], y[t.split.val])
            for t, (_, _, Xi) in zip(tasks, started, strict=True)]
    t0 = time.perf_counter()
    with pinned_threads(common.get("torch_threads")):
        fitted = fit_batched([est for est, _, _ in started], data)
    fit_time = (time.perf_counter() - t0) / len(tasks)
    return [_record(t, est, seed, Xi, y, common, fit_time)
            for t, est, (_, seed, Xi) in zip(tasks, fitted, started, strict=True)]


def _record(task: _Task, est: Any, seed: int, X: np.ndarray, y: np.ndarray,
            common: Mapping[str, Any], fit_time: float) -> dict[str, Any]:
    """Score a fitted estimator on the task's test (and validation) trials, write its history
    and predictions when asked, and return its record."""
    sp = task.split
    X_va, y_va = X[sp.val], y[sp.val]
    stem = fit_stem(task.protocol, task.pipeline, task.subject, task.fold, task.seed,
                    task.config_hash)
    step_cfg = _step_config(est)
    pred, scores = predict_with_scores(est, X[sp.test])
    classes = getattr(est, "classes_", None)
    test = score_predictions(y[sp.test], pred, scores, classes)
    val = compute_metrics(est, X_va, y_va) if len(sp.val) else {}
    if common.get("history_dir"):  # per-epoch history and per-step task weights (MixNet)
        for attr, suffix in (("history_", "history"), ("weights_history_", "weights")):
            hist = getattr(est, attr, None)
            if isinstance(hist, pd.DataFrame):
                write_records(hist, Path(common["history_dir"]) / f"{stem}_{suffix}.csv")
    if common.get("predictions_dir"):
        write_records(fold_predictions(y, sp.test, pred, scores, classes, task,
                                       common.get("trial_meta")),
                      Path(common["predictions_dir"]) / f"{stem}_predictions.csv")
    return {
        "dataset": common["dataset"], "protocol": task.protocol, "pipeline": task.pipeline,
        "subject": task.subject, "fold": task.fold, "seed": task.seed,
        **test, "score": test["roc_auc"],
        "samples": len(sp.train), "time": fit_time, "n_epochs_trained": _n_epochs(est),
        "config_hash": task.config_hash, "config": task.config_json,
        "versions": common["versions"],
        "samples_test": len(sp.test),
        "session": TEST_SESSION_LABEL, "channels": int(X.shape[1]) if X.ndim > 1 else 1,
        "n_sessions": common["n_sessions"][task.subject],
        "n_classes": len(np.unique(y[sp.train])),
        "samples_val": len(sp.val),
        "val_accuracy": val.get("accuracy", float("nan")),
        "val_f1_macro": val.get("f1_macro", float("nan")),
        "fit_seed": seed,
        "val_subjects": ";".join(str(s) for s in sp.val_subjects),
        "gradient_mode": step_cfg.get("gradient_mode", ""),
        "step_config": stable_json(step_cfg) if step_cfg else "",
        "machine": common.get("machine"),
    }
