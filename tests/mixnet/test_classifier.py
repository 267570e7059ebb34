"""Tests of eegmtl.mixnet.classifier.MixNetClassifier: wiring, scikit-learn contract, errors, I/O.

scikit-learn's ``check_estimator`` skips most checks for 3-D input, so the contract is pinned
here explicitly. Every fit uses tiny synthetic epochs (40 trials, 3 channels, 250 Hz, 4 s, a weak
class-dependent 12 Hz rhythm on C3 or C4) and 1-4 epochs, so each test takes about a second.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import eegmtl.mixnet.net
from eegmtl import MixNetClassifier
from eegmtl.eeg.checks import AmplitudeWarning
from eegmtl.mixnet.config import resolve_mtl
from eegmtl.mixnet.defaults import PROTOCOL_DEFAULTS
from eegmtl.mixnet.io import FORMAT_VERSION
from eegmtl.mtl.aggregators import AlignedMTL, PCGrad, Sum
from eegmtl.mtl.trainer import Trainer
from eegmtl.mtl.weightings import EqualWeighting, FixedWeighting

SFREQ = 250.0


def make_epochs(
    n: int = 40, n_channels: int = 3, seconds: float = 4.0, seed: int = 0, n_classes: int = 2,
    amplitude: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """µV epochs: white noise (σ = 10 µV) + a 12 Hz rhythm on channel ``label`` (weak)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    y = np.arange(n) % n_classes
    X = 10.0 * rng.standard_normal((n, n_channels, t.size))
    for i, label in enumerate(y):
        phase = rng.uniform(0, 2 * np.pi)
        X[i, min(label * (n_channels - 1) // max(n_classes - 1, 1), n_channels - 1)] += (
            amplitude * np.sin(2 * np.pi * 12.0 * t + phase)
        )
    return X, y


def quick(**kwargs) -> MixNetClassifier:
    params = {"max_epochs": 2, "random_state": 0}
    params.update(kwargs)
    return MixNetClassifier(**params)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_epochs()


@pytest.fixture(scope="module")
def fitted(data) -> MixNetClassifier:
    torch.set_num_threads(1)
    X, y = data
    return quick().fit(X, y)


# ----------------------------------------------------------------------------- MTL wiring
@pytest.fixture
def trainers(monkeypatch) -> list[Trainer]:
    """The trainers MixNet's fits build (in order), kept by a spy subclass."""
    made: list[Trainer] = []

    class SpyTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(eegmtl.mixnet.net, "Trainer", SpyTrainer)
    return made


def test_resolve_mtl_names_and_dicts():
    assert resolve_mtl("blending")["weighting"] == "blending"
    assert resolve_mtl(None)["weighting"] == "blending"
    r = resolve_mtl("pcgrad")
    assert (r["weighting"], r["aggregator"], r["flat"]) == ("ew", "pcgrad", None)
    r = resolve_mtl("RLW")
    assert (r["weighting"], r["aggregator"]) == ("rlw", "sum")
    r = resolve_mtl("f-pcgrad")
    assert r["aggregator"] == "pcgrad" and r["flat"] is not None
    r = resolve_mtl({"weighting": "uw", "aggregator": "cagrad", "aggregator_params": {"c": 0.4}})
    assert (r["weighting"], r["aggregator"], r["aggregator_params"]) == ("uw", "cagrad", {"c": 0.4})
    assert resolve_mtl({"flat": False})["flat"] is None
    assert resolve_mtl("fixed")["weighting"] == "fixed"
    with pytest.raises(ValueError, match="unknown MTL method"):
        resolve_mtl("no_such_method")
    with pytest.raises(ValueError, match="unknown key"):
        resolve_mtl({"weightings": "ew"})
    with pytest.raises(TypeError):
        resolve_mtl(3)


def test_protocol_defaults_and_explicit_override():
    sd = MixNetClassifier()._resolved_config()
    assert {k: sd[k] for k in PROTOCOL_DEFAULTS["sd"]} == {
        "batch_size": 32, "margin": 0.1, "latent_dim": 4, "warmup": 7}
    si = MixNetClassifier(protocol="subject_independent")._resolved_config()
    assert {k: si[k] for k in PROTOCOL_DEFAULTS["si"]} == {
        "batch_size": 100, "margin": 5.0, "latent_dim": 18, "warmup": 3}
    mixed = MixNetClassifier(protocol="si", latent_dim=8, margin=0.5)._resolved_config()
    assert (mixed["latent_dim"], mixed["margin"], mixed["batch_size"]) == (8, 0.5, 100)
    over = MixNetClassifier(mtl="pcgrad", weighting="rlw")._resolved_config()["method"]
    assert (over["weighting"], over["aggregator"]) == ("rlw", "pcgrad")
    assert MixNetClassifier(loss_weights=[0.5, 0.1, 1.0])._resolved_config()["method"][
        "weighting"] == "fixed"
    with pytest.raises(ValueError, match="protocol"):
        MixNetClassifier(protocol="cross")._resolved_config()
    with pytest.raises(ValueError, match="loss_weights"):
        MixNetClassifier(mtl="fixed")._resolved_config()


def test_fit_records_history_and_blending_warmup(fitted):
    cfg = fitted.config_
    assert cfg["latent_dim"] == 4 and cfg["batch_size"] == 32 and cfg["method"]["weighting"] == (
        "blending")
    assert fitted.model_.latent_dim == 4 and fitted.model_.n_channels == 18
    assert fitted.n_epochs_trained_ == 2 and len(fitted.history_) == 2
    assert {"val_loss", "val_classification_accuracy", "lr"} <= set(fitted.history_.columns)
    w = fitted.weights_history_[["weight_reconstruction", "weight_metric",
                                 "weight_classification"]].to_numpy()
    assert len(w) == 2  # 32 training trials (8 validate), batch 32 -> 1 step per epoch
    np.testing.assert_array_equal(w, 1.0)  # warm-up W = 7 epochs at [1, 1, 1]
    assert fitted.history_["lr"].iloc[0] == pytest.approx(1e-3)


def test_blending_weights_change_only_after_warmup(data):
    X, y = data
    est = quick(warmup=1, max_epochs=4, batch_size=8).fit(X, y)
    steps = est.weights_history_
    cols = ["weight_reconstruction", "weight_metric", "weight_classification"]
    warm = steps[steps["epoch"] < 1][cols].to_numpy()
    after = steps[steps["epoch"] >= 2][cols].to_numpy()
    np.testing.assert_array_equal(warm, 1.0)
    assert not np.allclose(after, 1.0)
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-4)  # normalised after warm-up


@pytest.mark.parametrize(
    ("mtl", "aggregator", "flat"),
    [("ew", Sum, False), ("pcgrad", PCGrad, False), ("f-pcgrad", PCGrad, True),
     ("aligned_mtl", AlignedMTL, False)],
)
def test_other_mtl_methods_train(data, trainers, mtl, aggregator, flat):
    """The trainer really steps with the requested aggregator (and flat step for "f-")."""
    X, y = data
    est = quick(mtl=mtl, max_epochs=1).fit(X, y)
    assert est.predict_proba(X).shape == (len(X), 2)
    (trainer,) = trainers
    assert type(trainer.step.aggregator) is aggregator
    assert isinstance(trainer.step.weighting, EqualWeighting)
    assert (trainer.step.flat is not None) is flat
    assert (est.config_["method"]["flat"] is not None) is flat


def test_weight_averaging_option_keeps_the_averaged_network(data, trainers):
    """``ema_decay`` reaches the trainer, and the fitted network is the averaged one (of the
    best epoch), which predicts differently from the trained weights of the same fit."""
    from eegmtl.mixnet.config import recorded_settings
    from eegmtl.mtl.callbacks import WeightAveraging

    X, y = data
    est = quick(ema_decay=0.6, max_epochs=3, patience=None).fit(X, y)
    plain = quick(max_epochs=3, patience=None).fit(X, y)
    averaging, none = trainers
    (cb,) = [c for c in averaging.callbacks if isinstance(c, WeightAveraging)]
    assert cb.decay == 0.6 and not any(isinstance(c, WeightAveraging) for c in none.callbacks)
    assert recorded_settings(est.get_params())["ema_decay"] == 0.6
    assert "ema_decay" not in recorded_settings(plain.get_params())  # settings hash unchanged
    best = averaging.best_state_
    for k, v in est.model_.state_dict().items():
        assert torch.equal(v, best[k]), k
    assert not np.allclose(est.predict_proba(X), plain.predict_proba(X))


def test_fixed_loss_weights(data):
    X, y = data
    est = quick(loss_weights=[0.5, 0.1, 1.0], max_epochs=1).fit(X, y)
    w = est.weights_history_[["weight_reconstruction", "weight_metric",
                              "weight_classification"]].to_numpy()
    np.testing.assert_allclose(w, [[0.5, 0.1, 1.0]] * len(w), rtol=1e-6)
    with pytest.raises(ValueError, match="3 tasks|entries"):
        FixedWeighting(3, [1.0, 2.0])


# ----------------------------------------------------------------------------- sklearn contract
def test_init_stores_params_only_and_roundtrip():
    est = MixNetClassifier(margin=0.3, mtl="pcgrad", random_state=3)
    params = est.get_params()
    assert params["margin"] == 0.3 and params["mtl"] == "pcgrad"
    assert not [k for k in vars(est) if k.endswith("_")]
    other = MixNetClassifier().set_params(**params)
    assert other.get_params() == params
    cloned = clone(est)
    assert cloned.get_params() == params and cloned is not est


def test_not_fitted_error(data):
    X, _ = data
    est = MixNetClassifier()
    for method in (est.predict, est.predict_proba, est.transform, est.decision_function):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        est.save("unused.pt")


def test_outputs_shapes_and_consistency(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    pred = fitted.predict(X)
    np.testing.assert_array_equal(pred, fitted.classes_[proba.argmax(axis=1)])
    dec = fitted.decision_function(X)
    assert dec.shape == (40,)
    np.testing.assert_array_equal(dec > 0, proba[:, 1] > 0.5)
    z = fitted.transform(X)
    assert z.shape == (40, 4)
    assert fitted.preprocess(X).shape == (40, 18, 400)
    assert fitted.score(X, _) == pytest.approx(np.mean(pred == _))


def test_same_seed_same_model_and_predictions(fitted, data):
    X, y = data
    again = quick().fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    for (k, a), b in zip(again.model_.state_dict().items(), fitted.model_.state_dict().values()):
        assert torch.equal(a, b), k
    other = quick(random_state=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), fitted.predict_proba(X))


def test_pickle_fitted(fitted, data):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))


def test_string_labels(data):
    X, y = data
    labels = np.where(y == 0, "left_hand", "right_hand")
    est = quick(max_epochs=1).fit(X, labels)
    assert list(est.classes_) == ["left_hand", "right_hand"]
    assert set(est.predict(X)) <= {"left_hand", "right_hand"}


def test_pipeline_and_cross_val_score(data):
    X, y = data
    pipe = Pipeline([("identity", FunctionTransformer()), ("mixnet", quick(max_epochs=1))])
    cv = StratifiedKFold(2)
    scores = cross_val_score(pipe, X, y, cv=cv)
    tr, te = next(cv.split(X, y))
    first = clone(pipe).fit(X[tr], y[tr])
    assert scores[0] == pytest.approx(np.mean(first.predict(X[te]) == y[te]))


def test_grid_search(data):
    X, y = data
    grid = GridSearchCV(quick(max_epochs=1), {"margin": [0.1, 1.0]}, cv=2)
    grid.fit(X, y)
    assert [p["margin"] for p in grid.cv_results_["params"]] == [0.1, 1.0]
    # the grid's parameter reaches the trained network's loss (config_ of the refit estimator)
    assert grid.best_estimator_.config_["margin"] == grid.best_params_["margin"]
    assert grid.predict(X).shape == (40,)


def test_explicit_validation_set(data):
    X, y = data
    Xv, yv = make_epochs(n=12, seed=5)
    est = quick(max_epochs=1).fit(X, y, X_val=Xv, y_val=yv)
    assert est.history_["val_classification_accuracy"].notna().all()
    with pytest.raises(ValueError, match="both X_val and y_val"):
        quick().fit(X, y, X_val=Xv)
    with pytest.raises(ValueError, match="not in y"):
        quick().fit(X, y, X_val=Xv, y_val=yv + 5)


def test_no_validation_needs_non_blending(data):
    X, y = data
    with pytest.raises(ValueError, match="needs validation data"):
        quick(validation_size=None).fit(X, y)
    est = quick(validation_size=None, mtl="ew", max_epochs=1).fit(X, y)
    assert "val_loss" not in est.history_.columns


def test_input_scale_auto_detects_volts(fitted, data):
    X, y = data
    volts = quick().fit(X * 1e-6, y)
    assert volts.scale_ == 1e6 and fitted.scale_ == 1.0
    np.testing.assert_allclose(volts.predict_proba(X * 1e-6), fitted.predict_proba(X), atol=1e-3)
    with pytest.warns(AmplitudeWarning, match="1e-06x the amplitude seen at fit"):
        fitted.predict(X * 1e-6)  # a unit change at prediction is reported with the ratio
    explicit = quick(input_scale="uV").fit(X, y)
    assert explicit.scale_ == 1.0


def test_time_domain_input_multiclass():
    X, y = make_epochs(n=45, n_classes=3, seed=2)
    est = quick(input="time", max_epochs=1, latent_dim=3).fit(X, y)
    assert est.csp_ is None and est.model_.n_channels == 3 and est.model_.f2 == 10
    assert est.predict_proba(X).shape == (45, 3)


# ----------------------------------------------------------------------------- input errors
def test_errors_wrong_shape_nan_inf(fitted, data):
    X, y = data
    with pytest.raises(ValueError, match="3-D"):
        quick().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="3-D"):
        fitted.predict(X[0])
    bad = X.copy()
    bad[3, 1, 10] = np.nan
    bad[4, 0, 5] = np.inf
    with pytest.raises(ValueError, match="1 NaN and 1 Inf"):
        quick().fit(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(bad)
    with pytest.raises(ValueError, match="40 trials but y has 39 labels"):
        quick().fit(X, y[:-1])
    with pytest.raises(ValueError, match="channels"):
        fitted.predict(X[:, :2])


def test_errors_classes(data):
    X, y = data
    with pytest.raises(ValueError, match="1 class"):
        quick().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="too few trials per class"):
        quick().fit(X[:12], np.r_[np.zeros(8), np.ones(4)])
    X3, y3 = make_epochs(n=45, n_classes=3)
    with pytest.raises(ValueError, match="binary"):
        quick().fit(X3, y3)


def test_errors_sampling_rate(fitted, data):
    X, y = data
    short = X[..., ::2]  # the same 4 s at 125 Hz, declared as 250 Hz
    with pytest.raises(ValueError, match=r"sfreq=125"):
        quick().fit(short, y)
    longer = np.concatenate([X, X], axis=-1)  # 8 s at 250 Hz, or 4 s at 500 Hz?
    with pytest.raises(ValueError, match="2000 samples per trial.*declare sfreq=500"):
        fitted.predict(longer)  # trials longer than the declared epoch are refused
    with pytest.raises(ValueError, match="2000 samples per trial.*epoch_tmax"):
        quick().fit(longer, y)
    with pytest.raises(ValueError, match="samples per trial but fit saw 1000"):
        copy.copy(fitted).set_params(epoch_tmax=8.0).predict(longer)  # not the fit's layout
    with pytest.raises(ValueError, match="sfreq"):
        quick(sfreq=-1).fit(X, y)


def test_errors_bad_params(data):
    X, y = data
    for kwargs, match in [
        ({"validation_size": 1.5}, "validation_size"),
        ({"input": "raw"}, "input"),
        ({"input_scale": "kV"}, "input_scale"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_epochs": 0}, "max_epochs"),
    ]:
        with pytest.raises(ValueError, match=match):
            quick(**kwargs).fit(X, y)


# ----------------------------------------------------------------------------- persistence
def test_save_load_roundtrip(fitted, data, tmp_path):
    X, _ = data
    path = fitted.save(tmp_path / "model.pt")
    assert path.is_file() and not list(tmp_path.glob(".*tmp*"))  # atomic: no temp left over
    loaded = MixNetClassifier.load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    np.testing.assert_array_equal(loaded.csp_.filters_, fitted.csp_.filters_)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history_.equals(fitted.history_)


def test_load_refuses_foreign_and_newer_files(fitted, tmp_path):
    torch.save({"format": "something-else"}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a saved MixNetClassifier"):
        MixNetClassifier.load(tmp_path / "foreign.pt")
    path = fitted.save(tmp_path / "model.pt")
    state = torch.load(path, weights_only=False)
    state["format_version"] = FORMAT_VERSION + 1
    torch.save(state, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="format version"):
        MixNetClassifier.load(tmp_path / "newer.pt")
    with pytest.raises(FileNotFoundError):
        MixNetClassifier.load(tmp_path / "missing.pt")


def test_resume_matches_uninterrupted_fit(data, tmp_path):
    X, y = data
    straight = quick(max_epochs=4, batch_size=8).fit(X, y)
    part = quick(max_epochs=2, batch_size=8, checkpoint_dir=tmp_path / "ckpt").fit(X, y)
    assert (tmp_path / "ckpt" / "last.pt").is_file()
    assert part.n_epochs_trained_ == 2
    part.set_params(max_epochs=4).fit(X, y, resume=True)
    assert part.n_epochs_trained_ == 4
    np.testing.assert_array_equal(part.predict_proba(X), straight.predict_proba(X))
    with pytest.raises(ValueError, match="checkpoint_dir"):
        quick().fit(X, y, resume=True)


# ----------------------------------------------------------------------------- MOABB
@pytest.mark.realdata
def test_moabb_within_session_evaluation(bci2b_dir, tmp_path):
    """The estimator drops into a MOABB evaluation on eegmtl's 2b dataset class (µV epochs
    of 1000 samples at 250 Hz, string labels, ROC-AUC via predict_proba)."""
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    from eegmtl.eeg.datasets import BCI2bExport

    ds = BCI2bExport(path=bci2b_dir, subjects=[4], sessions=[1])
    ev = WithinSessionEvaluation(
        paradigm=LeftRightImagery(fmin=None, fmax=None), datasets=[ds], overwrite=True,
        hdf5_path=str(tmp_path), random_state=0,
    )
    res = ev.process({"MixNet": quick(max_epochs=2)})
    assert len(res) == 1 and res["session"].iloc[0] == "0train"
    assert res["samples"].iloc[0] == 120 and res["pipeline"].iloc[0] == "MixNet"
    assert 0.5 < res["score"].iloc[0] <= 1.0  # ROC-AUC; subject 4 is the easiest subject


def test_preprocess_is_the_explicit_chain(fitted, data):
    """Fit and predict share one filter path: window -> resample -> filter bank -> fitted CSP."""
    from eegmtl.eeg.preprocessing import mixnet_preprocess

    X, _ = data
    chain = fitted.csp_.transform(mixnet_preprocess(X, SFREQ)).astype(np.float32)
    np.testing.assert_array_equal(fitted.preprocess(X), chain)
    one = fitted.predict_proba(X[:1])
    np.testing.assert_allclose(one, fitted.predict_proba(X)[:1], atol=1e-6)


def test_float32_input(fitted, data):
    """float32 epochs are filtered in float64: same network input as float64 epochs up to the
    input rounding, and fit works on them."""
    X, y = data
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(fitted.preprocess(X32), fitted.preprocess(X), rtol=1e-4,
                               atol=1e-4 * np.abs(fitted.preprocess(X)).max())
    est = quick(max_epochs=1).fit(X32, y)
    assert est.predict_proba(X32).shape == (len(X), 2)
