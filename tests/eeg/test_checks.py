"""eegmtl.eeg.checks: each kind of bad input ends in the right result or an error naming it."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from eegmtl.eeg import checks
from eegmtl.eeg.checks import (
    AmplitudeReference,
    AmplitudeWarning,
    OutlierTrialWarning,
    check_epochs_array,
    check_labels,
    check_sfreq,
    check_sfreq_window,
    check_subjects,
    check_units,
    find_flat_trials,
    find_outlier_trials,
    infer_units,
)
from eegmtl.eeg.preprocessing import FilterBank, Resampler, TimeWindow, mixnet_preprocess


def _eeg(n: int = 30, c: int = 3, t: int = 1000, uv: float = 10.0, seed: int = 0) -> np.ndarray:
    """White noise with an amplitude (RMS) of ``uv`` µV."""
    return np.random.default_rng(seed).standard_normal((n, c, t)) * uv


# ------------------------------------------------------------------------------ dtypes
def test_preprocessing_is_re_exported_from_checks() -> None:
    from eegmtl.eeg import preprocessing

    assert preprocessing.check_epochs_array is checks.check_epochs_array


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int16])
def test_low_precision_epochs_become_float64(dtype: type) -> None:
    X = _eeg().astype(dtype)
    out = check_epochs_array(X)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, X.astype(np.float64))
    assert check_epochs_array(X.astype(np.float32), dtype=None).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_float32_preprocessing_equals_float64(dtype: type) -> None:
    X = _eeg(n=6).astype(dtype)
    X64 = X.astype(np.float64)
    np.testing.assert_array_equal(mixnet_preprocess(X), mixnet_preprocess(X64))
    np.testing.assert_allclose(mixnet_preprocess(_eeg(n=6).astype(np.float32)),
                               mixnet_preprocess(_eeg(n=6)), rtol=1e-5, atol=1e-5)
    for step in (TimeWindow(), Resampler(), FilterBank(sfreq=250.0)):
        np.testing.assert_array_equal(step.fit_transform(X), step.fit_transform(X64))


def test_non_real_and_non_finite_epochs_raise() -> None:
    with pytest.raises(ValueError, match="real numbers"):
        check_epochs_array(np.ones((2, 3, 10), dtype=bool))
    with pytest.raises(ValueError, match="real numbers"):
        check_epochs_array(np.ones((2, 3, 10), dtype=complex))
    X = _eeg(n=4)
    X[2, 1, 5] = np.inf
    with pytest.raises(ValueError, match=r"0 NaN and 1 Inf .*\[2\]"):
        check_epochs_array(X)
    # float16 overflow becomes Inf and is reported, not passed on
    with pytest.raises(ValueError, match="Inf"):
        with np.errstate(over="ignore"):
            check_epochs_array(np.full((2, 3, 10), np.float16(6e4)) * np.float16(2))


# ------------------------------------------------------------------------------ units
@pytest.mark.parametrize(("factor", "unit"), [(1.0, "uV"), (1e-3, "mV"), (1e-6, "V")])
@pytest.mark.parametrize("uv", [1.0, 10.0, 100.0])
def test_units_are_inferred(factor: float, unit: str, uv: float) -> None:
    X = _eeg(uv=uv) * factor
    assert infer_units(X) == unit
    assert check_units(X, "auto") == unit
    assert check_units(X, unit) == unit
    assert check_units(X, "µV" if unit == "uV" else unit) == unit


@pytest.mark.parametrize(
    ("factor", "declared", "found", "fix"),
    [(1e-6, "uV", "V", "1e\\+06"), (1e-3, "uV", "mV", "1000"), (1.0, "V", "uV", "1e-06")],
)
def test_wrong_declared_unit_raises_with_the_factor(
    factor: float, declared: str, found: str, fix: str
) -> None:
    with pytest.raises(ValueError, match=rf"declared in {declared}.*looks like {found}.*{fix}"):
        check_units(_eeg() * factor, declared)


def test_implausible_amplitude_and_bad_unit_name() -> None:
    with pytest.raises(ValueError, match="far above EEG"):
        check_units(_eeg(uv=1e6), "uV")
    with pytest.raises(ValueError, match="units must be"):
        check_units(_eeg(), "nV")


def test_flat_trials_are_reported_as_flat_not_as_volts() -> None:
    X = _eeg()
    X[[4, 9]] = 0.0
    X[11] = 3.0  # constant, not zero
    np.testing.assert_array_equal(find_flat_trials(X), [4, 9, 11])
    with pytest.warns(AmplitudeWarning, match=r"3 flat trial.*\[4, 9, 11\]"):
        assert check_units(X, "uV") == "uV"
    with pytest.raises(ValueError, match="every trial of X is flat"):
        check_units(np.zeros((3, 3, 100)))
    with pytest.raises(ValueError, match="flat"):
        infer_units(np.zeros((3, 3, 100)))


# ------------------------------------------------------------------------------ scale at predict
@pytest.mark.parametrize(("factor", "warns"), [(1.0, False), (2.0, False), (0.01, True),
                                               (1000.0, True), (1e-6, True)])
def test_amplitude_reference_warns_with_the_ratio(factor: float, warns: bool) -> None:
    ref = AmplitudeReference.fit(_eeg())
    X = _eeg(seed=1) * factor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ratio = ref.check_scale(X)
    assert ratio == pytest.approx(factor, rel=0.05)
    msgs = [str(w.message) for w in caught if issubclass(w.category, AmplitudeWarning)]
    assert bool(msgs) == warns
    if warns:
        assert f"{ratio:.3g}x the amplitude seen at fit" in msgs[0]


def test_amplitude_reference_flat_batch_and_serialisation() -> None:
    ref = AmplitudeReference.fit(_eeg())
    with pytest.warns(AmplitudeWarning, match="flat"):
        assert ref.check_scale(np.zeros((1, 3, 1000))) == 0.0
    state = json.loads(json.dumps(dataclasses.asdict(ref)))
    assert AmplitudeReference(**state) == ref
    with pytest.raises(ValueError, match="low < 1 < high"):
        AmplitudeReference.fit(_eeg(), low=2.0)


# ------------------------------------------------------------------------------ outliers
def test_outlier_trials_are_named_by_index() -> None:
    X = _eeg(n=40)
    X[7] *= 1e6
    X[23, 1] *= 10.0
    with pytest.warns(OutlierTrialWarning, match=r"2 outlier trial.*\b7 \(.*23 \("):
        out = find_outlier_trials(X)
    np.testing.assert_array_equal(out, [7, 23])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert find_outlier_trials(_eeg(n=40)).size == 0  # clean data: no warning
        assert find_outlier_trials(X[:4]).size == 0  # too few trials to judge
        np.testing.assert_array_equal(find_outlier_trials(X, warn=False), [7, 23])


def test_real_export_has_few_outliers(real_2b) -> None:
    from eegmtl.eeg.datasets import read_export

    X, _, _ = read_export(subjects=1, path=real_2b)
    assert find_outlier_trials(X, warn=False).size == 0
    assert infer_units(X) == "uV" and infer_units(X * 1e-6) == "V"


# ------------------------------------------------------------------------------ sampling rate
@pytest.mark.parametrize(("n_times", "sfreq", "implied"),
                         [(2000, 250.0, "500"), (1000, 128.0, "250"), (400, 250.0, "100")])
def test_sampling_rate_that_does_not_fit_the_trial_raises(
    n_times: int, sfreq: float, implied: str
) -> None:
    with pytest.raises(ValueError, match=rf"{n_times} samples per trial.*declare sfreq={implied}"):
        check_sfreq_window(n_times, sfreq, 0.0, 4.0)


def test_sampling_rate_window_accepts_matching_epochs() -> None:
    assert check_sfreq_window(1000, 250.0, 0.0, 4.0) == (0, 1000)
    assert check_sfreq_window(1001, 250.0, 0.0, 4.0) == (0, 1000)  # MNE's inclusive tmax
    # longer epochs declared as such: the window is cut from them
    assert check_sfreq_window(1500, 250.0, 0.5, 2.5, epoch_tmin=-1.0, epoch_tmax=5.0) == (
        375, 875)
    with pytest.raises(ValueError, match="larger than tmin"):
        check_sfreq_window(1000, 250.0, 4.0, 0.0)
    for bad in (0, -1.0, np.nan, "250", True, None):
        with pytest.raises(ValueError, match="positive number in Hz"):
            check_sfreq(bad)


# ------------------------------------------------------------------------------ labels, subjects
@pytest.mark.parametrize(
    "y", [["left", np.nan, "right", "left"], [0, None, 1, 1], np.array([0.0, 1.0, np.nan, 1.0]),
          np.asarray(["left", np.nan, "right", "left"])],  # np.asarray made NaN the string "nan"
)
def test_missing_labels_raise(y: object) -> None:
    with pytest.raises(ValueError, match=r"1 missing label.*\[[12]\].*not a class"):
        check_labels(y)


def test_label_classes_and_length() -> None:
    np.testing.assert_array_equal(check_labels(["a", "b", "a"]), ["a", "b", "a"])
    with pytest.raises(ValueError, match=r"1 class\(es\) \[1\].*at least 2"):
        check_labels([1, 1, 1])
    with pytest.raises(ValueError, match="at most 2"):
        check_labels([0, 1, 2], max_classes=2)
    with pytest.raises(ValueError, match="X has 4 trials but y has 3 labels"):
        check_labels([0, 1, 0], n_trials=4)
    with pytest.raises(ValueError, match="1-D"):
        check_labels([[0, 1]])


def test_subjects() -> None:
    assert check_subjects(4.0, range(1, 10)) == [4]
    assert check_subjects([3, np.int64(1), 3.0], range(1, 10)) == [1, 3]
    assert check_subjects(None, range(1, 4)) == [1, 2, 3]
    with pytest.raises(ValueError, match=r"4\.5, which is not integral; valid subjects are"):
        check_subjects(4.5, range(1, 10))
    with pytest.raises(ValueError, match=r"'4' \(str\)"):
        check_subjects("4", range(1, 10))
    with pytest.raises(ValueError, match=r"unknown subjects \[10\]; valid .* 1-9"):
        check_subjects([10], range(1, 10))
    with pytest.raises(ValueError, match="empty"):
        check_subjects([], range(1, 10))


# ------------------------------------------------------------------------------ classifier bundle
def test_training_and_prediction_bundles() -> None:
    from eegmtl.eeg.checks import check_prediction_epochs, check_training_epochs

    kw = dict(sfreq=250.0, tmin=0.0, tmax=4.0)
    X, y = _eeg(n=20).astype(np.float32) * 1e-6, np.repeat([0, 1], 10)
    X64, y_out, unit, ref = check_training_epochs(X, y, **kw)
    assert X64.dtype == np.float64 and unit == "V" and ref.scale == pytest.approx(1e-5, rel=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_prediction_epochs(X[:3], ref, **kw)
    with pytest.warns(AmplitudeWarning, match=r"\d\.\d+e\+05x the amplitude"):
        check_prediction_epochs(X[:3] * 1e6, ref, **kw)
    with pytest.raises(ValueError, match="declare sfreq=500"):
        check_prediction_epochs(np.repeat(X, 2, axis=-1), ref, **kw)
    with pytest.raises(ValueError, match="missing label"):
        check_training_epochs(X, np.r_[y[:-1], np.nan], **kw)
    with pytest.raises(ValueError, match="looks like V"):
        check_training_epochs(X, y, units="uV", **kw)
    Xo = X.copy()
    Xo[3] *= 1e6
    with pytest.warns(OutlierTrialWarning, match=r"trial.*: 3 \("):
        check_training_epochs(Xo, y, units=None, **kw)
