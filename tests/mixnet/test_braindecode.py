"""MixNet built and trained by braindecode's EEGClassifier (braindecode's argument names)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.models.mixnet import MixNet

braindecode = pytest.importorskip("braindecode")


def _tiny_data(n: int = 24, n_chans: int = 3, n_times: int = 400):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, n_chans, n_times)).astype(np.float32)
    y = np.repeat([0, 1], n // 2)
    X[y == 1, 0] *= 3.0
    return X, y


def test_braindecode_names_build_the_same_network():
    a = MixNet(n_chans=6, n_outputs=3, n_times=400, sfreq=100, latent_dim=4)
    b = MixNet(n_channels=6, n_classes=3, n_times=400, sfreq=100, latent_dim=4)
    assert (a.n_channels, a.n_classes) == (b.n_channels, b.n_classes) == (6, 3)
    assert a.parameter_counts() == b.parameter_counts()
    with pytest.raises(ValueError, match="n_chans"):
        MixNet(n_channels=6, n_chans=5)


def test_logits_output_mode():
    torch.manual_seed(0)
    net = MixNet(n_chans=3, n_outputs=2, n_times=400, output="logits").eval()
    x = torch.randn(5, 3, 400)
    logits = net(x)
    assert logits.shape == (5, 2)
    net.output = "tasks"
    torch.testing.assert_close(net(x)["classification"], logits)
    with pytest.raises(ValueError, match="output must be"):
        MixNet(output="proba")


def test_eegclassifier_trains_mixnet_one_epoch():
    from braindecode import EEGClassifier

    X, y = _tiny_data()
    torch.manual_seed(0)
    module = MixNet(n_chans=3, n_outputs=2, n_times=400, sfreq=100, output="logits")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = EEGClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
        batch_size=8, max_epochs=1, train_split=None, device="cpu", verbose=0,
    )
    clf.fit(X, y)
    assert len(clf.history) == 1 and np.isfinite(clf.history[-1, "train_loss"])
    changed = [k for k, v in clf.module_.state_dict().items() if not torch.equal(v, before[k])]
    assert "classifier.weight" in changed and "encoder.conv1.weight" in changed
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.predict(X)) <= {0, 1}


def test_eegclassifier_builds_mixnet_from_the_class():
    from braindecode import EEGClassifier

    X, y = _tiny_data()
    clf = EEGClassifier(
        MixNet, module__output="logits", module__sfreq=100, criterion=torch.nn.CrossEntropyLoss,
        batch_size=8, max_epochs=1, train_split=None, device="cpu", verbose=0,
    )
    clf.fit(X, y)
    assert (clf.module_.n_channels, clf.module_.n_times, clf.module_.n_classes) == (3, 400, 2)
