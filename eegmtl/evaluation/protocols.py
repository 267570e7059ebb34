"""Subject-dependent and subject-independent protocols of the MixNet paper, and the fold runner.

Protocols (Autthasan et al., 2024, IEEE TNSRE, MixNet, Section "Experimental settings"; public
code ``min2net/preprocessing/*/time_domain.py`` and ``experiments/run_MixNet.py``; facts in
``shared/docs/mixnet-reference.md`` §5):

- **Subject-dependent (SD)**, BCIC IV 2b: per subject, ``StratifiedKFold(5, shuffle=True,
  random_state=42)`` on the trials of sessions 1–3 (the competition "T" data) gives 4/5 train and
  1/5 validation; the **test set is always sessions 4–5** (the "E" data) of that subject.
  5 models per subject.
- **Subject-independent (SI)**: for each target subject ``s``, the other 8 subjects are split
  **by subject** into 5 folds, exactly as the reference code does (``StratifiedKFold(5,
  shuffle=True, random_state=42)`` on a dummy array of the 8 subjects, so validation sets hold
  2, 2, 2, 1 and 1 subjects). Training pools sessions 1–5 of the remaining subjects, validation
  pools sessions 1–5 of the validation subjects, the test set is sessions 4–5 of ``s`` only
  (``s``'s sessions 1–3 are unused). 5 models per target subject.

:func:`run_protocol` fits every method on every subject × fold × seed (in parallel with joblib,
any backend), scores the test set and appends one tidy record per fit to a CSV file (see
:mod:`eegmtl.evaluation.results` for the schema), atomically, so an interrupted run loses at most
the fits in progress and a rerun skips finished rows.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from eegmtl.evaluation.results import (
    KEY_COLUMNS,
    RECORD_COLUMNS,
    _key,
    config_hash,
    done_keys,
    library_versions,
    load_records,
    merge_records,
    normalize_records,
    stable_json,
    write_records,
)

__all__ = [
    "PROTOCOLS",
    "Split",
    "compute_metrics",
    "fit_seed",
    "load_default_data",
    "make_splits",
    "normalize_protocol",
    "run_protocol",
    "subject_dependent_splits",
    "subject_independent_splits",
]

#: canonical protocol names (records use these) and accepted aliases
PROTOCOLS: dict[str, str] = {
    "subject_dependent": "subject_dependent", "sd": "subject_dependent",
    "subject_independent": "subject_independent", "si": "subject_independent",
}

#: MOABB-style name of the test sessions 4–5 (MOABB calls 2b's sessions 0train … 4test)
TEST_SESSION_LABEL = "3test+4test"

#: config keys that do not change results and are left out of the config hash
UNHASHED_KEYS = frozenset({"device", "verbose", "progress", "n_jobs"})


def normalize_protocol(protocol: str) -> str:
    """Canonical protocol name (``"sd"`` → ``"subject_dependent"``, ``"si"`` → ...)."""
    try:
        return PROTOCOLS[str(protocol).lower()]
    except KeyError:
        raise ValueError(
            f"unknown protocol {protocol!r}; use one of {sorted(set(PROTOCOLS))}"
        ) from None


@dataclass(frozen=True)
class Split:
    """Indices (into the rows of ``metadata`` / ``X``) of one fold of a protocol.

    Attributes
    ----------
    protocol : str
        ``"subject_dependent"`` or ``"subject_independent"``.
    subject : int
        Target subject (tested on its sessions 4–5).
    fold : int
        Fold number, 1-based (as the reference code's ``S001_fold001`` files).
    train, val, test : ndarray of int
        Row indices.
    val_subjects : tuple of int
        SI only: subjects whose trials form the validation set (empty for SD).
    """

    protocol: str
    subject: int
    fold: int
    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    val_subjects: tuple[int, ...] = ()


# --------------------------------------------------------------------------- metadata helpers
def _check_metadata(metadata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(f"metadata must be a pandas DataFrame, got {type(metadata).__name__}")
    missing = [c for c in ("subject", "session") if c not in metadata.columns
               and not (c == "session" and "session_index" in metadata.columns)]
    if missing:
        raise ValueError(
            f"metadata lacks column(s) {missing}; it needs one row per trial with 'subject' and "
            "'session' (as returned by eegmtl.eeg.datasets.load_bci2b)."
        )
    subjects = pd.to_numeric(metadata["subject"], errors="coerce").to_numpy()
    if np.isnan(subjects.astype(float)).any():
        raise ValueError("metadata['subject'] must hold integer subject numbers")
    if "session_index" in metadata.columns:  # load_bci2b: 1-5 next to MOABB's session names
        return subjects.astype(int), _session_numbers(metadata["session_index"])
    return subjects.astype(int), _session_numbers(metadata["session"])


def _session_numbers(sessions: pd.Series) -> np.ndarray:
    """Session numbers 1–5 from integers or strings such as ``"1"``, ``"session_3"``,
    ``"session_T"``... Strings are read by their first number; MOABB's 0-based names
    (``"0train"`` … ``"4test"``) are shifted to 1–5."""
    num = pd.to_numeric(sessions, errors="coerce")
    if not num.isna().any():
        return num.to_numpy().astype(int)
    strs = sessions.astype(str)
    digits = strs.map(lambda s: re.search(r"\d+", s))
    if digits.map(lambda m: m is None).any():
        bad = sorted(set(strs[digits.map(lambda m: m is None)]))[:5]
        raise ValueError(f"cannot read session numbers from metadata['session'] values {bad}; "
                         "use integers 1-5 (sessions 1-3 = T data, 4-5 = E data).")
    out = digits.map(lambda m: int(m.group())).to_numpy()
    if strs.str.contains("train|test").all() and out.min() == 0:  # MOABB 0train ... 4test
        out = out + 1
    return out.astype(int)


def _labels(metadata: pd.DataFrame, y: Any) -> np.ndarray:
    if y is None:
        for col in ("label", "y", "target"):
            if col in metadata.columns:
                return metadata[col].to_numpy()
        raise ValueError("pass the labels y (stratification needs them), or give metadata a "
                         "'label' column")
    y = np.asarray(y)
    if len(y) != len(metadata):
        raise ValueError(f"y has {len(y)} labels but metadata has {len(metadata)} rows")
    return y


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


# --------------------------------------------------------------------------- splits
def subject_dependent_splits(
    metadata: pd.DataFrame,
    subject: int,
    n_folds: int = 5,
    seed: int = 42,
    *,
    y: Any = None,
    train_sessions: Sequence[int] = (1, 2, 3),
    test_sessions: Sequence[int] = (4, 5),
) -> Iterator[Split]:
    """Folds of the subject-dependent protocol for one subject.

    ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)`` on the subject's trials of
    ``train_sessions`` (in metadata order) gives (train, validation); the test set is the
    subject's trials of ``test_sessions``, the same for every fold (MixNet reference code,
    ``subject_dependent_setting``).

    Parameters
    ----------
    metadata : DataFrame
        One row per trial with ``subject`` and ``session`` (1–5).
    subject : int
        Subject number.
    n_folds : int
        Number of folds; default 5.
    seed : int
        ``random_state`` of the split; default 42 (reference).
    y : array-like, optional
        Labels for stratification (default: ``metadata['label']``).
    train_sessions, test_sessions : sequence of int
        Default sessions 1–3 (T) and 4–5 (E).

    Yields
    ------
    Split
    """
    subjects, sessions = _check_metadata(metadata)
    labels = _labels(metadata, y)
    own = subjects == int(subject)
    if not own.any():
        raise ValueError(f"subject {subject} not in metadata (subjects: "
                         f"{sorted(set(subjects.tolist()))})")
    pool = _rows(own & np.isin(sessions, list(train_sessions)))
    test = _rows(own & np.isin(sessions, list(test_sessions)))
    if len(test) == 0:
        raise ValueError(f"subject {subject} has no trials in test sessions {list(test_sessions)}")
    if len(pool) < n_folds:
        raise ValueError(f"subject {subject} has {len(pool)} trials in sessions "
                         f"{list(train_sessions)}, fewer than n_folds={n_folds}")
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (tr, va) in enumerate(skf.split(np.zeros((len(pool), 1)), labels[pool])):
        yield Split("subject_dependent", int(subject), k + 1, pool[tr], pool[va], test)


def subject_independent_splits(
    metadata: pd.DataFrame,
    subject: int,
    n_folds: int = 5,
    seed: int = 42,
    *,
    subjects: Sequence[int] | None = None,
    pool_sessions: Sequence[int] = (1, 2, 3, 4, 5),
    test_sessions: Sequence[int] = (4, 5),
) -> Iterator[Split]:
    """Folds of the subject-independent protocol for target subject ``subject``.

    The other subjects (sorted) are split by subject with ``StratifiedKFold(n_folds,
    shuffle=True, random_state=seed)`` on a dummy array, as the reference code
    (``subject_independent_setting``), so 8 subjects give validation groups of 2, 2, 2, 1, 1.
    Train = ``pool_sessions`` of the remaining subjects; validation = ``pool_sessions`` of the
    fold's validation subjects; test = ``test_sessions`` of ``subject``.

    Parameters
    ----------
    metadata : DataFrame
        One row per trial with ``subject`` and ``session`` (1–5).
    subject : int
        Target (held-out) subject.
    n_folds, seed : int
        Default 5 and 42 (reference).
    subjects : sequence of int, optional
        Subjects available for training/validation (default: all in metadata but ``subject``).
    pool_sessions, test_sessions : sequence of int
        Default sessions 1–5 and 4–5.

    Yields
    ------
    Split
    """
    subj, sessions = _check_metadata(metadata)
    subject = int(subject)
    if subject not in set(subj.tolist()):
        raise ValueError(f"subject {subject} not in metadata (subjects: {sorted(set(subj))})")
    others = sorted(set(subj.tolist()) if subjects is None else {int(s) for s in subjects})
    others = np.array([s for s in others if s != subject], dtype=int)
    if len(others) < n_folds:
        raise ValueError(f"subject-independent protocol needs at least n_folds={n_folds} other "
                         f"subjects, got {len(others)} ({others.tolist()})")
    test = _rows((subj == subject) & np.isin(sessions, list(test_sessions)))
    if len(test) == 0:
        raise ValueError(f"subject {subject} has no trials in test sessions {list(test_sessions)}")
    in_pool = np.isin(sessions, list(pool_sessions))
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    dummy = np.zeros(len(others))
    for k, (tr, va) in enumerate(skf.split(np.zeros((len(others), 2)), dummy)):
        tr_s, va_s = others[tr], others[va]
        yield Split(
            "subject_independent", subject, k + 1,
            _rows(np.isin(subj, tr_s) & in_pool), _rows(np.isin(subj, va_s) & in_pool), test,
            tuple(int(s) for s in sorted(va_s)),
        )


def make_splits(
    protocol: str, metadata: pd.DataFrame, subject: int, n_folds: int = 5, seed: int = 42,
    *, y: Any = None,
) -> list[Split]:
    """All folds of ``protocol`` (``"sd"``/``"subject_dependent"`` or ``"si"``/...) for
    ``subject``."""
    protocol = normalize_protocol(protocol)
    if protocol == "subject_dependent":
        return list(subject_dependent_splits(metadata, subject, n_folds, seed, y=y))
    return list(subject_independent_splits(metadata, subject, n_folds, seed))


# --------------------------------------------------------------------------- metrics
def compute_metrics(estimator: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1, Cohen's κ and ROC-AUC of a fitted estimator on (X, y).

    ROC-AUC uses ``predict_proba`` (else ``decision_function``); binary: the score of
    ``classes_[1]``; more classes: one-vs-rest macro AUC. NaN when the estimator has neither or
    ``y`` holds a single class.
    """
    pred, scores = predict_with_scores(estimator, X)
    return score_predictions(y, pred, scores, getattr(estimator, "classes_", None))


def predict_with_scores(estimator: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict`` and the class scores used for ROC-AUC: ``predict_proba`` (n, n_classes),
    else ``decision_function``, else ``None``."""
    pred = np.asarray(estimator.predict(X))
    if hasattr(estimator, "predict_proba"):
        return pred, np.asarray(estimator.predict_proba(X))
    if hasattr(estimator, "decision_function"):
        return pred, np.asarray(estimator.decision_function(X))
    return pred, None


def score_predictions(
    y: np.ndarray, pred: np.ndarray, scores: np.ndarray | None, classes: Any = None,
) -> dict[str, float]:
    """The metrics of :func:`compute_metrics` from predictions already made."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, roc_auc_score

    y = np.asarray(y)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_macro": float(f1_score(y, pred, average="macro")),
        "kappa": float(cohen_kappa_score(y, pred)),
        "roc_auc": float("nan"),
    }
    if classes is None or scores is None or len(np.unique(y)) < 2:
        return out
    classes = np.asarray(classes)
    if len(classes) == 2:
        s = scores[:, 1] if scores.ndim == 2 else scores
        out["roc_auc"] = float(roc_auc_score(y == classes[1], s))
    else:
        out["roc_auc"] = float(roc_auc_score(y, scores, multi_class="ovr", labels=classes))
    return out


# --------------------------------------------------------------------------- fitting one fold
def fit_seed(seed: int, subject: int, fold: int) -> int:
    """The seed of one fit, derived from (seed, subject, fold) with numpy's ``SeedSequence``,
    so every fit is seeded explicitly and runs give the same result in any order or process."""
    return int(np.random.SeedSequence([int(seed), int(subject), int(fold)]).generate_state(1)[0])


def _set_random_state(est: Any, value: int) -> Any:
    if hasattr(est, "get_params"):
        keys = [k for k in est.get_params(deep=True)
                if k == "random_state" or k.endswith("__random_state")]
        if keys:
            est.set_params(**dict.fromkeys(keys, value))
    return est


def _accepts_validation(est: Any) -> bool:
    try:
        params = inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False
    return "X_val" in params and "y_val" in params


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


def _build(method: Any) -> Any:
    if hasattr(method, "build"):
        return method.build()
    return clone(method)


def _run_task(
    task: _Task, X: np.ndarray, y: np.ndarray, common: Mapping[str, Any],
) -> dict[str, Any]:
    """Fit one method on one fold and return its record (runs in a joblib worker)."""
    sp = task.split
    seed = fit_seed(task.seed, task.subject, task.fold)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (global state, for estimators that use it)
    est = _set_random_state(_build(task.method), seed)
    threads = None
    if "torch" in sys.modules:  # the factory imported a torch-based estimator: seed it too
        from eegmtl.mtl.runtime import seed_everything

        seed_everything(seed)
        if common.get("torch_threads"):
            threads = sys.modules["torch"].get_num_threads()
            sys.modules["torch"].set_num_threads(int(common["torch_threads"]))
    X_tr, y_tr = X[sp.train], y[sp.train]
    X_va, y_va = X[sp.val], y[sp.val]
    t0 = time.perf_counter()
    try:
        if len(sp.val) and _accepts_validation(est):
            est.fit(X_tr, y_tr, X_val=X_va, y_val=y_va)
        else:
            est.fit(X_tr, y_tr)
    finally:
        if threads is not None:  # restore (matters when the fit ran in the calling process)
            sys.modules["torch"].set_num_threads(threads)
    fit_time = time.perf_counter() - t0
    pred, scores = predict_with_scores(est, X[sp.test])
    classes = getattr(est, "classes_", None)
    test = score_predictions(y[sp.test], pred, scores, classes)
    val = compute_metrics(est, X_va, y_va) if len(sp.val) else {}
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{task.protocol}_{task.pipeline}_S{task.subject}"
                  f"_F{task.fold}_seed{task.seed}_{task.config_hash}")
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
    }


def fold_predictions(
    y: np.ndarray, test: np.ndarray, pred: np.ndarray, scores: np.ndarray | None = None,
    classes: Any = None, task: Any = None, trial_meta: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per test trial: ``trial`` (row of the data), its metadata, ``y_true``,
    ``y_pred`` and the class scores (``score_<class>``: probabilities from ``predict_proba``,
    or ``decision`` for a 1-D ``decision_function``), tagged with the fit's key columns when
    ``task`` is given. Confusion matrices and per-trial analyses need no refit
    (``sklearn.metrics.confusion_matrix(df.y_true, df.y_pred)``)."""
    test = np.asarray(test)
    out = pd.DataFrame({"trial": test})
    if task is not None:
        for col in ("protocol", "pipeline", "subject", "fold", "seed", "config_hash"):
            out[col] = getattr(task, col)
    if trial_meta is not None:
        for col in trial_meta.columns:
            out[f"trial_{col}"] = trial_meta[col].to_numpy()[test]
    out["y_true"] = np.asarray(y)[test]
    out["y_pred"] = np.asarray(pred)
    if scores is not None and np.ndim(scores) == 2:
        names = classes if classes is not None else range(np.shape(scores)[1])
        for j, c in enumerate(names):
            out[f"score_{c}"] = np.asarray(scores)[:, j]
    elif scores is not None:
        out["decision"] = np.asarray(scores)
    return out


# --------------------------------------------------------------------------- method specs
def _json_safe(value: Any) -> Any:
    try:
        stable_json(value)
        return value
    except (TypeError, ValueError):
        if callable(value) and hasattr(value, "__qualname__"):
            return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
        return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def _estimator_config(est: Any) -> dict[str, Any]:
    params = est.get_params(deep=True) if hasattr(est, "get_params") else {}
    flat: dict[str, Any] = {}
    for k, v in sorted(params.items()):
        if k == "random_state" or k.endswith("__random_state"):
            continue  # set per fit from (seed, subject, fold)
        if hasattr(v, "get_params"):  # a nested estimator: its class; its params follow
            flat[k] = f"{type(v).__module__}.{type(v).__qualname__}"
        elif not (isinstance(v, list) and v and all(isinstance(x, tuple) for x in v)):
            flat[k] = _json_safe(v)  # (Pipeline 'steps' lists are covered by the above)
    return {"estimator": f"{type(est).__module__}.{type(est).__qualname__}", "params": flat}


def _resolve_methods(
    methods: Sequence[str] | Mapping[str, Any], protocol: str,
    method_params: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """name -> (MethodSpec or estimator, JSON config)."""
    from eegmtl.evaluation.methods import MethodSpec, get_method

    method_params = dict(method_params or {})
    items = methods.items() if isinstance(methods, Mapping) else ((m, None) for m in methods)
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name, obj in items:
        over = dict(method_params.get(name, {}))
        if obj is None or isinstance(obj, str):
            spec = get_method(obj or name, protocol, **over)
            out[str(name)] = (spec, {"method": spec.name, **spec.config})
        elif isinstance(obj, MethodSpec):
            spec = obj.with_config(**over) if over else obj
            out[str(name)] = (spec, {"method": spec.name, **spec.config})
        elif hasattr(obj, "fit"):
            est = clone(obj)
            if over:
                est.set_params(**over)
            out[str(name)] = (est, _estimator_config(est))
        else:
            raise TypeError(f"method {name!r}: expected a registry name, a MethodSpec or an "
                            f"unfitted scikit-learn estimator, got {type(obj).__name__}")
    if not out:
        raise ValueError("no methods given")
    return out


#: ``dataset`` column of records made on the local 2b export (every script uses this label)
DEFAULT_DATASET = "BNCI2014_004-export"
#: how :func:`run_protocol` loads the data when none is given (recorded in the config hash)
DEFAULT_DATA_SOURCE = "load_bci2b(source='export', units='uV')"


def load_default_data(
    subjects: Sequence[int] = tuple(range(1, 10)),
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """BCIC IV 2b from the local epoched export, all sessions, in µV (the deep models are
    trained on raw µV input, as ``docs/baselines-2b.md``; CSP-type pipelines are scale-free)."""
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
    results_path: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    dataset: str = DEFAULT_DATASET,
    data_source: str | None = None,
    history_dir: str | os.PathLike[str] | None = None,
    torch_threads: int | None = None,
    predictions_dir: str | os.PathLike[str] | None = None,
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
        Any joblib backend name (``"loky"``, ``"threading"``, ``"multiprocessing"``, ``"dask"``,
        ``"ray"``, ...), set through ``joblib.parallel_config``. For ``"dask"`` create a
        ``dask.distributed.Client`` first; for ``"ray"`` joblib registers Ray's backend when
        ``ray`` is installed.
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
        ``torch.set_num_threads`` in each worker before fitting.
    predictions_dir : path, optional
        Save each fit's test-set predictions (:func:`fold_predictions`: true and predicted label
        and class probabilities per trial, with the trial's subject/session) as CSV here.

    Returns
    -------
    DataFrame
        The records of all requested fits (finished now or earlier), sorted by key.
    """
    from joblib import Parallel, delayed, parallel_config

    protocol = normalize_protocol(protocol)
    if data is None:
        # SD needs only the target subjects' trials; SI needs every subject (the training pool)
        needed = (subjects if protocol == "subject_dependent" and subjects is not None
                  else range(1, 10))
        data = load_default_data(sorted({int(s) for s in needed}))
        data_source = data_source or DEFAULT_DATA_SOURCE
    X, y, metadata = _validate_data(data)
    all_subjects, sessions = _check_metadata(metadata)
    subjects = (sorted(set(all_subjects.tolist())) if subjects is None
                else [int(s) for s in subjects])
    seeds = [int(s) for s in seeds]
    resolved = _resolve_methods(methods, protocol, method_params)
    protocol_cfg = {"protocol": protocol, "n_folds": int(n_folds), "split_seed": int(split_seed),
                    "data": data_source or dataset}

    tasks: list[_Task] = []
    for subject in subjects:
        splits = make_splits(protocol, metadata, subject, n_folds, split_seed, y=y)
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
        keep = [_key(k) not in wanted
                for k in existing[list(KEY_COLUMNS)].itertuples(index=False)]
        existing = existing[keep]
    done = done_keys(existing) if resume else set()
    todo = [t for t in tasks
            if (t.protocol, t.pipeline, t.subject, t.fold, t.seed, t.config_hash) not in done]

    common = {
        "dataset": dataset,
        "versions": json.dumps(library_versions(), sort_keys=True),
        "n_sessions": {int(s): int(len(np.unique(sessions[all_subjects == s])))
                       for s in np.unique(all_subjects)},
        "history_dir": os.fspath(history_dir) if history_dir is not None else None,
        "predictions_dir": os.fspath(predictions_dir) if predictions_dir is not None else None,
        "trial_meta": (metadata[[c for c in ("subject", "session", "session_index")
                                 if c in metadata.columns]]
                       if predictions_dir is not None else None),
        "torch_threads": torch_threads,
    }
    rows = existing.to_dict("records") if not existing.empty else []
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{protocol}", disable=not progress, unit="fit")
        with parallel_config(backend=backend, n_jobs=n_jobs):
            gen = Parallel(return_as="generator_unordered")(
                delayed(_run_task)(t, X, y, common) for t in todo)
            for rec in gen:
                rows.append(rec)
                if results_path is not None:
                    merge_records(pd.DataFrame([rec]), results_path)
                bar.update(1)
                bar.set_postfix_str(f"{rec['pipeline']} S{rec['subject']} F{rec['fold']} "
                                    f"acc={rec['accuracy']:.3f}")
        bar.close()
    if results_path is not None and Path(results_path).exists():
        df = load_records(results_path)
    else:
        df = normalize_records(_sorted(pd.DataFrame(rows, columns=None if rows
                                                    else list(RECORD_COLUMNS))))
    mask = [_key(k) in wanted for k in df[list(KEY_COLUMNS)].itertuples(index=False)]
    return df[mask].reset_index(drop=True)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    return df.sort_values(["protocol", "pipeline", "subject", "fold", "seed", "config_hash"],
                          kind="stable").reset_index(drop=True)
