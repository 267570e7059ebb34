"""Euclidean alignment (He & Wu, 2020, IEEE TBME 67(2)) of recordings, on MOABB's transformer.

Each trial ``X_i`` of a recording is whitened by the inverse square root of a reference
covariance, ``X̃_i = R^{-1/2} X_i`` with ``R = mean_i C_i`` (the arithmetic mean of the trial
covariances; Eq. 1-2 of He & Wu). The computation is MOABB's
:class:`moabb.datasets.preprocessing.EuclideanAlignment` (Ledoit-Wolf trial covariances by
default); this module only decides *which trials* each reference is computed from:

``mode="transductive"`` (the cross-subject literature's setting, e.g. He & Wu 2020;
    Junqueira et al. 2024): every recording (subject × session) is aligned on **its own trials**,
    all of them, including the unlabelled trials of a test recording. No label is used, but the
    test recording's covariance statistics are; report it as transductive.
``mode="inductive"``: the references are fitted on **training trials only**. A recording with
    training trials is aligned on those trials; every other recording (validation or test
    subjects/sessions) is aligned with the pooled reference of all training trials. The
    statistics of a held-out recording never enter the fit, and the alignment of one
    held-out trial does not depend on any other held-out trial.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from eegmtl.eeg.preprocessing import check_epochs_array

__all__ = ["RecordingAlignment", "align_fold", "align_recordings"]

_MODES = ("transductive", "inductive")


def _ea(estimator: str) -> Any:
    from moabb.datasets.preprocessing import EuclideanAlignment

    return EuclideanAlignment(estimator=estimator)


def _groups(X: np.ndarray, recordings: Any) -> np.ndarray:
    if recordings is None:
        raise ValueError("recordings is required: one id per trial (e.g. 'subject-session'), "
                         "so that each recording gets its own reference.")
    rec = np.asarray(recordings)
    if rec.ndim != 1 or len(rec) != len(X):
        raise ValueError(f"recordings must hold one id per trial ({len(X)}), got shape "
                         f"{rec.shape}.")
    return rec


class RecordingAlignment(TransformerMixin, BaseEstimator):
    """Euclidean alignment per recording (MOABB ``EuclideanAlignment`` grouped by recording).

    Parameters
    ----------
    mode : {"transductive", "inductive"}, default "transductive"
        See the module docstring.
    estimator : str, default "lwf"
        Trial covariance estimator (pyRiemann name), passed to MOABB.

    Notes
    -----
    ``fit(X, recordings)`` / ``transform(X, recordings)`` take the recording id of every trial.
    In transductive mode ``fit`` stores nothing and ``transform`` fits a reference on each
    recording of the ``X`` it is given; in inductive mode ``fit`` learns one reference per
    training recording plus the pooled training reference ``pooled_``, and ``transform`` only
    applies them.
    """

    def __init__(self, mode: str = "transductive", estimator: str = "lwf") -> None:
        self.mode = mode
        self.estimator = estimator

    def _check_mode(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}.")

    def fit(self, X: Any, recordings: Any = None) -> RecordingAlignment:
        """Inductive: fit one reference per training recording and the pooled one."""
        self._check_mode()
        X = check_epochs_array(np.asarray(X, dtype=float), ndim=3)
        self.references_: dict[Any, Any] = {}
        self.pooled_ = None
        if self.mode == "inductive":
            rec = _groups(X, recordings)
            self.references_ = {r: _ea(self.estimator).fit(X[rec == r]) for r in np.unique(rec)}
            self.pooled_ = _ea(self.estimator).fit(X)
        return self

    def transform(self, X: Any, recordings: Any = None) -> np.ndarray:
        """Aligned trials, same shape as ``X``."""
        check_is_fitted(self, "references_")
        X = check_epochs_array(np.asarray(X, dtype=float), ndim=3)
        rec = _groups(X, recordings)
        out = np.empty_like(X)
        for r in np.unique(rec):
            idx = rec == r
            if self.mode == "transductive":
                out[idx] = _ea(self.estimator).fit_transform(X[idx])
            else:
                out[idx] = self.references_.get(r, self.pooled_).transform(X[idx])
        return out

    def fit_transform(self, X: Any, recordings: Any = None, **_: Any) -> np.ndarray:
        """``fit(X, recordings).transform(X, recordings)``."""
        return self.fit(X, recordings).transform(X, recordings)


def align_recordings(X: Any, recordings: Any, *, mode: str = "transductive",
                     train: Any = None, estimator: str = "lwf") -> np.ndarray:
    """Align a whole data set once, before the evaluation splits it.

    Parameters
    ----------
    X : array, shape (n_trials, n_channels, n_times)
    recordings : array, shape (n_trials,)
        Recording id of every trial (subject × session).
    mode : {"transductive", "inductive"}
    train : boolean mask or indices, optional
        Inductive mode only (required there): the training trials the references are fitted
        on. Everything else is aligned with references it did not contribute to.
    estimator : str, default "lwf"

    Returns
    -------
    ndarray, same shape as ``X``
    """
    X = check_epochs_array(np.asarray(X, dtype=float), ndim=3)
    rec = _groups(X, recordings)
    aligner = RecordingAlignment(mode=mode, estimator=estimator)
    if mode == "transductive":
        if train is not None:
            raise ValueError("train is only used in inductive mode; transductive alignment "
                             "uses every trial of each recording.")
        return aligner.fit(X).transform(X, rec)
    if train is None:
        raise ValueError("inductive alignment needs train= (mask or indices of the training "
                         "trials the references are fitted on).")
    idx = np.zeros(len(X), bool)
    idx[np.asarray(train)] = True
    if not idx.any():
        raise ValueError("train selects no trial.")
    return aligner.fit(X[idx], rec[idx]).transform(X, rec)


def align_fold(X: Any, recordings: Any, train: Any, *, mode: str,
               estimator: str = "lwf") -> np.ndarray:
    """Aligned copy of ``X`` for one evaluation fold whose training trials are ``train``.

    ``mode="transductive"``: every recording on its own trials (``train`` is not used);
    ``"inductive"``: references fitted on ``X[train]`` only (one per training recording, the
    pooled one for every other recording), see :func:`align_recordings`.
    """
    if mode == "transductive":
        return align_recordings(X, recordings, mode=mode, estimator=estimator)
    if mode != "inductive":
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
    return align_recordings(X, recordings, mode=mode, train=train, estimator=estimator)
