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
