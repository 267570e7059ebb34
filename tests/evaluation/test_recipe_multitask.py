"""``<network>+mtl[m]+recipe``: a braindecode trunk with MixNet's heads trained with the
network's own recipe (optimiser, betas, decay, epochs, batch, z-score, augmentation, constant
learning rate), and the MixNetClassifier options that carry it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eegmtl.evaluation.catalog import DEEP_BASELINES
from eegmtl.evaluation.composed import recipe_options
from eegmtl.evaluation.methods import default_config, get_method, method_error
from eegmtl.mixnet import MixNetClassifier

sys.path.insert(0, str(Path(__file__).parent))
from evaluation_synth import tiny_epochs  # noqa: E402

KEYS = ("optimizer", "lr", "betas", "weight_decay", "max_epochs", "batch_size", "patience",
        "standardize", "augmentation")


@pytest.mark.parametrize("row", [*DEEP_BASELINES, "EEGNet[val]", "ShallowFBCSPNet[val]"])
@pytest.mark.parametrize("protocol", ["subject_dependent", "subject_independent"])
def test_recipe_takes_the_training_settings_of_the_single_task_row(row, protocol):
    model = default_config(row, protocol)["model"]
    single = default_config(row, protocol)
    plain = default_config(f"{model}+mtl[ew]", protocol)
    matched = default_config(f"{model}+mtl[ew]+recipe", protocol)
    assert {k: matched[k] for k in KEYS} == {k: single[k] for k in KEYS}
    assert matched["lr_schedule"] == "constant"
    assert matched["monitor"] == "val_classification_loss"
    assert matched["interleaved_validation"] is False  # ew does not blend
    # the network, its heads and MixNet's task settings are those of <model>+mtl[ew]
    for key in ("backbone", "backbone_kwargs", "latent_dim", "margin", "input", "bands"):
        assert matched[key] == plain[key]
    assert not {"optimizer", "lr_schedule", "standardize"} & set(plain)  # hash unchanged


def test_blending_keeps_interleaved_validation_and_suffixes_compose():
    assert default_config("EEGNet+mtl[blending]+recipe")["interleaved_validation"] is True
    assert recipe_options("EEGNet", "subject_dependent", "f-pcgrad")[
        "interleaved_validation"] is False
    # +noaug / +aug[...] replace the recipe's augmentation; +set comes last
    assert default_config("CTNet+mtl[ew]+recipe")["augmentation"]["n_augmentation"] == 3
    assert default_config("CTNet+mtl[ew]+recipe+noaug")["augmentation"] is None
    assert default_config("CTNet+mtl[ew]+recipe+aug[mask]")["augmentation"]["transforms"] == [
        "smooth_time_mask"]
    assert default_config("ATCNet+mtl[ew]+recipe+set[max_epochs=7]")["max_epochs"] == 7


@pytest.mark.parametrize("bad, why", [
    ("ATCNet+recipe", "applies to a braindecode network with \\+mtl"),
    ("MixNet+mtl[ew]+recipe", "applies to a braindecode network with \\+mtl"),
    ("EEGNet+mtl[ew]+recipe[x]", "takes no argument"),
    ("Deep4Net+mtl[ew]+recipe", "has no training recipe"),
    ("CTNet+mtl[ew]+recipe+aug", "already augments"),
    ("EEGNet+mtl[ew]+recipe+recipe", "at most one"),
])
def test_recipe_suffix_errors(bad, why):
    import re

    assert re.search(why, method_error(bad) or ""), (bad, method_error(bad))


def _capture_optimisers(monkeypatch):
    import eegmtl.mtl.trainer as trainer_mod

    made: dict[str, list] = {"make_optimizer": [], "make_scheduler": []}

    def spy(name):
        real = getattr(trainer_mod, name)

        def wrapped(*args, **kwargs):
            made[name].append(real(*args, **kwargs))
            return made[name][-1]
        return wrapped

    for name in made:
        monkeypatch.setattr(trainer_mod, name, spy(name))
    return made


@pytest.mark.parametrize("name, cls, betas, decay", [
    ("CTNet+mtl[aligned_mtl]+recipe", torch.optim.Adam, (0.5, 0.999), 0.0),
    ("EEGNet+mtl[blending]+recipe", torch.optim.AdamW, (0.9, 0.999), 0.0),
    ("IFNet+mtl[ew]+recipe", torch.optim.AdamW, (0.9, 0.999), 1e-2),
])
def test_recipe_multitask_trains_with_the_recipes_optimiser_and_constant_lr(
        monkeypatch, name, cls, betas, decay):
    made = _capture_optimisers(monkeypatch)
    X, y = tiny_epochs()
    est = get_method(name, max_epochs=3, batch_size=8, patience=None, device="cpu").build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    opt = made["make_optimizer"][-1]
    assert made["make_scheduler"][-1] is None  # no ReduceLROnPlateau
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["betas"] == betas and group["weight_decay"] == decay
    lr = default_config(name)["lr"]
    assert np.allclose(est.history_["lr"], lr)
    assert est.n_epochs_trained_ == 3
    assert type(est.model_).__name__ == "MultiTaskBraindecode"
    assert est.predict_proba(X[:4]).shape == (4, 2)


def test_standardize_uses_the_training_trials_only():
    X, y = tiny_epochs()
    X_val = X[28:] * 3.0 + 50.0  # other statistics: must not enter the z-score
    est = MixNetClassifier(input="time", bands=[[4.0, 40.0]], sfreq_model=100.0,
                           standardize=True, max_epochs=1, random_state=0, device="cpu",
                           mtl="ew", interleaved_validation=False)
    est.fit(X[:28], y[:28], X_val=X_val, y_val=y[28:])
    steps = est.features_.pipeline_
    assert list(steps.named_steps)[-1] == "standardize"
    raw_train = steps[:-1].transform(X[:28] * est.scale_)
    fitted = steps.named_steps["standardize"]
    assert fitted.mean_ == pytest.approx(float(raw_train.mean()), rel=1e-9, abs=1e-9)
    assert fitted.scale_ == pytest.approx(float(raw_train.std()), rel=1e-9)
    z_train = est.features_.transform(X[:28])
    assert abs(z_train.mean()) < 1e-4 and z_train.std() == pytest.approx(1.0, rel=1e-4)
    z_val = est.features_.transform(X_val)
    raw_val = steps[:-1].transform(X_val * est.scale_)
    np.testing.assert_allclose(z_val, (raw_val - fitted.mean_) / fitted.scale_, rtol=1e-4,
                               atol=1e-4)
    assert z_val.std() > 2.0  # scaled by the training SD, not z-scored on its own
    # without the option the input stays in microvolts (MixNet's behaviour)
    plain = MixNetClassifier(input="time", bands=[[4.0, 40.0]], sfreq_model=100.0,
                             max_epochs=1, random_state=0, device="cpu", mtl="ew",
                             interleaved_validation=False)
    plain.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    assert "standardize" not in plain.features_.pipeline_.named_steps


@pytest.mark.parametrize("params, why", [
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"optimizer": "sgd", "betas": (0.5, 0.999)}, "betas apply to"),
    ({"betas": (0.5,)}, "betas must be two numbers"),
    ({"betas": (1.5, 0.9)}, "betas must be two numbers"),
    ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
    ({"lr_schedule": "cosine"}, "lr_schedule must be one of"),
    ({"ema_decay": 1.0}, "ema_decay must be None or a number in"),
    ({"ema_decay": "0.9"}, "ema_decay must be None or a number in"),
])
def test_training_option_errors(params, why):
    X, y = tiny_epochs()
    with pytest.raises(ValueError, match=why):
        MixNetClassifier(max_epochs=1, device="cpu", **params).fit(X, y)


def test_mixnet_defaults_keep_adam_and_the_plateau_schedule(monkeypatch):
    made = _capture_optimisers(monkeypatch)
    X, y = tiny_epochs()
    MixNetClassifier(max_epochs=1, random_state=0, device="cpu").fit(X, y)
    assert type(made["make_optimizer"][-1]) is torch.optim.Adam
    assert type(made["make_scheduler"][-1]).__name__ == "ReduceLROnPlateau"


def test_new_options_left_out_of_settings_and_checkpoint_hash_while_unset():
    from eegmtl.mixnet.config import recorded_settings
    from eegmtl.mixnet.inputs import data_fingerprint

    X, y = tiny_epochs()
    base = MixNetClassifier()
    assert not {"optimizer", "weight_decay", "betas", "lr_schedule", "standardize",
                "ema_decay"} & set(recorded_settings(base.get_params()))
    h0 = data_fingerprint(base, X, y, None, None)
    h1 = data_fingerprint(MixNetClassifier(optimizer="adamw"), X, y, None, None)
    assert h0 != h1


def test_recipe_multitask_save_load_keeps_the_input_z_score(tmp_path):
    X, y = tiny_epochs()
    est = get_method("CTNet+mtl[ew]+recipe+noaug", max_epochs=1, batch_size=8,
                     device="cpu").build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    assert "standardize" in est.features_.pipeline_.named_steps
    again = type(est).load(est.save(tmp_path / "est.pt"), device="cpu")
    np.testing.assert_allclose(again.predict_proba(X[:6]), est.predict_proba(X[:6]), rtol=1e-5)
    assert again.get_params()["betas"] == est.get_params()["betas"]
