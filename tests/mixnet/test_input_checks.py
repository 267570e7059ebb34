"""MixNetClassifier on bad or unusual input: every case gives the right result or a clear
error / warning naming the cause (dtypes, units, amplitude, sampling rate, labels,
checkpoints of other runs, damaged checkpoint files)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from eegmtl import MixNetClassifier
from eegmtl.eeg.checks import AmplitudeWarning, OutlierTrialWarning
from eegmtl.mtl.checkpoint import CheckpointMismatchError, CorruptCheckpointError

SFREQ = 250.0


def make_epochs(n: int = 40, seed: int = 0, sfreq: float = SFREQ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 4-s trials in µV; class 1 has a 12 Hz rhythm on the last channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(4 * sfreq)) / sfreq
    y = np.arange(n) % 2
    X = 10.0 * rng.standard_normal((n, 3, t.size))
    X[y == 1, 2] += 15.0 * np.sin(2 * np.pi * 12.0 * t)
    return X, y


def quick(**kwargs) -> MixNetClassifier:
    return MixNetClassifier(**{"max_epochs": 1, "random_state": 0, "device": "cpu", **kwargs})


@pytest.fixture(scope="module")
def data():
    return make_epochs()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return quick().fit(X, y)


# ----------------------------------------------------------------------------- dtypes
def test_float32_fit_and_predict_equal_float64_to_rounding(data, fitted):
    X, y = data
    X32 = X.astype(np.float32)
    est32 = quick().fit(X32, y)
    np.testing.assert_allclose(est32.predict_proba(X32), fitted.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(est32.predict(X32), fitted.predict(X))
    np.testing.assert_allclose(fitted.predict_proba(X32), fitted.predict_proba(X), atol=1e-5)


# ----------------------------------------------------------------------------- units
def test_millivolts_are_converted(data, fitted):
    X, y = data
    est = quick().fit(X * 1e-3, y)  # the same trials in mV
    assert est.scale_ == 1e3
    np.testing.assert_allclose(est.predict_proba(X * 1e-3), fitted.predict_proba(X), atol=1e-4)


def test_volts_declared_as_microvolts_raise_with_the_factor(data):
    X, y = data
    with pytest.raises(ValueError, match=r"declared in uV .* looks like V.*multiply X by 1e\+06"):
        quick(input_scale="uV").fit(X * 1e-6, y)


def test_flat_trial_is_reported_as_flat_with_its_index(data):
    X, y = data
    X = X.copy()
    X[5] = 0.0
    with pytest.warns(AmplitudeWarning, match=r"1 flat trial.*indices \[5\]"):
        with pytest.raises(ValueError, match=r"flat trial\(s\).*indices \[5\].*CSP"):
            quick().fit(X, y)  # the CSP needs every trial's covariance: refused, index given
    with pytest.warns(AmplitudeWarning, match=r"indices \[5\]"):
        est = quick(input="time").fit(X, y)  # no CSP: trained, unit judged on the others
    assert est.scale_ == 1.0  # µV, not "looks like volts"


def test_artefact_trial_is_reported_with_its_index_in_the_callers_array(data):
    X, y = data
    X = X.copy()
    X[17] *= 1e6
    with pytest.warns(OutlierTrialWarning, match=r"1 outlier trial.*17 \("):
        quick().fit(X, y)


@pytest.mark.parametrize(("factor", "ratio"), [(0.01, "0.01x"), (1000.0, "1e\\+03x")])
def test_prediction_amplitude_far_from_fit_warns_with_the_ratio(data, fitted, factor, ratio):
    X, _ = data
    with pytest.warns(AmplitudeWarning, match=f"{ratio} the amplitude seen at fit"):
        fitted.predict(X * factor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AmplitudeWarning)
        fitted.predict(X * 1.5)  # an ordinary session-to-session change stays silent


# ----------------------------------------------------------------------------- sampling rate
def test_500_hz_data_with_the_default_sfreq_is_refused(data):
    X, y = make_epochs(sfreq=500.0)
    with pytest.raises(ValueError, match="2000 samples per trial.*declare sfreq=500"):
        quick().fit(X, y)


def test_sfreq_128_on_250_hz_data_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="1000 samples per trial.*declare sfreq=250"):
        quick(sfreq=128.0).fit(X, y)


def test_preprocessing_window_checks_the_rate_when_the_epoch_is_known(data):
    from eegmtl.eeg.preprocessing import select_window

    X, _ = data
    assert select_window(X, 250.0, 0.0, 2.0, epoch_tmax=4.0).shape[-1] == 500
    with pytest.raises(ValueError, match="declare sfreq=250"):
        select_window(X, 500.0, 0.0, 2.0, epoch_tmax=4.0)


# ----------------------------------------------------------------------------- labels
def test_nan_labels_are_not_a_class(data):
    X, y = data
    y = y.astype(float)
    y[[3, 8]] = np.nan
    with pytest.raises(ValueError, match=r"2 missing label\(s\).*indices \[3, 8\]"):
        quick().fit(X, y)
    with pytest.raises(ValueError, match="missing label"):
        quick().fit(X, np.where(np.isnan(y), "nan", "left"))


# ----------------------------------------------------------------------------- checkpoints
def test_resume_with_another_subjects_data_or_method_raises(tmp_path):
    X, y = make_epochs(seed=0)
    quick(checkpoint_dir=tmp_path).fit(X, y)
    meta = tmp_path / "estimator.json"
    other_X, other_y = make_epochs(seed=1)  # "another subject"
    with pytest.raises(CheckpointMismatchError, match="data_sha256") as err:
        quick(checkpoint_dir=tmp_path).fit(other_X, other_y, resume=True)
    assert str(meta) in str(err.value) and "resume=False" in str(err.value)
    with pytest.raises(CheckpointMismatchError, match="mtl: checkpoint \"'blending'\", now "
                       "\"'pcgrad'\""):
        quick(checkpoint_dir=tmp_path, mtl="pcgrad").fit(X, y, resume=True)
    with pytest.raises(CheckpointMismatchError, match="settings_hash"):
        quick(checkpoint_dir=tmp_path, margin=0.5).fit(X, y, resume=True)
    resumed = quick(checkpoint_dir=tmp_path, max_epochs=2).fit(X, y, resume=True)
    assert resumed.n_epochs_trained_ == 2  # same data and settings, more epochs: continues


@pytest.mark.parametrize("content", ["", '{"seed": 3, "prot'])
def test_empty_or_truncated_estimator_json_names_the_file(tmp_path, data, content):
    X, y = data
    quick(checkpoint_dir=tmp_path).fit(X, y)
    meta = tmp_path / "estimator.json"
    assert json.loads(meta.read_text())["fingerprint"]["shape"] == list(X.shape)
    meta.write_text(content)
    with pytest.raises(ValueError, match="resume=False") as err:
        quick(checkpoint_dir=tmp_path).fit(X, y, resume=True)
    assert str(meta) in str(err.value)


def test_truncated_last_pt_names_the_file(tmp_path, data):
    X, y = data
    quick(checkpoint_dir=tmp_path).fit(X, y)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError) as err:
        quick(checkpoint_dir=tmp_path, max_epochs=2).fit(X, y, resume=True)
    assert str(last) in str(err.value)


def test_recorded_settings_keep_the_hash_of_the_committed_main_job_records():
    """Parameters added after the main job's records leave its settings hash unchanged while
    they are None, and change it once they are set."""
    from eegmtl._io import config_hash
    from eegmtl.mixnet import MixNetClassifier
    from eegmtl.mixnet.config import LATER_PARAMS, RUN_PARAMS, recorded_settings

    params = MixNetClassifier(protocol="sd", mtl="blending", max_epochs=200).get_params()
    settings = recorded_settings(params)
    assert not set(RUN_PARAMS) & set(settings)
    assert not set(LATER_PARAMS) & set(settings)
    # the hash of pipelines/results/mixnet_sd_main.csv (the settings as recorded in JSON)
    assert config_hash(json.loads(json.dumps(settings, sort_keys=True, default=str))) \
        == "25af53bd7c3c"
    changed = recorded_settings({**params, "augmentation": "segrec"})
    assert changed["augmentation"] == "segrec"
    assert config_hash(json.loads(json.dumps(changed, sort_keys=True, default=str))) \
        != "25af53bd7c3c"
