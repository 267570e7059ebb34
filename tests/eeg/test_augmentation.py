"""Augmentation: specs build braindecode transforms; they touch training batches only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("braindecode")

from eegmtl.eeg.augmentation import (  # noqa: E402
    AUGMENTATIONS,
    AugmentedLoader,
    BatchAugmenter,
    make_transforms,
)

MARK = 1e4  # validation / test trials carry this constant; training trials are |x| < 100


class Spy(torch.nn.Module):
    """A 'transform' that records what it sees and fails on marked (held-out) trials."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        if bool((X.abs() >= MARK).any()):
            raise AssertionError("augmentation was applied to a validation/test batch")
        return X, y


def test_every_named_augmentation_builds_and_runs() -> None:
    x = torch.randn(8, 3, 500)
    y = torch.tensor([0, 1] * 4)
    for name in AUGMENTATIONS:
        (t,) = make_transforms(name, sfreq=250.0, random_state=0, channel_sd=[1.0, 1.0, 1.0])
        xa, ya = BatchAugmenter([t])(x, y)
        assert xa.shape == x.shape and set(ya.tolist()) <= {0, 1}  # S&R draws new labels
    assert make_transforms(None, sfreq=250.0) == []
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_transforms("mixup_typo", sfreq=250.0)


def test_segment_recombination_keeps_class_and_mixes_trials() -> None:
    x = torch.arange(4, dtype=torch.float32)[:, None, None].expand(4, 3, 400).clone()
    y = torch.tensor([0, 0, 1, 1])
    (sr,) = make_transforms({"name": "segment_recombine", "n_segments": 8}, sfreq=250.0,
                            random_state=0)
    xa, ya = BatchAugmenter([sr], n_augmentation=2)(x, y)
    assert xa.shape == (12, 3, 400) and torch.equal(xa[:4], x)  # clean batch kept first
    for trial, label in zip(xa[4:], ya[4:]):  # segments come only from trials of that class
        allowed = {0.0, 1.0} if int(label) == 0 else {2.0, 3.0}
        assert set(trial.unique().tolist()) <= allowed


def test_eegclassifier_augments_training_batches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from eegmtl.eeg.deep_baselines import make_deep_baseline

    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 3, 512)) * 10.0
    y = np.array([0, 1] * 8)
    X_held = np.full((8, 3, 512), MARK)
    spy = Spy()
    clf = make_deep_baseline("ATCNet", max_epochs=2, batch_size=8, augmentation=None,
                             model_kwargs={}, patience=None)
    import eegmtl.eeg.augmentation as aug

    monkeypatch.setattr(aug, "make_transforms", lambda spec, **kw: [spy])
    clf.fit(X, y, X_val=X_held, y_val=y[:8])
    assert spy.calls == 4  # 2 epochs x 2 training batches, never the validation batches
    clf.predict(X_held)  # prediction must not run it either
    assert spy.calls == 4


def test_trainer_hook_wraps_only_the_training_loader() -> None:
    from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader

    x = torch.randn(8, 3, 64)
    y = torch.tensor([0, 1] * 4)
    ds = MultiTaskDataset(x, {"reconstruction": x, "metric": y, "classification": y})

    def shift(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return X + 1.0, Y

    loader = AugmentedLoader(MultiTaskLoader(ds, 4, shuffle=True, seed=0), shift)
    loader.set_epoch(3)
    assert len(loader) == 2
    batches = list(loader)
    for xb, tb in batches:
        assert torch.equal(tb["reconstruction"], xb)  # the autoencoder target follows the input
        assert torch.equal(tb["metric"], tb["classification"])
    with pytest.raises(KeyError, match="label_key"):
        list(AugmentedLoader(MultiTaskLoader(ds, 4), shift, label_key="cls"))


def test_trainer_never_augments_validation_batches() -> None:
    from eegmtl.models.mixnet import MixNet
    from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader
    from eegmtl.mtl.tasks import Task
    from eegmtl.mtl.trainer import Trainer

    def data(x: torch.Tensor, y: torch.Tensor) -> MultiTaskDataset:
        return MultiTaskDataset(x, {"reconstruction": x, "metric": y, "classification": y})

    y = torch.tensor([0, 1] * 4)
    train = data(torch.randn(8, 3, 64), y)
    val = data(torch.full((8, 3, 64), MARK), y)
    spy = Spy()
    net = MixNet(n_channels=3, n_times=64, pool1=4, pool2=4, kernel1=8, kernel2=4, latent_dim=2)
    mse = torch.nn.MSELoss()
    tasks = [Task("reconstruction", mse), Task("metric", lambda z, t: z.pow(2).mean()),
             Task("classification", torch.nn.CrossEntropyLoss())]
    trainer = Trainer(net, tasks, weighting="ew", max_epochs=2, patience=None, progress=False,
                      scheduler=None, seed=0)
    trainer.fit(AugmentedLoader(MultiTaskLoader(train, 4, seed=0), spy),
                MultiTaskLoader(val, 8, shuffle=False))
    assert spy.calls == 4 and trainer.n_epochs_trained_ == 2


def test_gaussian_noise_is_relative_to_each_input_channel() -> None:
    """The noise SD is 0.1 x each channel's training SD (inputs range from µV to standardised
    units, and CSP bands over orders of magnitude); an absolute ``std`` overrides it; without
    the channel SDs a relative noise is refused."""
    import numpy as np
    import torch

    from eegmtl.eeg.augmentation import channel_sd, make_transforms

    X = np.random.default_rng(0).standard_normal((50, 3, 200)) * np.array([1.0, 10.0, 100.0])[
        :, None]
    sd = channel_sd(X)
    assert sd == pytest.approx([1.0, 10.0, 100.0], rel=0.05)
    spec = {"name": "gaussian_noise", "probability": 1.0}
    (noise,) = make_transforms(spec, sfreq=250.0, random_state=0, channel_sd=sd)
    out, _ = noise(torch.zeros(64, 3, 200), torch.zeros(64))
    assert out.std(dim=(0, 2)).numpy() == pytest.approx(0.1 * sd, rel=0.05)
    (fixed,) = make_transforms({**spec, "std": 2.0}, sfreq=250.0, random_state=0)
    out, _ = fixed(torch.zeros(64, 3, 200), torch.zeros(64))
    assert out.std(dim=(0, 2)).numpy() == pytest.approx([2.0] * 3, rel=0.05)
    with pytest.raises(ValueError, match="channel_sd"):
        make_transforms(spec, sfreq=250.0)
