"""Synthetic BCIC-IV-2b-shaped data and tiny estimators for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

N_SUBJECTS, N_SESSIONS, N_TRIALS = 9, 5, 120


def synthetic_metadata(n_subjects: int = N_SUBJECTS, n_sessions: int = N_SESSIONS,
                       n_trials: int = N_TRIALS, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Metadata (subject, session, run) and balanced, shuffled labels per session."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for s in range(1, n_subjects + 1):
        for sess in range(1, n_sessions + 1):
            lab = rng.permutation(np.repeat([0, 1], n_trials // 2))
            labels.append(lab)
            rows += [(s, sess, 0)] * n_trials
    meta = pd.DataFrame(rows, columns=["subject", "session", "run"])
    return meta, np.concatenate(labels)


def synthetic_data(n_times: int = 24, seed: int = 0, **kw: int):
    """(X, y, metadata): class 0 has more power on channel 0, class 1 on channel 2."""
    meta, y = synthetic_metadata(seed=seed, **kw)
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((len(y), 3, n_times))
    gain = np.where(y == 0, 1.6, 1.0)
    X[:, 0] *= gain[:, None]
    X[:, 2] *= (2.6 - gain)[:, None]
    return X, y, meta


def tiny_epochs(n: int = 40, n_times: int = 1000, seed: int = 0):
    """``n`` two-class trials ``(n, 3, n_times)`` in µV, class 1 with more power on channel 0."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, 3, n_times)) * 10.0
    X[y == 1, 0] *= 2.0
    return X, y


def log_variance(X: np.ndarray) -> np.ndarray:
    return np.log(np.var(X, axis=-1))


def logvar_lr() -> object:
    """A fast deterministic classifier: log-variance per channel + logistic regression."""
    return make_pipeline(FunctionTransformer(log_variance), LogisticRegression())


class CountingClassifier(ClassifierMixin, BaseEstimator):
    """Log-variance nearest class mean; counts fits; records whether X_val was passed;
    can be told to fail on a given training-set size (to simulate an interruption)."""

    n_fits = 0
    saw_validation: list[int] = []

    def __init__(self, random_state: int | None = None, fail_after: int | None = None):
        self.random_state = random_state
        self.fail_after = fail_after

    def fit(self, X, y, X_val=None, y_val=None):
        type(self).n_fits += 1
        if self.fail_after is not None and type(self).n_fits > self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        type(self).saw_validation.append(0 if X_val is None else len(X_val))
        F = log_variance(X)
        self.classes_ = np.unique(y)
        self.means_ = np.stack([F[y == c].mean(0) for c in self.classes_])
        # a seeded random jitter, so results depend on random_state (checks explicit seeding)
        self.jitter_ = np.random.default_rng(self.random_state).normal(0, 1e-3)
        self.n_epochs_trained_ = 3
        return self

    def decision_function(self, X):
        F = log_variance(X)
        d = ((F[:, None, :] - self.means_[None]) ** 2).sum(-1)
        return d[:, 0] - d[:, 1] + self.jitter_

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


class DyingClassifier(CountingClassifier):
    """A :class:`CountingClassifier` whose fits kill their own process (SIGKILL, as the kernel's
    out-of-memory killer does) when they run anywhere but in process ``parent_pid``."""

    def __init__(self, random_state: int | None = None, fail_after: int | None = None,
                 parent_pid: int = 0):
        super().__init__(random_state, fail_after)
        self.parent_pid = parent_pid

    def fit(self, X, y, X_val=None, y_val=None):
        import os
        import signal

        if os.getpid() != self.parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y, X_val, y_val)


def check_runner_resumes(args: dict, tmp_path, monkeypatch, crash_after) -> pd.DataFrame:
    """Run ``run_protocol(**args)`` uninterrupted, then with epoch checkpoints and
    ``crash_after(monkeypatch, 2)`` in effect (the fit raises a ``RuntimeError`` or a
    ``KeyboardInterrupt`` "killed after epoch 2" once that epoch's checkpoint is written), then
    again: the resumed record equals the uninterrupted one and its checkpoint folder is removed.
    Returns the resumed records."""
    import pytest

    from eegmtl.evaluation.runner import run_protocol

    ref = run_protocol(**args, results_path=tmp_path / "ref.csv")
    ckpt = tmp_path / "ckpt"
    with monkeypatch.context() as m:
        crash_after(m, 2)
        with pytest.raises((RuntimeError, KeyboardInterrupt), match="killed after epoch 2"):
            run_protocol(**args, results_path=tmp_path / "run.csv", checkpoint_dir=ckpt)
    assert len(list(ckpt.glob("*/last.pt"))) == 1
    out = run_protocol(**args, results_path=tmp_path / "run.csv", checkpoint_dir=ckpt)
    cols = ["pipeline", "subject", "fold", "accuracy", "roc_auc", "val_accuracy",
            "n_epochs_trained", "config_hash"]
    pd.testing.assert_frame_equal(out[cols], ref[cols])
    assert list(ckpt.iterdir()) == []  # the record is written: its checkpoint is gone
    return out
