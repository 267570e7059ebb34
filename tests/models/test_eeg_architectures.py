"""MixNet's three tasks on MMoE / CGC / PLE / Cross-stitch architectures of EEG encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.models.eeg_architectures import EEG_ARCHITECTURES, MultiTaskEEGArchitecture
from eegmtl.models.mixnet import MixNet
from eegmtl.mtl.tasks import MultiTaskModel

C, T, Z = 4, 400, 6
ARCHS = sorted(EEG_ARCHITECTURES)


def _net(arch: str, backbone: str | None = None, **kw) -> MultiTaskEEGArchitecture:
    torch.manual_seed(0)
    if backbone is None:
        return MultiTaskEEGArchitecture(arch, C, T, latent_dim=Z, sfreq=100.0, **kw)
    pytest.importorskip("braindecode")
    return MultiTaskEEGArchitecture(arch, 3, 512, latent_dim=Z, sfreq=128.0, backbone=backbone,
                                    **kw)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("backbone", "method"), [(None, "blending"), (None, "aligned_mtl"),
                                                  ("EEGNet", "aligned_mtl")])
def test_one_epoch_with_core_mtl_methods(arch: str, backbone: str | None, method: str,
                                         train_one_epoch) -> None:
    net = _net(arch, backbone)
    assert isinstance(net, MultiTaskModel)
    c, t = net.n_channels, net.n_times
    out = net(torch.randn(5, c, t))
    assert out["reconstruction"].shape == (5, c, t)
    assert out["metric"].shape == (5, Z) and out["classification"].shape == (5, 2)
    train_one_epoch(net, method)
    x = torch.randn(3, c, t)
    proba = net.predict_proba(x)
    assert torch.allclose(proba.sum(1), torch.ones(3), atol=1e-5)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net.logits(x), net(x)["classification"])
        assert torch.allclose(net.embed(x), net.encode(x)[:, 2])


@pytest.mark.parametrize("arch", ARCHS)
def test_parameters_split_into_shared_and_heads(arch: str) -> None:
    net = _net(arch)
    shared = {id(p) for p in net.shared_parameters()}
    heads = {t: {id(p) for p in net.task_parameters(t)} for t in net.task_names}
    assert heads["metric"] == set()  # the triplet loss reads z itself
    assert heads["reconstruction"] and heads["classification"]
    assert not shared & (heads["reconstruction"] | heads["classification"])
    assert shared | heads["reconstruction"] | heads["classification"] == {
        id(p) for p in net.parameters()}


def test_mmoe_with_one_expert_is_mixnet() -> None:
    """One expert: every gate is 1, so all three tasks read the same z, as in MixNet."""
    net = _net("mmoe", n_experts=1).eval()
    ref = MixNet(n_channels=C, n_times=T, latent_dim=Z, sfreq=100.0).eval()
    state = {}
    for k, v in net.state_dict().items():
        if k.startswith("arch.experts.0."):
            layer = ["pad1", "conv1", "elu1", "bn1", "pool1", "pad2", "conv2", "elu2", "bn2",
                     "pool2", "flatten", "latent"]
            rest = k[len("arch.experts.0."):]
            stage, sub = rest.split(".", 1)
            if stage == "0":  # the conv stage: its own Sequential numbered 0..10
                idx, name = sub.split(".", 1)
                state[f"encoder.{layer[int(idx)]}.{name}"] = v
            else:
                state[f"encoder.latent.{sub}"] = v
        elif k.startswith("arch.heads.reconstruction."):
            state["decoder." + k[len("arch.heads.reconstruction."):]] = v
        elif k.startswith("arch.heads.classification."):
            state["classifier." + k[len("arch.heads.classification."):]] = v
    ref.load_state_dict(state)
    x = torch.randn(6, C, T)
    with torch.no_grad():
        out, exp = net(x), ref(x)
    for task in net.task_names:
        torch.testing.assert_close(out[task], exp[task])
    torch.testing.assert_close(net.logits(x), ref.logits(x))


@pytest.mark.parametrize(("arch", "n_experts"), [("mmoe", 3), ("cgc", 4), ("ple", 4),
                                                 ("cross_stitch", 3)])
def test_max_norm_on_every_expert_copy(arch: str, n_experts: int) -> None:
    net = _net(arch)
    # MixNet: conv1, conv2, latent per encoder copy; decoder deconv1, dense, classifier once
    assert len(net._constraints) == 3 * n_experts + 3
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100.0)
    net.apply_constraints()
    for module, dims, limit in net._constraints:
        assert float(module.weight.detach().norm(dim=dims).max()) <= limit + 1e-5


def test_errors() -> None:
    with pytest.raises(ValueError, match="architecture must be one of"):
        MultiTaskEEGArchitecture("moe", C, T)
    with pytest.raises(ValueError, match="unknown keyword"):
        MultiTaskEEGArchitecture("mmoe", C, T, n_shared=2)
    with pytest.raises(ValueError, match="n_experts must be a positive integer"):
        MultiTaskEEGArchitecture("mmoe", C, T, n_experts=0)
    net = _net("cgc")
    with pytest.raises(ValueError, match=r"expected input \(n, 4, 400\)"):
        net(torch.randn(2, T, C))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.zeros(2, C, T, dtype=torch.long))


# --------------------------------------------------------------------------- estimator
def _tiny(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, 3, 1000)) * 10.0
    X[y == 1, 0] *= 2.0
    return X, y


def test_estimator_trains_saves_and_loads(tmp_path) -> None:
    from eegmtl.mixnet.classifier import MixNetClassifier
    from eegmtl.mixnet.io import load_estimator

    X, y = _tiny()
    est = MixNetClassifier(architecture="ple", architecture_kwargs={"n_specific": 2},
                           max_epochs=1, random_state=0, device="cpu")
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    assert type(est.model_).__name__ == "MultiTaskEEGArchitecture"
    assert est.model_kwargs_["architecture"] == "ple"
    proba = est.predict_proba(X[:6])
    assert proba.shape == (6, 2) and np.allclose(proba.sum(1), 1.0)
    assert est.transform(X[:6]).shape == (6, est.model_.latent_dim)
    loaded = load_estimator(est.save(tmp_path / "ple.pt"))
    np.testing.assert_allclose(loaded.predict_proba(X[:6]), proba, rtol=1e-6, atol=1e-7)


def test_estimator_rejects_bad_architecture_before_fitting() -> None:
    from eegmtl.mixnet.classifier import MixNetClassifier

    X, y = _tiny()
    with pytest.raises(ValueError, match="architecture must be None or one of"):
        MixNetClassifier(architecture="moe").fit(X, y)
    with pytest.raises(ValueError, match="not accepted by architecture 'mmoe'"):
        MixNetClassifier(architecture="mmoe", architecture_kwargs={"n_shared": 1}).fit(X, y)
    with pytest.raises(ValueError, match="not accepted by architecture 'hps'"):
        MixNetClassifier(architecture_kwargs={"n_experts": 2}).fit(X, y)


@pytest.mark.parametrize("name", ["MixNet[val-tuned]+arch[mmoe]",
                                  "EEGNet+mtl[blending]+arch[cross_stitch]"])
def test_registry_names_with_arch(name: str) -> None:
    from eegmtl.evaluation.methods import default_config, get_method, is_method

    if name.startswith("EEGNet"):
        pytest.importorskip("braindecode")
    assert default_config(name)["architecture"] == name.split("+arch[")[1].rstrip("]")
    X, y = _tiny()
    est = get_method(name, max_epochs=1, device="cpu").build()
    est.fit(X[:28], y[:28], X_val=X[28:], y_val=y[28:])
    assert type(est.model_).__name__ == "MultiTaskEEGArchitecture"
    assert est.predict(X[:4]).shape == (4,)
    assert not is_method("EEGNet+arch[mmoe]")  # a plain braindecode baseline has no z heads
    assert not is_method("MixNet+arch[moe]") and not is_method("MixNet+arch")


def test_checkpoint_fingerprint_holds_the_architecture_only_when_set() -> None:
    """An estimator without architecture hashes as before the parameter existed (earlier
    checkpoints resume); one with an architecture gets its own settings hash."""
    from eegmtl._io import fit_fingerprint
    from eegmtl.mixnet.classifier import MixNetClassifier
    from eegmtl.mixnet.inputs import _HASHED_IF_SET, _RESUMABLE, data_fingerprint

    X, y = _tiny(20)
    plain = MixNetClassifier()
    # the parameters added since (architecture, optimisation options) left out while unset
    old_style = fit_fingerprint(plain, X, y, resumable=_RESUMABLE + _HASHED_IF_SET)
    assert data_fingerprint(plain, X, y)["settings_hash"] == old_style["settings_hash"]
    hashes = {data_fingerprint(MixNetClassifier(architecture=a), X, y)["settings_hash"]
              for a in ("mmoe", "cgc")}
    assert len(hashes) == 2 and old_style["settings_hash"] not in hashes
