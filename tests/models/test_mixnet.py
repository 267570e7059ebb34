"""Tests of eegmtl.models.mixnet.MixNet (architecture, Keras equivalences, MTL protocol)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from eegmtl.models import MixNet
from eegmtl.models.mixnet import same_padding, transposed_same_crop
from eegmtl.mtl.tasks import MultiTaskModel


def _model(**kwargs) -> MixNet:
    torch.manual_seed(0)
    return MixNet(**kwargs)


# ----------------------------------------------------------------------------- shapes / counts
def test_shape_flow_through_every_layer():
    model = _model(latent_dim=4)
    x = torch.randn(5, 18, 400)
    expected_encoder = {
        "pad1": (5, 18, 463),
        "conv1": (5, 18, 400),
        "elu1": (5, 18, 400),
        "bn1": (5, 18, 400),
        "pool1": (5, 18, 100),
        "pad2": (5, 18, 131),
        "conv2": (5, 9, 100),
        "elu2": (5, 9, 100),
        "bn2": (5, 9, 100),
        "pool2": (5, 9, 25),
        "flatten": (5, 225),
        "latent": (5, 4),
    }
    h = x
    for name, layer in model.encoder.named_children():
        h = layer(h)
        assert tuple(h.shape) == expected_encoder[name], name
    expected_decoder = {
        "dense": (5, 225),
        "elu0": (5, 225),
        "unflatten": (5, 9, 25),
        "deconv1": (5, 9, 100),  # exactly 4x
        "elu1": (5, 9, 100),
        "deconv2": (5, 18, 400),  # exactly 4x, T restored
        "elu2": (5, 18, 400),
    }
    z = h
    for name, layer in model.decoder.named_children():
        h = layer(h)
        assert tuple(h.shape) == expected_decoder[name], name
    assert tuple(model.classifier(z).shape) == (5, 2)
    out = model(x)
    assert set(out) == {"reconstruction", "metric", "classification"}
    assert tuple(out["reconstruction"].shape) == (5, 18, 400)
    assert out["reconstruction"].min() >= -1.0  # final ELU, as the original


@pytest.mark.parametrize(("latent", "trainable"), [(4, 38_435), (18, 44_777)])
def test_parameter_counts_match_the_original(latent, trainable):
    counts = _model(latent_dim=latent).parameter_counts()
    assert counts == {"trainable": trainable, "non_trainable": 54}


def test_defaults_follow_the_original_code():
    m = MixNet()
    assert (m.latent_dim, m.f2, m.pool1, m.pool2) == (18, 9, 4, 4)  # latent = C for 2 classes
    assert MixNet(n_classes=3).latent_dim == 64
    assert MixNet(n_channels=12, n_times=600, sfreq=100).pool1 == 6  # T // sfreq
    assert MixNet(n_channels=12, n_times=600, sfreq=100)(torch.randn(2, 12, 600))[
        "reconstruction"
    ].shape == (2, 12, 600)
    mn = MixNet.min2net(n_channels=3)
    assert (mn.f2, mn.latent_dim, mn.max_norm_output) == (10, 3, True)
    assert mn(torch.randn(2, 3, 400))["reconstruction"].shape == (2, 3, 400)


def test_four_d_input_and_dtype_cast():
    model = _model(latent_dim=4).eval()
    x = torch.randn(3, 18, 400)
    with torch.no_grad():
        a = model(x)["classification"]
        b = model(x[:, None])["classification"]
        c = model(x.double())["classification"]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_bad_inputs_raise_clear_errors():
    model = _model(latent_dim=4)
    with pytest.raises(ValueError, match=r"\(n_trials, 18, 400\)"):
        model(torch.randn(2, 400, 18))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(2, 1, 400, 18))
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(2, 18, 400, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(np.zeros((2, 18, 400)))
    with pytest.raises(ValueError, match="decode expects"):
        model.decode(torch.randn(2, 5))
    with pytest.raises(ValueError, match="multiple of"):
        MixNet(n_times=401)
    with pytest.raises(ValueError, match="init"):
        MixNet(init="he")
    with pytest.raises(ValueError, match="n_classes"):
        MixNet(n_classes=1)
    with pytest.raises(ValueError, match="stride"):
        transposed_same_crop(2, 4)


# ----------------------------------------------------------------------------- TF "same" rules
def test_same_padding_matches_tensorflow_split():
    assert same_padding(64) == (31, 32)
    assert same_padding(32) == (15, 16)
    assert same_padding(5) == (2, 2)
    assert transposed_same_crop(64, 4) == (30, 30)
    assert transposed_same_crop(32, 4) == (14, 14)
    assert transposed_same_crop(7, 2) == (2, 3)


@pytest.mark.parametrize("impl", ["direct", "fft"])
def test_encoder_conv_is_tf_same_cross_correlation(impl):
    """conv1 output equals an explicit loop with (k-1)//2 zeros left and the rest right."""
    model = _model(
        n_channels=2, n_times=16, pool1=2, pool2=2, kernel1=6, kernel2=4, f2=1, conv_impl=impl
    )
    w = model.encoder.conv1.weight.detach().numpy()  # (out, in, k)
    torch.nn.init.normal_(model.encoder.conv1.bias)
    b = model.encoder.conv1.bias.detach().numpy()
    x = np.random.default_rng(0).normal(size=(1, 2, 16))
    got = model.encoder.conv1(model.encoder.pad1(torch.tensor(x, dtype=torch.float32)))
    k, left = 6, 2  # TF: (k - 1) // 2 = 2 zeros left, 3 right
    ref = np.zeros((1, 2, 16))
    for o in range(2):
        for t in range(16):
            acc = b[o]
            for i in range(2):
                for j in range(k):
                    src = t + j - left
                    if 0 <= src < 16:
                        acc += w[o, i, j] * x[0, i, src]
            ref[0, o, t] = acc
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("k", "s"), [(64, 4), (32, 4), (7, 2), (4, 4)])
def test_transposed_conv_is_adjoint_of_tf_same_strided_conv(k, s):
    """TF's Conv2DTranspose(same) is the adjoint of a stride-s 'same' conv on L*s samples."""
    from eegmtl.models.mixnet import _SameConvTranspose1d

    torch.manual_seed(1)
    c_in, c_out, length = 3, 2, 9
    deconv = _SameConvTranspose1d(c_in, c_out, k, stride=s)
    torch.nn.init.zeros_(deconv.bias)
    n_out = length * s
    # TensorFlow SAME for the forward strided conv of n_out samples -> ceil(n_out/s) = length
    pad_total = max((length - 1) * s + k - n_out, 0)
    pad_before = pad_total // 2
    pad = (pad_before, pad_total - pad_before)
    x = torch.zeros(1, c_out, n_out, requires_grad=True)
    z = torch.randn(1, c_in, length)
    fwd = F.conv1d(F.pad(x, pad), deconv.weight, stride=s)
    assert fwd.shape[-1] == length
    (adjoint,) = torch.autograd.grad((fwd * z).sum(), x)
    got = deconv(z)
    assert got.shape[-1] == n_out
    torch.testing.assert_close(got, adjoint)


def test_fft_and_direct_convolutions_agree_in_values_and_gradients():
    torch.manual_seed(3)
    fft = MixNet(latent_dim=4, conv_impl="fft")
    direct = MixNet(latent_dim=4, conv_impl="direct")
    direct.load_state_dict(fft.state_dict())
    x = torch.randn(6, 18, 400) * 20  # microvolt-like scale
    out_f, out_d = fft(x), direct(x)
    for key in out_f:
        torch.testing.assert_close(out_f[key], out_d[key], rtol=1e-4, atol=1e-4)
    (out_f["reconstruction"].sum() + out_f["classification"].pow(2).sum()).backward()
    (out_d["reconstruction"].sum() + out_d["classification"].pow(2).sum()).backward()
    for (name, pf), pd in zip(fft.named_parameters(), direct.parameters()):
        scale = pd.grad.abs().max()
        torch.testing.assert_close(pf.grad / scale, pd.grad / scale, rtol=0, atol=1e-4, msg=name)
    with pytest.raises(ValueError, match="conv_impl"):
        MixNet(conv_impl="winograd")


def test_flatten_uses_keras_channels_last_order():
    model = _model(latent_dim=4)
    h = torch.arange(2 * 9 * 25, dtype=torch.float32).reshape(2, 9, 25)
    flat = model.encoder.flatten(h)
    t, c = 3, 5
    assert flat[1, t * 9 + c] == h[1, c, t]
    torch.testing.assert_close(model.decoder.unflatten(flat), h)


# ----------------------------------------------------------------------------- Keras equivalences
def test_glorot_uniform_init_and_zero_bias():
    model = _model(latent_dim=4)
    fans = {  # fan_in + fan_out as Keras computes them (receptive field x channels)
        "encoder.conv1": 18 * 64 + 18 * 64,
        "encoder.conv2": 18 * 32 + 9 * 32,
        "encoder.latent": 225 + 4,
        "decoder.dense": 4 + 225,
        "decoder.deconv1": 9 * 64 + 9 * 64,
        "decoder.deconv2": 9 * 32 + 18 * 32,
    }
    modules = dict(model.named_modules())
    for name, fan_sum in fans.items():
        w = modules[name].weight.detach()
        limit = math.sqrt(6.0 / fan_sum)
        assert w.abs().max() <= limit
        assert w.std().item() == pytest.approx(limit / math.sqrt(3.0), rel=0.1), name
        assert torch.count_nonzero(modules[name].bias) == 0
    for bn in (model.encoder.bn1, model.encoder.bn2):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    torch_init = MixNet(latent_dim=4, init="torch")
    assert torch.count_nonzero(torch_init.encoder.conv1.bias) > 0


def test_batchnorm_uses_keras_momentum_semantics():
    """Keras momentum 0.1: running <- 0.1 * running + 0.9 * batch (PyTorch momentum 0.9)."""
    model = _model(latent_dim=4)
    bn = model.encoder.bn1
    assert bn.momentum == pytest.approx(0.9) and bn.eps == 1e-5
    x = torch.randn(8, 18, 400) * 3 + 1
    with torch.no_grad():
        h = model.encoder.elu1(model.encoder.conv1(model.encoder.pad1(x)))
        batch_mean = h.mean(dim=(0, 2))
        batch_var = h.var(dim=(0, 2), unbiased=True)
    model.train()
    model(x)
    torch.testing.assert_close(bn.running_mean, 0.9 * batch_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, 0.1 * 1.0 + 0.9 * batch_var, rtol=1e-4, atol=1e-5)
    assert MixNet(bn_momentum_keras=0.99).encoder.bn2.momentum == pytest.approx(0.01)


def test_max_norm_constraints_like_keras():
    model = _model(latent_dim=4)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(50.0)
        model.encoder.conv1.weight[0].mul_(1e-4)  # one filter well within its limit
    small_before = model.encoder.conv1.weight[0].clone()
    out_before = model.decoder.deconv2.weight.clone()
    model.apply_constraints()
    limits = {
        "encoder.conv1.weight": ((1, 2), 2.0),  # per output filter
        "encoder.conv2.weight": ((1, 2), 2.0),
        "decoder.deconv1.weight": ((1, 2), 2.0),  # (in, out, k): per input channel
        "encoder.latent.weight": ((1,), 0.5),  # (out, in): per output unit
        "decoder.dense.weight": ((1,), 0.5),
        "classifier.weight": ((1,), 0.5),
    }
    params = dict(model.named_parameters())
    for name, (dims, limit) in limits.items():
        norms = params[name].detach().norm(dim=dims)
        assert torch.all(norms <= limit * (1 + 1e-5)), name
        assert norms.max() == pytest.approx(limit, rel=1e-5), name  # clipped ones sit at limit
    assert sorted(n for n, _, _ in model.constrained_parameters()) == sorted(limits)
    # within the limit: only Keras' factor n / (n + 1e-7) is applied
    n0 = small_before.norm()
    assert n0 < 2.0
    torch.testing.assert_close(model.encoder.conv1.weight[0], small_before * n0 / (n0 + 1e-7))
    assert torch.equal(model.decoder.deconv2.weight, out_before)  # not constrained by default
    # a second application changes nothing (idempotent up to Keras' 1e-7 epsilon)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    model.apply_constraints()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, snapshot[k], rtol=1e-4, atol=0)

    constrained_out = _model(latent_dim=4, max_norm_output=True)
    with torch.no_grad():
        constrained_out.decoder.deconv2.weight.mul_(50.0)
    constrained_out.apply_constraints()
    assert constrained_out.decoder.deconv2.weight.norm(dim=(1, 2)).max() <= 2.0 * (1 + 1e-5)
    unconstrained = _model(latent_dim=4, max_norm_conv=None, max_norm_dense=None)
    assert unconstrained.constrained_parameters() == []


# ----------------------------------------------------------------------------- MTL protocol
def test_multitask_protocol_and_parameter_partition():
    model = _model(latent_dim=4)
    assert isinstance(model, MultiTaskModel)
    assert tuple(model.task_names) == ("reconstruction", "metric", "classification")
    shared = {id(p) for p in model.shared_parameters()}
    heads = {t: {id(p) for p in model.task_parameters(t)} for t in model.task_names}
    assert heads["metric"] == set()
    groups = [shared, heads["reconstruction"], heads["classification"]]
    assert sum(len(g) for g in groups) == len(set().union(*groups))  # disjoint
    assert set().union(*groups) == {id(p) for p in model.parameters()}  # complete
    with pytest.raises(KeyError, match="unknown task"):
        model.task_parameters("segmentation")

    model.eval()
    x = torch.randn(4, 18, 400)
    with torch.no_grad():
        z = model.encode(x)
        direct = model(x)
        via = model.decode(z)
    for key in direct:
        torch.testing.assert_close(direct[key], via[key])
    torch.testing.assert_close(direct["metric"], z)


def test_all_losses_reach_their_parameters():
    from eegmtl.mixnet.losses import (
        class_balanced_cross_entropy,
        reconstruction_loss,
        semi_hard_triplet_loss,
    )

    model = _model(latent_dim=4)
    x = torch.randn(16, 18, 400)
    y = torch.arange(16) % 2
    out = model(x)
    loss = (
        reconstruction_loss(out["reconstruction"], x)
        + semi_hard_triplet_loss(y, out["metric"], margin=1.0)
        + class_balanced_cross_entropy(out["classification"], y)
    )
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_predict_proba_restores_mode_and_sums_to_one():
    model = _model(latent_dim=4)
    model.train()
    running = model.encoder.bn1.running_mean.clone()
    proba = model.predict_proba(torch.randn(3, 18, 400))
    assert model.training
    assert torch.equal(model.encoder.bn1.running_mean, running)  # eval mode: stats untouched
    assert proba.shape == (3, 2) and not proba.requires_grad
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(3))


def test_models_package_exports_mixnet_and_resolves_vision_names_lazily():
    import eegmtl.models as models

    assert models.MixNet is MixNet
    with pytest.raises(AttributeError, match="no attribute"):
        models.NoSuchModel  # noqa: B018
    vision = pytest.importorskip("eegmtl.models.vision")
    public = getattr(vision, "__all__", [])
    if public:
        assert getattr(models, public[0]) is getattr(vision, public[0])
        assert public[0] in dir(models)
