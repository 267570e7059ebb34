"""Subject-dependent and subject-independent protocols of the MixNet paper as splits and as
scikit-learn cross-validators.

Protocols (Autthasan et al., 2024, MixNet, Section "Experimental settings"; public code
``min2net/preprocessing/*/time_domain.py`` and ``experiments/run_MixNet.py``):

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

:class:`SubjectDependentSplitter` and :class:`SubjectIndependentSplitter` are scikit-learn
cross-validators (``split(X, y, groups)`` / ``get_n_splits``) over these folds, usable as
``cv=`` of :func:`sklearn.model_selection.cross_val_score` with the per-trial metadata as
``groups``, in the way MOABB's evaluation splitters are; :meth:`~SubjectDependentSplitter.folds`
also yields each fold's validation part.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from eegmtl.mixnet.defaults import PROTOCOLS, normalize_protocol

__all__ = [
    "PROTOCOLS",
    "Split",
    "SubjectDependentSplitter",
    "SubjectIndependentSplitter",
    "make_splits",
    "normalize_protocol",
    "protocol_splitter",
    "subject_dependent_splits",
    "subject_independent_splits",
    "trial_subjects_sessions",
]


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
def trial_subjects_sessions(metadata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Subject numbers and session numbers 1–5 of every trial of ``metadata``."""
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
    """Session numbers 1–5 from integers or strings such as ``"1"`` or ``"session_3"``
    (read by their first number). MOABB's 0-based names
    (``"0train"`` … ``"4test"``) are always shifted to 1–5, and any other numbering that
    starts at 0 (``"session_0"`` … ``"session_4"`` of older MOABB, integers 0–4) is read as
    0-based and shifted too."""
    num = pd.to_numeric(sessions, errors="coerce")
    if not num.isna().any():
        out = num.to_numpy().astype(int)
        return out + 1 if len(out) and out.min() == 0 else out
    strs = sessions.astype(str)
    digits = strs.map(lambda s: re.search(r"\d+", s))
    if digits.map(lambda m: m is None).any():
        bad = sorted(set(strs[digits.map(lambda m: m is None)]))[:5]
        raise ValueError(f"cannot read session numbers from metadata['session'] values {bad}; "
                         "use integers 1-5 (sessions 1-3 = T data, 4-5 = E data).")
    out = digits.map(lambda m: int(m.group())).to_numpy().astype(int)
    moabb = strs.str.fullmatch(r"\d+(train|test)").all()  # MOABB 0train ... 4test
    return out + 1 if moabb or out.min() == 0 else out


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
    validation: str = "random",
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
    validation : {"random", "session"}
        ``"random"`` (default, the reference protocol): the stratified folds above, so
        validation trials come from the training sessions. ``"session"``: fold k holds out the
        k-th training session as validation and trains on the others (one fold per training
        session; ``n_folds`` and ``seed`` unused). Validation then sees the shift between
        sessions that the test sessions have, so choices that target it (e.g. alignment) can
        be made on validation; the model trains on fewer trials.

    Yields
    ------
    Split
    """
    subjects, sessions = trial_subjects_sessions(metadata)
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
    if validation == "session":
        held = [int(v) for v in train_sessions if (own & (sessions == int(v))).any()]
        if len(held) < 2:
            raise ValueError(f"validation='session' needs at least 2 training sessions with "
                             f"trials; subject {subject} has {held}")
        for k, v in enumerate(held):
            va = _rows(own & (sessions == v))
            tr = _rows(own & np.isin(sessions, [h for h in held if h != v]))
            yield Split("subject_dependent", int(subject), k + 1, tr, va, test)
        return
    if validation != "random":
        raise ValueError(f"validation must be 'random' or 'session', got {validation!r}")
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
    subj, sessions = trial_subjects_sessions(metadata)
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
    *, y: Any = None, validation: str = "random",
) -> list[Split]:
    """All folds of ``protocol`` (``"sd"``/``"subject_dependent"`` or ``"si"``/...) for
    ``subject`` (``validation``: see :func:`subject_dependent_splits`; SD only)."""
    protocol = normalize_protocol(protocol)
    if protocol == "subject_dependent":
        return list(subject_dependent_splits(metadata, subject, n_folds, seed, y=y,
                                             validation=validation))
    if validation != "random":
        raise ValueError("validation='session' applies to the subject-dependent protocol; the "
                         "subject-independent one validates on held-out subjects already.")
    return list(subject_independent_splits(metadata, subject, n_folds, seed))


# --------------------------------------------------------------------------- cross-validators
class _ProtocolSplitter:
    """Shared part of the two protocol cross-validators (see the subclasses)."""

    protocol = ""

    def __init__(self, n_folds: int = 5, random_state: int = 42, *,
                 subjects: Sequence[int] | None = None, metadata: pd.DataFrame | None = None
                 ) -> None:
        self.n_folds = n_folds
        self.random_state = random_state
        self.subjects = subjects
        self.metadata = metadata

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_folds={self.n_folds}, "
                f"random_state={self.random_state}, subjects={self.subjects})")

    def _metadata(self, groups: Any) -> pd.DataFrame:
        meta = groups if groups is not None else self.metadata
        if meta is None:
            raise ValueError(
                f"{type(self).__name__} needs the per-trial metadata (columns 'subject' and "
                "'session'): pass it as groups=metadata (e.g. cross_val_score(est, X, y, "
                f"groups=metadata, cv={type(self).__name__}())) or as metadata=... ."
            )
        if not isinstance(meta, pd.DataFrame):
            raise TypeError("groups must be the per-trial metadata DataFrame (columns "
                            f"'subject' and 'session'), got {type(meta).__name__}")
        return meta.reset_index(drop=True)

    def _subjects(self, meta: pd.DataFrame) -> list[int]:
        if self.subjects is not None:
            return [int(s) for s in self.subjects]
        return sorted(set(trial_subjects_sessions(meta)[0].tolist()))

    def folds(self, metadata: pd.DataFrame, y: Any = None) -> Iterator[Split]:
        """Every :class:`Split` (train, validation and test rows), subject by subject."""
        meta = self._metadata(metadata)
        for subject in self._subjects(meta):
            yield from make_splits(self.protocol, meta, subject, self.n_folds,
                                   self.random_state, y=y)

    def split(self, X: Any = None, y: Any = None, groups: Any = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(train, test)`` row indices of every fold of every subject (the validation part
        of a fold is in neither; use :meth:`folds` to get it)."""
        for sp in self.folds(groups, y):
            yield sp.train, sp.test

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds: ``n_folds`` × number of (target) subjects."""
        return self.n_folds * len(self._subjects(self._metadata(groups)))


class SubjectDependentSplitter(_ProtocolSplitter):
    """Subject-dependent protocol as a scikit-learn cross-validator.

    Per subject, ``StratifiedKFold(n_folds, shuffle=True, random_state)`` on the subject's
    trials of sessions 1–3 (train / validation); the test rows are the subject's sessions 4–5.

    Parameters
    ----------
    n_folds : int
        Folds per subject (default 5).
    random_state : int
        Seed of the fold assignment (default 42, the reference code's).
    subjects : sequence of int, optional
        Subjects to split (default: every subject of the metadata).
    metadata : DataFrame, optional
        Per-trial metadata used when ``split`` gets no ``groups``.

    Examples
    --------
    >>> cross_val_score(est, X, y, groups=metadata,
    ...                 cv=SubjectDependentSplitter(subjects=[1]))  # doctest: +SKIP
    """

    protocol = "subject_dependent"


class SubjectIndependentSplitter(_ProtocolSplitter):
    """Subject-independent protocol as a scikit-learn cross-validator.

    For each target subject, the other subjects are split by subject into ``n_folds``
    (train / validation subjects, sessions 1–5); the test rows are the target's sessions 4–5.
    Parameters as :class:`SubjectDependentSplitter`; ``subjects`` are the targets.
    """

    protocol = "subject_independent"


def protocol_splitter(protocol: str, n_folds: int = 5, random_state: int = 42, **kwargs: Any
                      ) -> _ProtocolSplitter:
    """The cross-validator of ``protocol`` (any spelling of :func:`normalize_protocol`)."""
    cls = {"subject_dependent": SubjectDependentSplitter,
           "subject_independent": SubjectIndependentSplitter}[normalize_protocol(protocol)]
    return cls(n_folds, random_state, **kwargs)
