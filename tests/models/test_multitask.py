"""Multi-task braindecode networks: MixNet's interface, trained by the MTL core's Trainer."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("braindecode")

from eegmtl.models.multitask import MultiTaskBraindecode, trunk_from_braindecode  # noqa: E402
from eegmtl.mtl.tasks import MultiTaskModel  # noqa: E402

C, T = 3, 512


@pytest.mark.parametrize("backbone", ["EEGNet", "ATCNet", "EEGConformer"])
@pytest.mark.parametrize("method", ["blending", "aligned_mtl"])
def test_trains_with_core_mtl_methods(backbone: str, method: str, train_one_epoch) -> None:
    torch.manual_seed(0)
    net = MultiTaskBraindecode(backbone, n_channels=C, n_times=T, latent_dim=8)
    assert isinstance(net, MultiTaskModel)
    out = net(torch.randn(4, C, T))
    assert out["reconstruction"].shape == (4, C, T) and out["metric"].shape == (4, 8)
    assert out["classification"].shape == (4, 2)
    train_one_epoch(net, method)  # the shared trunk is updated by the MTL step
    proba = net.predict_proba(torch.randn(3, C, T))
    assert torch.allclose(proba.sum(1), torch.ones(3), atol=1e-5)


def test_trunk_is_everything_before_final_layer() -> None:
    from braindecode.models import EEGConformer

    model = EEGConformer(n_chans=C, n_outputs=2, n_times=T, sfreq=250)
    trunk = trunk_from_braindecode(model)
    feats = trunk.eval()(torch.randn(2, C, T))
    assert feats.shape == (2, 32)  # the output of EEGConformer's fc MLP
    net = MultiTaskBraindecode("EEGNet", n_channels=C, n_times=T, latent_dim=4)
    names = {id(p) for p in net.shared_parameters()}
    for task in ("reconstruction", "classification"):
        assert not names & {id(p) for p in net.task_parameters(task)}  # heads are not shared
    assert list(net.task_parameters("metric")) == []
    net.apply_constraints()
    assert net.decoder.deconv1.weight.norm(dim=(1, 2)).max() <= 2.0 + 1e-5


def test_errors() -> None:
    with pytest.raises(ValueError, match="final_layer"):
        trunk_from_braindecode(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no model"):
        MultiTaskBraindecode("NoSuchNet", n_channels=C, n_times=T)
    net = MultiTaskBraindecode("EEGNet", n_channels=C, n_times=T)
    with pytest.raises(ValueError, match="expected input"):
        net.encode(torch.randn(2, C, T + 1))


@pytest.mark.parametrize("model", ["EEGNet", "ShallowFBCSPNet", "EEGConformer", "EEGTCNet",
                                   "TCFormer", "CTNet", "IFNet", "FBCNet"])
def test_trunk_features_are_what_enters_the_final_layer(model: str) -> None:
    """For each recipe network the trunk's output is exactly the input of the original
    model's classification layer (same weights, evaluation mode)."""
    from braindecode import models

    from eegmtl.eeg.recipes import RECIPES

    n_times = 1000
    kwargs = dict(n_chans=C, n_outputs=2, n_times=n_times, sfreq=250,
                  **RECIPES[model].model_kwargs)
    torch.manual_seed(0)
    original = getattr(models, model)(**kwargs).eval()
    torch.manual_seed(0)
    trunk = trunk_from_braindecode(getattr(models, model)(**kwargs)).eval()
    seen = []
    original.final_layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = torch.randn(2, C, n_times)
    with torch.no_grad():
        original(x)
        feats = trunk(x)
    assert torch.equal(feats, seen[0].flatten(1))


def test_atcnet_trunk_concatenates_the_windows_so_a_linear_head_can_be_atcnet_s() -> None:
    """ATCNet: one linear layer per sliding window, window logits averaged. The multi-task
    trunk (``concat``) concatenates every window's features, so one linear layer on them (the
    window layers side by side, / n_windows) gives exactly ATCNet's output; the averaged
    features of the earlier trunk (no ``concat``) are 32-d."""
    from braindecode.models import ATCNet

    torch.manual_seed(0)
    original = ATCNet(n_chans=C, n_outputs=2, n_times=1000, sfreq=250).eval()
    net = MultiTaskBraindecode("ATCNet", n_channels=C, n_times=1000,
                               model_kwargs={"concat": True}).eval()
    state = {k: v for k, v in original.state_dict().items() if not k.startswith("final_layer")}
    net.trunk.load_state_dict(state, strict=False)
    layers = list(original.final_layer)
    n = len(layers)
    assert net.n_features == 32 * n and n > 1
    weight = torch.cat([lin.weight for lin in layers], dim=1) / n
    bias = torch.stack([lin.bias for lin in layers]).mean(0)
    x = torch.randn(4, C, 1000)
    with torch.no_grad():
        assert torch.allclose(net.trunk(x) @ weight.T + bias, original(x), atol=1e-5)
    assert MultiTaskBraindecode("ATCNet", n_channels=C, n_times=1000).n_features == 32


def test_atcnet_mtl_pipelines_use_the_concatenated_trunk() -> None:
    from eegmtl.evaluation.methods import default_config

    assert default_config("ATCNet+mtl[aligned_mtl]")["backbone_kwargs"] == {"concat": True}
    assert "concat" not in default_config("EEGNet+mtl[aligned_mtl]")["backbone_kwargs"]
