"""Modern deep baselines, composed names (+aug / +mtl), augmentation confined to training batches
and Euclidean alignment in the runner (tiny synthetic data, one or two epochs)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from eegmtl.evaluation.composed import DEFAULT_AUGMENTATION, parse_name
from eegmtl.evaluation.methods import (
    DEEP_BASELINES,
    default_config,
    get_method,
    is_deep_method,
    is_method,
)
from eegmtl.evaluation.runner import run_protocol

sys.path.insert(0, str(Path(__file__).parent))
from evaluation_synth import synthetic_data, tiny_epochs  # noqa: E402


# --------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", [*DEEP_BASELINES, "EEGNet[val]", "ShallowFBCSPNet[val]"])
def test_deep_baseline_entries_record_recipe_and_train_one_epoch(name):
    cfg = default_config(name)
    assert {"optimizer", "lr", "max_epochs", "batch_size", "source", "patience"} <= set(cfg)
    X, y = tiny_epochs()
    est = get_method(name, max_epochs=1, batch_size=8).build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    assert est.n_epochs_trained_ == 1
    assert est.predict_proba(X[:5]).shape == (5, 2)


def test_patience_is_common_unless_the_recipe_sets_one():
    from eegmtl.eeg.recipes import RECIPES
    from eegmtl.evaluation.catalog import DEEP_PATIENCE

    assert default_config("EEGConformer")["patience"] == RECIPES["EEGConformer"].patience == 120
    for name in ("ATCNet", "TCFormer", "IFNet", "CTNet", "EEGTCNet", "FBCNet", "EEGNet[val]"):
        assert default_config(name)["patience"] == DEEP_PATIENCE == 30


def test_committed_configs_unchanged():
    assert default_config("EEGNet") == {"factory": "make_eegnet"}
    assert "augmentation" not in default_config("MixNet")
    assert default_config("CSP+LDA") == {"factory": "make_csp_lda"}


def test_composed_names():
    assert parse_name("ATCNet+mtl[blending]+aug[sr,ft]") == (
        "ATCNet", {"mtl": "blending", "aug": "sr,ft"})
    cfg = default_config("MixNet+aligned_mtl+aug")
    assert cfg["mtl"] == "aligned_mtl" and cfg["augmentation"] == DEFAULT_AUGMENTATION
    assert default_config("EEGNet+aug")["model"] == "EEGNet"  # built on EEGNet[val]
    assert default_config("CTNet+noaug")["augmentation"] is None
    assert default_config("MixNet[val-tuned]+mtl[pcgrad]")["mtl"] == "pcgrad"
    bb = default_config("Deep4Net+mtl[ew]", "si")
    assert (bb["backbone"], bb["mtl"], bb["protocol"]) == ("Deep4Net", "ew", "si")
    assert not is_method("CSP+LDA+aug") and not is_method("MixNet+aug[nope]")
    assert not is_method("CTNet+aug")  # already augments (recipe): ambiguous
    assert default_config("MixNet+aug[sr,mask,x2]")["augmentation"] == {
        "transforms": ["segment_recombine", "smooth_time_mask"], "n_augmentation": 2}
    assert default_config("EEGNet+aug[ft,x0]")["augmentation"]["n_augmentation"] == 0
    assert not is_method("MixNet+aug[x2]") and not is_method("MixNet+aug[sr,x2,x3]")
    assert is_deep_method("EEGNet") and not is_deep_method("TS+SVM")
    with pytest.raises(KeyError, match="unknown method"):
        default_config("NoSuchNet")



def test_set_overrides_in_the_name_are_recorded_and_checked():
    from eegmtl._io import config_hash
    from eegmtl.evaluation.methods import make_estimator, method_error
    from eegmtl.evaluation.overrides import config_overrides

    assert config_overrides("n_components=3, input=time,lr=5e-4,flat=none") == {
        "n_components": 3, "input": "time", "lr": 5e-4, "flat": None}
    base = default_config("MixNet[best]")
    cfg = default_config("MixNet[best]+set[n_components=3]")
    assert cfg == {**base, "n_components": 3}  # the alias composes; everything else kept
    assert config_hash(cfg) != config_hash(base)
    est = make_estimator("MixNet[val-tuned]+mtl[aligned_mtl]+aug[sr,mask]+set[n_components=3]")
    assert est.n_components == 3 and est.mtl == "aligned_mtl"
    # applied after the other parts, in whatever order they are written
    assert default_config("MixNet+set[mtl=pcgrad]+aug")["mtl"] == "pcgrad"
    assert default_config("ATCNet+set[max_epochs=5]")["max_epochs"] == 5
    est = get_method("TCFormer+set[betas=0.5/0.999]").build()  # a list value: TCFormer's code
    assert est.resolved_config()["betas"] == [0.5, 0.999]
    assert default_config("MixNet[val-tuned]+set[warmup=3]", "sd")["warmup"] == 3
    est = make_estimator("MixNet[best]+set[bands=4-28/4]")  # a band set as text
    assert est.bands == "4-28/4"
    for bad, why in [("MixNet+set[n_comp=3]", "cannot set \\['n_comp'\\]"),
                     ("ATCNet+set[n_components=3]", "cannot set"),  # not a MixNet option
                     ("MixNet+set[n_components]", "key=value"),
                     ("MixNet+set[lr=1,lr=2]", "twice"),
                     ("MixNet+set[]", "needs key=value"),
                     ("MixNet+set[lr=1]+set[lr=2]", "at most one \\+set part"),
                     ("MixNet+set[bands=4-30/4]", "whole multiple of WIDTH")]:
        assert re.search(why, method_error(bad)), (bad, method_error(bad))


def test_set_network_arguments_reach_the_braindecode_network():
    from eegmtl._io import config_hash
    from eegmtl.evaluation.methods import method_error
    from eegmtl.evaluation.overrides import apply_overrides

    base = default_config("CTNet")
    cfg = default_config("CTNet+set[model.num_layers=2,model.num_heads=4]")
    # the recipe's other network arguments are kept; the change is hashed with the config
    assert cfg["model_kwargs"] == {**base["model_kwargs"], "num_layers": 2, "num_heads": 4}
    assert config_hash(cfg) != config_hash(base)
    assert default_config("CTNet")["model_kwargs"]["num_layers"] == 6  # registry untouched
    X, y = tiny_epochs()
    est = get_method("EEGConformer+set[model.num_layers=1,model.num_heads=2]", max_epochs=1,
                     batch_size=8).build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    modules = list(est.net_.module_.modules())
    blocks = [m for m in modules if type(m).__name__ == "_TransformerEncoderBlock"]
    heads = {m.num_heads for m in modules if type(m).__name__ == "MultiHeadAttention"}
    assert len(blocks) == 1 and heads == {2}
    # the trunk of a multi-task network
    cfg = default_config("EEGNet+mtl[aligned_mtl]+set[model.F1=4,model.D=1]")
    assert cfg["backbone_kwargs"]["F1"] == 4 and cfg["backbone_kwargs"]["D"] == 1
    est = get_method("EEGNet+mtl[aligned_mtl]+set[model.F1=4,model.D=1]", max_epochs=1,
                     device="cpu").build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    first = next(m for m in est.model_.trunk.modules()
                 if isinstance(m, __import__("torch").nn.Conv2d))
    assert first.out_channels == 4
    for bad, why in [("CTNet+set[model.n_layers=2]", "takes no \\['n_layers'\\]"),
                     ("CTNet+set[model.n_chans=5]", "set from the data"),
                     ("MixNet+set[model.F1=4]", "no braindecode network"),
                     ("CSP+LDA+set[model.F1=4]", "not a deep pipeline"),
                     ("CTNet+set[model.=4]", "key=value"),
                     ("CTNet+set[model.a.b=4]", "key=value")]:
        assert re.search(why, method_error(bad)), (bad, method_error(bad))
    with pytest.raises(ValueError, match="no braindecode network"):
        apply_overrides(default_config("MixNet"), {"model.F1": 4})


def test_cli_set_reaches_network_arguments_and_refuses_unused_keys():
    import argparse

    from eegmtl.experiments.protocol import method_params

    args = argparse.Namespace(set=["model.num_layers=2", "lr=5e-4"], max_epochs=None,
                              device=None, methods=["CTNet", "MixNet", "CSP+LDA"])
    params = method_params(args, "subject_dependent")
    assert params["CTNet"]["model_kwargs"] == {**default_config("CTNet")["model_kwargs"],
                                               "num_layers": 2}
    assert params["CTNet"]["lr"] == 5e-4 and params["MixNet"] == {"lr": 5e-4}
    assert "CSP+LDA" not in params
    args.set, args.methods = ["flat.aggregate=loss_weights"], ["MixNet+mtl[f-aligned_mtl]",
                                                              "CTNet"]
    params = method_params(args, "subject_dependent")
    assert params == {"MixNet+mtl[f-aligned_mtl]": {"flat": {"aggregate": "loss_weights"}}}
    for sets, why in [(["lr_typo=1"], "none of .* has such a setting"),
                      (["flat.aggregate=joint"], "aggregate must be one of"),
                      (["flat.rho=0.1"], "none of"),  # CTNet alone: no flat-minima step
                      (["model.n_layers=2"], "takes no"),
                      (["model.F1=4"], "none of")]:
        args.set = sets
        args.methods = (["MixNet"] if "F1" in sets[0] else ["CTNet"] if "rho" in sets[0]
                        else ["CTNet", "MixNet"])
        with pytest.raises(SystemExit, match=why):
            method_params(args, "subject_dependent")

@pytest.mark.parametrize("name", ["EEGNet+mtl[blending]", "ATCNet+mtl[aligned_mtl]",
                                  "EEGTCNet+mtl[blending]", "ShallowFBCSPNet+mtl[aligned_mtl]"])
def test_multitask_braindecode_from_registry(name):
    X, y = tiny_epochs()
    est = get_method(name, max_epochs=1, device="cpu").build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    assert type(est.model_).__name__ == "MultiTaskBraindecode"
    assert est.model_.backbone_name == name.split("+")[0]
    assert est.predict_proba(X[:4]).shape == (4, 2)


# --------------------------------------------------------------------------- augmentation
def _count_batches(monkeypatch, cls, method):
    sizes: list[int] = []
    orig = getattr(cls, method)

    def spy(self, X, *args, **kwargs):
        sizes.append(int(X.shape[0]))
        return orig(self, X, *args, **kwargs)

    monkeypatch.setattr(cls, method, spy)
    return sizes


def test_mixnet_augmentation_sees_training_batches_only(monkeypatch):
    from eegmtl.eeg.augmentation import BatchAugmenter

    sizes = _count_batches(monkeypatch, BatchAugmenter, "__call__")
    X, y, meta = synthetic_data(n_times=1000, n_subjects=1, n_trials=20)
    df = run_protocol("sd", ["MixNet+aug[noise]"], subjects=[1], data=(X, y, meta), folds=[1],
                      progress=False, method_params={"MixNet+aug[noise]": {
                          "max_epochs": 2, "device": "cpu"}})
    n_train = int(df["samples"].iloc[0])
    assert int(df["samples_val"].iloc[0]) > 0 and int(df["samples_test"].iloc[0]) > 0
    # every training trial once per epoch, nothing else (no validation / test batch)
    assert sum(sizes) == n_train * int(df["n_epochs_trained"].iloc[0])


def test_braindecode_augmentation_sees_training_batches_only(monkeypatch):
    from braindecode.augmentation import GaussianNoise

    sizes = _count_batches(monkeypatch, GaussianNoise, "forward")
    X, y, meta = synthetic_data(n_times=1000, n_subjects=1, n_trials=20)
    name = "EEGNet+aug[noise]"
    df = run_protocol("sd", [name], subjects=[1], data=(X, y, meta), folds=[1], progress=False,
                      method_params={name: {"max_epochs": 2, "batch_size": 8}})
    n_train, epochs = int(df["samples"].iloc[0]), int(df["n_epochs_trained"].iloc[0])
    assert sum(sizes) == epochs * (n_train // 8) * 8  # drop_last training batches only


# --------------------------------------------------------------------------- alignment
class _Spy(ClassifierMixin, BaseEstimator):
    """Records the trials it is fitted on and asked to predict."""

    seen: list[dict[str, np.ndarray]] = []

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        _Spy.seen.append({"fit": np.array(X)})
        return self

    def predict_proba(self, X):
        _Spy.seen[-1].setdefault("test", np.array(X))  # the first call: the test trials
        p = np.full((len(X), 2), 0.5)
        p[:, 0] += 1e-3 * np.arange(len(X)) / len(X)
        return p

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def _mean_cov(X):
    return np.mean([x @ x.T / x.shape[1] for x in X], axis=0)


@pytest.mark.parametrize("mode", ["transductive", "inductive"])
def test_alignment_per_recording_and_inductive_leak(mode):
    X, y, meta = synthetic_data(n_times=64, n_subjects=3, n_trials=20)
    test_idx = np.flatnonzero((meta.subject == 1) & (meta.session >= 4))

    def run(Xd):
        _Spy.seen = []
        df = run_protocol("si", {"Spy": _Spy()}, subjects=[1], data=(Xd, y, meta), folds=[1],
                          n_folds=2, progress=False, alignment=mode)
        assert f'"alignment":"{mode}"' in df["config"].iloc[0]
        return _Spy.seen[0]

    base = run(X)
    # the training subjects' recordings are whitened on their own trials
    fit = base["fit"]
    for k in range(0, len(fit), 20):
        np.testing.assert_allclose(_mean_cov(fit[k:k + 20]), np.eye(3), atol=0.15)
    # perturb the test recordings (all but their first trial)
    Xp = X.copy()
    mix = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 2.0]])
    Xp[test_idx[1:]] = np.einsum("ij,njt->nit", mix, X[test_idx[1:]])
    pert = run(Xp)
    np.testing.assert_array_equal(base["fit"], pert["fit"])  # training data never changes
    first_unchanged = np.allclose(base["test"][0], pert["test"][0])
    # inductive: a test trial's alignment ignores the other test trials; transductive uses them
    assert first_unchanged is (mode == "inductive")


def test_session_validation_in_the_runner_is_recorded_and_hashed():
    X, y, meta = synthetic_data(n_times=64, n_subjects=1, n_trials=20)
    rand = run_protocol("sd", ["CSP+LDA"], subjects=[1], data=(X, y, meta), folds=[1],
                        progress=False)
    sess = run_protocol("sd", ["CSP+LDA"], subjects=[1], data=(X, y, meta), progress=False,
                        validation="session")
    assert len(sess) == 3 and '"validation":"session"' in sess["config"].iloc[0]
    assert '"validation"' not in rand["config"].iloc[0]  # the reference split keeps its hash
    assert sess["config_hash"].iloc[0] != rand["config_hash"].iloc[0]
    assert (sess["samples_val"] == 20).all()  # one whole session held out


def test_multitask_braindecode_save_load_roundtrip(tmp_path):
    X, y = tiny_epochs()
    est = get_method("EEGNet+mtl[aligned_mtl]+aug", max_epochs=1, device="cpu").build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    path = est.save(tmp_path / "est.pt")
    again = type(est).load(path, device="cpu")
    np.testing.assert_allclose(again.predict_proba(X[:6]), est.predict_proba(X[:6]), rtol=1e-5)


def test_set_flat_fields_reach_the_flat_step():
    from eegmtl._io import config_hash
    from eegmtl.evaluation.methods import make_estimator, method_error
    from eegmtl.mixnet.config import resolve_config
    from eegmtl.mtl.flat import FlatConfig, make_flat_config

    name = "MixNet+mtl[f-aligned_mtl]+set[flat.aggregate=loss_weights,flat.rho=0.1]"
    cfg = default_config(name)
    assert cfg["flat"] == {"aggregate": "loss_weights", "rho": 0.1}
    assert config_hash(cfg) != config_hash(default_config("MixNet+mtl[f-aligned_mtl]"))
    method = resolve_config(make_estimator(name).get_params(deep=False))["method"]
    assert make_flat_config(method["flat"]) == FlatConfig(rho=0.1, aggregate="loss_weights")
    assert method["aggregator"] == "aligned_mtl"
    for bad, why in [("MixNet+set[flat.aggregate=joint]", "aggregate must be one of"),
                     ("MixNet+set[flat.radius=1]", "FlatConfig has no \\['radius'\\]"),
                     ("ATCNet+set[flat.rho=0.1]", "MixNet-family pipelines")]:
        assert re.search(why, method_error(bad)), (bad, method_error(bad))
