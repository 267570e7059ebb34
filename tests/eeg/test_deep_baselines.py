"""Deep baselines: every recipe builds and trains one epoch on tiny data through EEGClassifier."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("braindecode")

from eegmtl.eeg import deep_baselines as db  # noqa: E402


def _tiny(n: int = 16, n_times: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3, n_times)) * 10.0
    y = np.array(["left", "right"] * (n // 2))
    return X, y


@pytest.mark.parametrize("model", sorted(db.RECIPES))
def test_recipe_builds_and_trains_one_epoch(model: str) -> None:
    X, y = _tiny()
    Xv, yv = _tiny(8, seed=1)
    clf = db.deep_baseline_factory({"model": model, "max_epochs": 1, "batch_size": 8,
                                    "sfreq": 250.0})
    clf.fit(X, y, X_val=Xv, y_val=yv)
    assert clf.n_epochs_trained_ == 1
    assert "valid_loss" in clf.history_[-1]  # early stopping watched the given validation fold
    proba = clf.predict_proba(Xv)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert set(clf.predict(Xv)) <= {"left", "right"}


def test_recipes_are_documented_data() -> None:
    for r in db.recipe_table():
        assert r["source"] and r["lr"] > 0 and r["max_epochs"] > 0 and r["batch_size"] > 0
        assert r["optimizer"] in ("adam", "adamw") and r["sfreq"] > 0


def test_resampling_to_recipe_rate_and_validation_fold() -> None:
    X, y = _tiny(n_times=250)  # 2 s at 125 Hz -> 500 samples at the recipe's 250 Hz
    clf = db.make_deep_baseline("EEGNet" if "EEGNet" in db.RECIPES else "ATCNet", sfreq=125.0,
                                max_epochs=1, batch_size=8, augmentation=None)
    clf.fit(X, y, X_val=X[:4], y_val=y[:4])
    assert clf.net_.module_.n_times == 500
    # the validation fold given to fit is what skorch validated on (4 trials, not a 20 % split)
    assert clf.history_[-1]["batches"][-1]["valid_batch_size"] == 4


def test_bad_config_errors() -> None:
    with pytest.raises(ValueError, match="unknown deep baseline"):
        db.make_deep_baseline("NoNet")
    with pytest.raises(TypeError, match="unknown option"):
        db.deep_baseline_factory({"model": "ATCNet", "learning_rate": 1})
    with pytest.raises(ValueError, match="both X_val and y_val"):
        db.make_deep_baseline("ATCNet").fit(*_tiny(), X_val=_tiny()[0])


def test_networks_train_on_the_gpu_when_there_is_one(monkeypatch) -> None:
    """``device="auto"`` (the default of every braindecode baseline, as of MixNet): ``cuda``
    when torch sees a GPU, else ``cpu``; an explicit device is kept."""
    import torch

    from eegmtl.eeg.baselines import make_eegnet, make_shallow_fbcsp_net

    assert db.BraindecodeClassifier().device == "auto"
    real_gpu = torch.cuda.is_available()
    assert make_eegnet().device == ("cuda" if real_gpu else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert make_eegnet().device == "cuda" and make_shallow_fbcsp_net().device == "cuda"
    assert make_eegnet(device="cpu").device == "cpu"
    if not real_gpu:  # "auto" reaches the fit as cuda: torch then says it has no GPU
        X, y = _tiny(8, n_times=256)
        with pytest.raises(Exception, match="(?i)cuda|nvidia|driver|torch not compiled"):
            db.deep_baseline_factory({"model": "EEGNet", "max_epochs": 1,
                                      "batch_size": 4}).fit(X, y)


@pytest.mark.parametrize("mode, shape", [(True, None), ("channel", (1, 3, 1)),
                                         ("channel_time", (1, 3, 512))])
def test_standardize_modes_fit_on_training_trials(mode, shape) -> None:
    from eegmtl.eeg.preprocessing import EpochStandardizer

    X, y = _tiny()
    Xv, yv = _tiny(8, seed=1)
    clf = db.make_deep_baseline("EEGNet", max_epochs=1, batch_size=8, standardize=mode)
    clf.fit(X, y, X_val=Xv * 5.0, y_val=yv)
    mean, sd = clf.scale_
    ref = EpochStandardizer(per="all" if mode is True else mode).fit(X.astype(np.float32))
    assert np.shape(mean) == (shape or ())  # floats for one scalar z-score
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-5)
    np.testing.assert_allclose(sd, ref.scale_, rtol=1e-5)
    with pytest.raises(ValueError, match="standardize must be"):
        db.make_deep_baseline("EEGNet", max_epochs=1, standardize="yes").fit(X, y)


def test_input_checks_say_what_is_wrong_and_how_to_fix_it() -> None:
    """Volts or millivolts refused with the factor to µV; prediction trials checked against the
    fit's channels, length and amplitude; validation trials too; unfitted -> NotFittedError;
    no epochs, batches or learning rate -> a clear error before training."""
    from sklearn.exceptions import NotFittedError

    from eegmtl.eeg.checks import AmplitudeWarning

    X, y = _tiny()
    clf = db.make_deep_baseline("EEGNet", max_epochs=1, batch_size=8, patience=None)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    for bad, match in (({"max_epochs": 0}, "max_epochs must be a positive integer; got 0"),
                       ({"batch_size": -1}, "batch_size must be a positive integer; got -1"),
                       ({"lr": 0.0}, "lr must be > 0; got 0.0")):
        with pytest.raises(ValueError, match=match):
            db.make_deep_baseline("EEGNet", **{"max_epochs": 1, **bad}).fit(X, y)
    for factor, unit, fix in ((1e-6, "V", r"1e\+06"), (1e-3, "mV", "1000")):
        with pytest.raises(ValueError, match=f"looks like {unit};.*multiply X by {fix}"):
            clf.fit(X * factor, y)
    with pytest.raises(ValueError, match="X_val has 2 channels but the estimator was fitted"):
        clf.fit(X, y, X_val=X[:, :2], y_val=y)
    clf.fit(X, y)
    assert (clf.n_channels_in_, clf.n_times_in_) == (3, 512)
    with pytest.raises(ValueError, match="X has 2 channels but the estimator was fitted on 3"):
        clf.predict(X[:, :2])
    with pytest.raises(ValueError, match="X has 256 samples per trial but fit saw 512"):
        clf.predict_proba(X[:, :, :256])
    with pytest.warns(AmplitudeWarning, match="1e-06x the amplitude seen at fit"):
        clf.predict(X * 1e-6)
    Xn = X.copy()
    Xn[3, 1, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(Xn)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_switches_the_cudnn_autotuner_on(monkeypatch) -> None:
    """A braindecode fit on CUDA runs with cuDNN's autotuner (as the MTL trainer's fits)."""
    import torch

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    X, y = _tiny(8, n_times=256)
    db.make_deep_baseline("EEGNet", max_epochs=1, batch_size=4, device="cuda").fit(X, y)
    assert torch.backends.cudnn.benchmark
