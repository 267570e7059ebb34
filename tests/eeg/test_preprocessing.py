"""eegmtl.eeg.preprocessing: MixNet's recipe, shapes after every step, equivalences, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from eegmtl.eeg.preprocessing import (
    MIXNET_BANDS,
    FilterBank,
    Resampler,
    TimeWindow,
    check_epochs_array,
    filter_bank,
    mixnet_preprocess,
    resample,
    select_window,
)


def _noise(n: int = 6, c: int = 3, t: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, c, t))


def test_mixnet_bands() -> None:
    assert MIXNET_BANDS[0] == (4.0, 8.0) and MIXNET_BANDS[-1] == (36.0, 40.0)
    assert len(MIXNET_BANDS) == 9


def test_band_sets_as_text() -> None:
    from eegmtl.eeg.filters import parse_bands

    assert parse_bands("4-40/4") == MIXNET_BANDS
    assert parse_bands(" 8 - 20 / 4 ") == ((8.0, 12.0), (12.0, 16.0), (16.0, 20.0))
    assert parse_bands("7.5-30") == ((7.5, 30.0),)
    assert parse_bands([[4, 8], (8, 12)]) == ((4.0, 8.0), (8.0, 12.0))
    for bad, why in [("4-30/4", "whole multiple"), ("8-4/2", "LO < HI"), ("4..8", "LO-HI/WIDTH"),
                     ("4-8/0", "whole multiple"), ([], "empty"), ([4, 8], "pairs")]:
        with pytest.raises(ValueError, match=why):
            parse_bands(bad)
    X = _noise(t=400)
    assert np.array_equal(filter_bank(X, 100.0, "4-28/4"), filter_bank(X, 100.0, MIXNET_BANDS[:6]))
    assert FilterBank("4-28/4", 100.0).fit(X).transform(X).shape == (6, 6, 3, 400)
    with pytest.raises(ValueError, match="Nyquist"):  # the rate-dependent check still applies
        filter_bank(X, 100.0, "40-56/8")
    # a text band set reaches MixNet's features (9 -> 6 bands x 2 CSP filters)
    from eegmtl.mixnet.features import MixNetFeatures

    y = np.repeat([0, 1], 10)
    X = np.random.default_rng(1).standard_normal((20, 3, 1000))
    assert MixNetFeatures(bands="4-28/4").fit_transform(X, y).shape == (20, 12, 400)


@pytest.mark.realdata
def test_shapes_after_every_step_on_real_data(real_2b: Path) -> None:
    from eegmtl.eeg.datasets import load_bci2b

    X, _, _ = load_bci2b(subjects=1, sessions=1, units="uV")
    assert X.shape == (120, 3, 1000)
    Xw = select_window(X, 250.0, 0.0, 4.0)
    assert Xw.shape == (120, 3, 1000)
    Xr = resample(Xw, 250.0, 100.0)
    assert Xr.shape == (120, 3, 400)
    Xf = filter_bank(Xr, 100.0)
    assert Xf.shape == (120, 9, 3, 400)
    np.testing.assert_allclose(mixnet_preprocess(X), Xf)
    pipe = make_pipeline(TimeWindow(), Resampler(), FilterBank())
    np.testing.assert_allclose(pipe.fit_transform(X), Xf)
    # the export is band-passed ~6.7-25 Hz: the 36-40 Hz band is far weaker than 8-12 Hz
    power = (Xf**2).mean(axis=(0, 2, 3))
    assert power[1] > 100 * power[8]


def test_filter_bank_equals_mixnet_scipy_filtfilt() -> None:
    """MixNet: scipy.signal.butter(5, band, 'band') + filtfilt(b, a) (default padding)."""
    X = resample(_noise(), 250.0, 100.0)
    out = filter_bank(X, 100.0)
    for k, (lo, hi) in enumerate(MIXNET_BANDS):
        b, a = scipy.signal.butter(5, [lo, hi], btype="band", fs=100.0)
        np.testing.assert_allclose(out[:, k], scipy.signal.filtfilt(b, a, X, axis=-1),
                                   atol=1e-10)


def test_filter_bank_passes_and_stops() -> None:
    t = np.arange(400) / 100.0
    X = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 30 * t)])[None]  # (1, 2, 400)
    out = filter_bank(X, 100.0, [(8, 12), (28, 32)], output="sos")
    mid = slice(100, 300)
    rms = np.sqrt((out[..., mid] ** 2).mean(-1))[0]  # (band, channel)
    assert rms[0, 0] > 0.6 and rms[0, 1] < 0.01  # 10 Hz passes 8-12, 30 Hz blocked
    assert rms[1, 1] > 0.6 and rms[1, 0] < 0.01


def test_resample_fft_and_polyphase() -> None:
    X = _noise()
    assert resample(X, 250.0, 100.0).shape == (6, 3, 400)
    np.testing.assert_allclose(
        resample(X, 250.0, 100.0, method="polyphase", pad="constant"),
        scipy.signal.resample_poly(X, 2, 5, axis=-1), atol=1e-12,
    )
    np.testing.assert_array_equal(resample(X, 250.0, 250.0), X)
    t = np.arange(1000) / 250.0
    sine = np.sin(2 * np.pi * 5 * t)[None, None]
    out = resample(sine, 250.0, 100.0)[0, 0]
    np.testing.assert_allclose(out[50:350], np.sin(2 * np.pi * 5 * np.arange(400) / 100)[50:350],
                               atol=1e-3)


def test_select_window() -> None:
    X = _noise(t=2000)  # 8 s epochs starting at trial start; cue at 3 s
    out = select_window(X, 250.0, 0.0, 4.0, epoch_tmin=-3.0)
    np.testing.assert_array_equal(out, X[..., 750:1750])
    with pytest.raises(ValueError, match="outside the epoch"):
        select_window(X, 250.0, 0.0, 6.0, epoch_tmin=-3.0)
    with pytest.raises(ValueError, match="larger than tmin"):
        select_window(X, 250.0, 2.0, 1.0)


def test_mismatched_sfreq_is_caught() -> None:
    X = _noise(t=1000)  # 4 s at 250 Hz; claiming 500 Hz makes a 0-4 s window impossible
    with pytest.raises(ValueError, match="outside the epoch"):
        TimeWindow(sfreq=500.0).fit_transform(X)
    with pytest.raises(ValueError, match="Nyquist"):
        filter_bank(X, 60.0)  # 36-40 Hz above the Nyquist of a wrongly stated 60 Hz
    with pytest.raises(ValueError, match="positive number"):
        resample(X, 0.0, 100.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_rejected(bad: float) -> None:
    X = _noise()
    X[2, 1, 10] = bad
    for fn in (lambda x: resample(x, 250, 100), lambda x: filter_bank(x, 250.0),
               lambda x: select_window(x, 250.0), lambda x: Resampler().fit(x)):
        with pytest.raises(ValueError, match="NaN"):
            fn(X)


def test_wrong_rank_and_short_signals() -> None:
    with pytest.raises(ValueError, match=r"3-D \(n_trials, n_channels, n_times\)"):
        filter_bank(np.zeros((3, 1000)), 100.0)
    with pytest.raises(ValueError, match="4-D"):
        FilterBank().fit(np.zeros((2, 9, 3, 400)))
    with pytest.raises(ValueError, match="time samples"):
        filter_bank(_noise(t=4), 100.0)
    with pytest.raises(ValueError, match="too short"):
        resample(_noise(t=3), 250.0, 100.0)
    with pytest.raises(ValueError, match="empty"):
        check_epochs_array(np.zeros((0, 3, 10)))
    with pytest.raises(ValueError, match="real numbers"):
        check_epochs_array(np.array([[["a"]]]))


def test_transformers_are_sklearn_estimators() -> None:
    fb = FilterBank(bands=[(8, 12)], sfreq=100.0, order=4)
    assert clone(fb).get_params() == fb.get_params()
    assert Resampler(250, 125).set_params(sfreq_out=100).sfreq_out == 100
    out = FilterBank(bands=[(8, 12), (12, 16)], sfreq=100.0).fit_transform(_noise(t=400))
    assert out.shape == (6, 2, 3, 400)
    with pytest.raises(ValueError, match="invalid"):
        FilterBank(bands=[(12, 8)], sfreq=100.0).fit(_noise(t=400))


@pytest.mark.parametrize("output", ["ba", "sos"])
def test_filter_bank_equals_mne_zero_phase_iir(output: str) -> None:
    """The scipy path gives MNE's filter_data(method='iir', phase='zero') numbers."""
    import mne

    X = resample(_noise(), 250.0, 100.0)
    out = filter_bank(X, 100.0, output=output)
    n, c, t = X.shape
    for k, (lo, hi) in enumerate(MIXNET_BANDS):
        ref = mne.filter.filter_data(
            X.reshape(n * c, t), 100.0, lo, hi, method="iir", phase="zero", verbose=False,
            iir_params=dict(ftype="butter", order=5, output=output, padlen=33),
        ).reshape(n, c, t)
        np.testing.assert_allclose(out[:, k], ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_filter_bank_float32_input_filtered_in_float64() -> None:
    X = resample(_noise(), 250.0, 100.0)
    out32 = filter_bank(X.astype(np.float32), 100.0)
    assert out32.dtype == np.float64
    ref = filter_bank(X.astype(np.float32).astype(np.float64), 100.0)
    np.testing.assert_array_equal(out32, ref)


def test_filter_bank_transformer_designs_once_at_fit() -> None:
    from eegmtl.eeg.preprocessing import ButterworthBank

    X = resample(_noise(), 250.0, 100.0)
    fb = FilterBank().fit(X)
    assert isinstance(fb.bank_, ButterworthBank) and len(fb.bank_.coefficients) == 9
    np.testing.assert_array_equal(fb.transform(X), filter_bank(X, 100.0))
    with pytest.raises(ValueError, match="Nyquist"):
        FilterBank(bands=[(30, 60)], sfreq=100.0).fit(X)


def test_design_filter_bank_padlen_options() -> None:
    from eegmtl.eeg.preprocessing import design_filter_bank

    assert design_filter_bank(order=5).padlen == 33
    assert design_filter_bank(order=3, padlen=0).padlen == 0
    assert design_filter_bank(padlen="auto").padlen > 33
    with pytest.raises(ValueError, match="padlen"):
        design_filter_bank(padlen=-1)


def test_epoch_standardizer_uses_fit_statistics_and_refuses_bad_input():
    from eegmtl.eeg.preprocessing import EpochStandardizer

    rng = np.random.default_rng(0)
    train = (rng.standard_normal((10, 3, 50)) * 4.0 + 7.0).astype(np.float32)
    st = EpochStandardizer().fit(train)
    z = st.transform(train)
    assert z.dtype == np.float32
    assert abs(float(z.mean())) < 1e-5 and float(z.std()) == pytest.approx(1.0, rel=1e-5)
    other = train * 2.0
    np.testing.assert_allclose(st.transform(other), (other - st.mean_) / st.scale_, rtol=1e-6)
    assert EpochStandardizer().fit(np.full((2, 3), 5.0)).scale_ == 1.0  # constant input
    bad = train.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        EpochStandardizer().fit(bad)
    with pytest.raises(ValueError, match="per must be one of"):
        EpochStandardizer(per="time").fit(train)
    with pytest.raises(ValueError, match="needs epochs"):
        EpochStandardizer(per="channel").fit(train[0])


def test_channel_modes_match_the_recipes_code():
    """``channel_time`` is what EEG-TCNet's and ATCNet's code do (a StandardScaler per channel
    on trials x samples); ``channel``: one mean and SD per channel."""
    from sklearn.preprocessing import StandardScaler

    from eegmtl.eeg.preprocessing import EpochStandardizer, standardize_mode

    rng = np.random.default_rng(1)
    train = rng.standard_normal((12, 3, 40)) * np.array([1.0, 5.0, 20.0])[:, None] + 3.0
    test = rng.standard_normal((5, 3, 40)) * 7.0
    fitted = EpochStandardizer(per="channel_time").fit(train)
    for j in range(3):
        ref = StandardScaler().fit(train[:, j, :])
        np.testing.assert_allclose(fitted.transform(test)[:, j, :], ref.transform(test[:, j, :]),
                                   rtol=1e-10)
    z = EpochStandardizer(per="channel").fit(train).transform(train)
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-10)
    np.testing.assert_allclose(z.std(axis=(0, 2)), 1.0, rtol=1e-10)
    assert [standardize_mode(v) for v in (None, False, True, "channel")] == [
        None, None, "all", "channel"]
    with pytest.raises(ValueError, match="standardize must be"):
        standardize_mode("yes")
