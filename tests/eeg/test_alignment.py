"""Euclidean alignment by recording: transductive per recording, inductive without leakage."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("moabb")

from moabb.datasets.preprocessing import EuclideanAlignment  # noqa: E402

from eegmtl.eeg.alignment import RecordingAlignment, align_recordings  # noqa: E402


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three recordings with different spatial mixing (a covariance shift per recording)."""
    rng = np.random.default_rng(seed)
    xs, recs = [], []
    for r, name in enumerate(["s1-0", "s1-1", "s2-0"]):
        mix = np.eye(3) + (r + 1) * 0.5 * rng.standard_normal((3, 3))
        xs.append(np.einsum("ij,njt->nit", mix, rng.standard_normal((10, 3, 200))))
        recs += [name] * 10
    return np.concatenate(xs), np.array(recs)


def _mean_cov(X: np.ndarray) -> np.ndarray:
    return np.mean([x @ x.T / x.shape[1] for x in X], axis=0)


def test_transductive_whitens_each_recording_with_its_own_trials() -> None:
    X, rec = _data()
    Xa = align_recordings(X, rec, estimator="scm")
    for r in np.unique(rec):
        cov = _mean_cov(Xa[rec == r] - Xa[rec == r].mean(-1, keepdims=True))
        np.testing.assert_allclose(cov, np.eye(3), atol=1e-8)
        np.testing.assert_allclose(Xa[rec == r],
                                   EuclideanAlignment("scm").fit_transform(X[rec == r]))


def test_inductive_uses_training_trials_only() -> None:
    X, rec = _data()
    train = rec != "s2-0"  # recording s2-0 is the held-out (test) subject
    Xa = align_recordings(X, rec, mode="inductive", train=train)
    pooled = EuclideanAlignment().fit(X[train])
    np.testing.assert_allclose(Xa[~train], pooled.transform(X[~train]))
    for r in ("s1-0", "s1-1"):
        np.testing.assert_allclose(Xa[rec == r],
                                   EuclideanAlignment().fit_transform(X[rec == r]))


def test_inductive_leak_test_statistics_of_test_recording_never_enter() -> None:
    X, rec = _data()
    test = rec == "s2-0"
    X2 = X.copy()
    X2[np.flatnonzero(test)[1:]] *= 50.0  # change the test recording's statistics
    X2[np.flatnonzero(test)[1:]] += np.random.default_rng(1).standard_normal((9, 3, 200))
    first = np.flatnonzero(test)[0]
    a = align_recordings(X, rec, mode="inductive", train=~test)
    b = align_recordings(X2, rec, mode="inductive", train=~test)
    np.testing.assert_allclose(a[first], b[first])  # held-out trial unaffected by its recording
    np.testing.assert_allclose(a[~test], b[~test])  # training alignment unaffected too
    # the same check fails for the transductive mode, which uses the test recording itself
    ta = align_recordings(X, rec)
    tb = align_recordings(X2, rec)
    assert not np.allclose(ta[first], tb[first])


def test_transformer_api_and_errors() -> None:
    X, rec = _data()
    ra = RecordingAlignment(mode="inductive").fit(X[:20], rec[:20])
    assert set(ra.references_) == {"s1-0", "s1-1"} and ra.pooled_ is not None
    assert ra.transform(X, rec).shape == X.shape
    with pytest.raises(ValueError, match="one id per trial"):
        RecordingAlignment().fit(X).transform(X, rec[:5])
    with pytest.raises(ValueError, match="mode must be"):
        RecordingAlignment(mode="online").fit(X)
    with pytest.raises(ValueError, match="needs train"):
        align_recordings(X, rec, mode="inductive")
    with pytest.raises(ValueError, match="only used in inductive"):
        align_recordings(X, rec, train=rec == "s1-0")
