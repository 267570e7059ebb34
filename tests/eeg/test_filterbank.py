"""FilterBankCSP: MixNet conventions, shapes, train-only fitting, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline

from eegmtl.eeg.filterbank import FilterBankCSP, alternate_order
from eegmtl.eeg.preprocessing import filter_bank


def _two_class(n: int = 40, c: int = 3, t: int = 200, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 has extra variance on channel 0, class 1 on channel 2 (plus mixing)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, c, t))
    X[y == 0, 0] *= 3.0
    X[y == 1, c - 1] *= 3.0
    mix = np.eye(c) + 0.3 * rng.standard_normal((c, c))
    return np.einsum("cd,ndt->nct", mix, X), y


def _banded(X: np.ndarray, n_bands: int = 2) -> np.ndarray:
    return np.stack([X * (k + 1) + 0.1 * k * np.roll(X, 1, axis=-1) for k in range(n_bands)], 1)


def _reference_filters(Xb: np.ndarray, y: np.ndarray, U: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent MixNet CSP: whitening formulation instead of scipy's generalized eigh."""
    out_w, out_l = [], []
    for k in range(Xb.shape[1]):
        covs = []
        for c in np.unique(y):
            cs = [x @ x.T / np.trace(x @ x.T) for x in Xb[y == c, k]]
            covs.append(np.mean(cs, axis=0))
        evals, evecs = np.linalg.eigh(covs[0] + covs[1])
        P = evecs @ np.diag(evals**-0.5) @ evecs.T  # (C0 + C1)^(-1/2)
        lam, V = np.linalg.eigh(P @ covs[0] @ P)
        W = (P @ V).T  # rows: generalized eigenvectors with w^T (C0+C1) w = 1
        order = np.argsort(lam)[::-1]
        alt = [order[0], order[-1], order[1], order[-2], order[2]][:U]
        out_w.append(W[alt])
        out_l.append(lam[alt])
    return np.array(out_w), np.array(out_l)


def test_alternate_order() -> None:
    ev = np.array([0.1, 0.9, 0.5, 0.3, 0.7])
    np.testing.assert_array_equal(ev[alternate_order(ev)], [0.9, 0.1, 0.7, 0.3, 0.5])


def test_filters_match_independent_reference() -> None:
    X, y = _two_class()
    Xb = _banded(X, 3)
    fb = FilterBankCSP(n_components=3).fit(Xb, y)
    W_ref, lam_ref = _reference_filters(Xb, y, 3)
    np.testing.assert_allclose(fb.eigenvalues_, lam_ref, atol=1e-10)
    # equal up to sign; our sign convention: largest-magnitude entry positive
    for k in range(3):
        for u in range(3):
            w, r = fb.filters_[k, u], W_ref[k, u]
            assert np.isclose(abs(w @ r) / (w @ w), 1.0, atol=1e-8)
            assert w[np.argmax(np.abs(w))] > 0
    # MixNet ordering: first = largest eigenvalue, second = smallest
    assert (fb.eigenvalues_[:, 0] > 0.5).all() and (fb.eigenvalues_[:, 1] < 0.5).all()
    assert fb.classes_.tolist() == [0, 1]


def test_shapes_signals_and_logvar() -> None:
    X, y = _two_class(t=400)
    Xb = filter_bank(X, 100.0)  # (n, 9, 3, 400)
    sig = FilterBankCSP().fit(Xb, y).transform(Xb)
    assert sig.shape == (40, 18, 400)
    lv = FilterBankCSP(output="logvar").fit_transform(Xb, y)
    assert lv.shape == (40, 18)
    np.testing.assert_allclose(lv, np.log(sig.var(axis=-1)))
    # band-major: channels 2k, 2k+1 are band k's two components
    fb = FilterBankCSP().fit(Xb, y)
    np.testing.assert_allclose(sig[:, 2:4], np.einsum("uc,nct->nut", fb.filters_[1], Xb[:, 1]))


def test_raw_input_applies_filter_bank_itself() -> None:
    X, y = _two_class(t=400)
    a = FilterBankCSP(sfreq=100.0).fit(X, y).transform(X)
    b = FilterBankCSP().fit(filter_bank(X, 100.0), y).transform(filter_bank(X, 100.0))
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="sfreq"):
        FilterBankCSP().fit(X, y)
    fitted = FilterBankCSP(sfreq=100.0).fit(X, y)
    with pytest.raises(ValueError, match="same input kind"):
        fitted.transform(filter_bank(X, 100.0))


@pytest.mark.realdata
def test_real_2b_gives_18_by_400(real_2b: Path) -> None:
    from eegmtl.eeg.datasets import load_bci2b
    from eegmtl.eeg.preprocessing import mixnet_preprocess

    X, y, _ = load_bci2b(subjects=4, sessions=[1, 2, 3], units="uV")
    Xt, yt, _ = load_bci2b(subjects=4, sessions=[4], units="uV")
    fb = FilterBankCSP(output="signals").fit(mixnet_preprocess(X), y)
    out = fb.transform(mixnet_preprocess(Xt))
    assert out.shape == (120, 18, 400)
    # trace-normalised covariances keep the µV scale (MixNet applies no other normalisation)
    assert 0.05 < out.std() < 50
    # subject 4 is the easiest: logvar FBCSP + LDA is well above chance on session 4
    clf = make_pipeline(FilterBankCSP(output="logvar"), LinearDiscriminantAnalysis())
    acc = clf.fit(mixnet_preprocess(X), y).score(mixnet_preprocess(Xt), yt)
    assert acc > 0.8


def test_fit_uses_training_trials_only() -> None:
    """Fails if test trials leak into the fit (or transform changes state)."""
    X, y = _two_class(n=60)
    Xb = _banded(X)
    train, test = np.arange(40), np.arange(40, 60)
    fb = FilterBankCSP().fit(Xb[train], y[train])
    filters = fb.filters_.copy()
    ref, _ = _reference_filters(Xb[train], y[train], 2)
    leak, _ = _reference_filters(Xb, y, 2)
    assert np.allclose(np.abs(filters), np.abs(ref), atol=1e-10)
    assert not np.allclose(np.abs(filters), np.abs(leak), atol=1e-3)  # the check has power
    out_test = fb.transform(Xb[test])
    # changing the test trials changes neither the filters nor the train outputs
    Xb2 = Xb.copy()
    Xb2[test] = np.random.default_rng(5).standard_normal(Xb2[test].shape) * 10
    out_train_before = fb.transform(Xb[train])
    fb.transform(Xb2[test])
    np.testing.assert_array_equal(fb.filters_, filters)
    np.testing.assert_array_equal(fb.transform(Xb[train]), out_train_before)
    np.testing.assert_array_equal(fb.transform(Xb[test]), out_test)
    # each trial's output depends only on that trial and the training fit
    np.testing.assert_allclose(fb.transform(Xb[test][:3]), out_test[:3])
    # refitting on the same training trials gives the same filters, whatever the test data
    np.testing.assert_array_equal(FilterBankCSP().fit(Xb2[train], y[train]).filters_, filters)


def test_labels_of_any_type_and_clone() -> None:
    X, y = _two_class()
    Xb = _banded(X)
    names = np.where(y == 0, "left_hand", "right_hand")
    a = FilterBankCSP().fit(Xb, y).transform(Xb)
    b = clone(FilterBankCSP()).fit(Xb, names).transform(Xb)
    np.testing.assert_allclose(a, b)
    assert FilterBankCSP(n_components=3).get_params()["n_components"] == 3


def test_errors() -> None:
    X, y = _two_class()
    Xb = _banded(X)
    with pytest.raises(ValueError, match="only"):
        FilterBankCSP().fit(Xb, np.zeros(len(y)))
    with pytest.raises(ValueError, match="binary"):
        FilterBankCSP().fit(Xb, np.arange(len(y)) % 3)
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        FilterBankCSP().fit(Xb[0, 0], y)
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        FilterBankCSP().fit(Xb[None], y)
    bad = Xb.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FilterBankCSP().fit(bad, y)
    with pytest.raises(ValueError, match="labels"):
        FilterBankCSP().fit(Xb, y[:-1])
    with pytest.raises(ValueError, match="exceeds"):
        FilterBankCSP(n_components=4).fit(Xb, y)
    with pytest.raises(ValueError, match="output"):
        FilterBankCSP(output="power").fit(Xb, y)
    fb = FilterBankCSP().fit(Xb, y)
    with pytest.raises(ValueError, match="bands x"):
        fb.transform(Xb[:, :1])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FilterBankCSP().transform(Xb)


# ------------------------------------------------------------------ rank deficiency, flat, dtypes
def _car(X: np.ndarray) -> np.ndarray:
    """Common-average reference: the channel sum is zero, so covariances have rank C - 1."""
    return X - X.mean(axis=-2, keepdims=True)


@pytest.mark.parametrize("kind", ["car", "duplicate", "near_duplicate", "flat_channel"])
def test_rank_deficient_covariances_are_regularised_every_time(kind: str) -> None:
    from sklearn.model_selection import StratifiedKFold

    X, y = _two_class(n=60, c=4, t=200, seed=3)
    if kind == "car":
        X = _car(X)
    elif kind == "duplicate":
        X[:, 3] = X[:, 1]
    elif kind == "near_duplicate":
        X[:, 3] = X[:, 1] + 1e-9 * np.random.default_rng(1).standard_normal(X[:, 1].shape)
    else:
        X[:, 3] = 0.0
    Xb = _banded(X, 2)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    for train, test in cv.split(Xb, y):
        fb = FilterBankCSP(n_components=4).fit(Xb[train], y[train])
        assert fb.regularized_.all()  # the same decision in every fold and band
        assert np.all((fb.eigenvalues_ >= 0) & (fb.eigenvalues_ <= 1))
        # the two kept extreme filters have ordinary norms, not ~1e8
        assert np.abs(fb.filters_[:, :2]).max() < 1e3
        # the signal-free direction gets eigenvalue 1/2 (never picked first or second)
        half = np.isclose(fb.eigenvalues_, 0.5, atol=1e-4)
        assert half.any(axis=1).all() and not half[:, :2].any()
        assert np.isfinite(fb.transform(Xb[test])).all()


def test_full_rank_data_is_not_regularised() -> None:
    X, y = _two_class()
    fb = FilterBankCSP(n_components=3).fit(_banded(X, 2), y)
    assert not fb.regularized_.any()
    assert np.all((fb.eigenvalues_ >= 0) & (fb.eigenvalues_ <= 1))


def test_logvar_of_flat_trial_is_finite() -> None:
    X, y = _two_class()
    Xb = _banded(X, 2)
    fb = FilterBankCSP(n_components=2, output="logvar").fit(Xb, y)
    Z = Xb[:3].copy()
    Z[1] = 0.0
    feats = fb.transform(Z)
    assert np.isfinite(feats).all()
    np.testing.assert_allclose(feats[1], np.log(fb.var_floor_))
    assert (feats[1] < feats[0]).all()
    with pytest.raises(ValueError, match=r"flat .*find_flat_trials"):
        fb.fit(np.concatenate([Z, Xb]), np.concatenate([y[:3], y]))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_input_equals_float64(dtype: type) -> None:
    X, y = _two_class(t=250)
    X = (X * 10).astype(dtype)
    kw = dict(n_components=2, bands=[(8, 12), (12, 30)], sfreq=100.0)
    low = FilterBankCSP(**kw).fit(X, y)
    ref = FilterBankCSP(**kw).fit(X.astype(np.float64), y)
    np.testing.assert_array_equal(low.filters_, ref.filters_)
    np.testing.assert_array_equal(low.transform(X), ref.transform(X.astype(np.float64)))


def test_nan_labels_raise() -> None:
    X, y = _two_class()
    y = y.astype(float)
    y[5] = np.nan
    with pytest.raises(ValueError, match=r"missing label.*\[5\]"):
        FilterBankCSP().fit(_banded(X, 2), y)
