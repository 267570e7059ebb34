"""Multi-task braindecode networks: MixNet's interface, trained by the MTL core's Trainer."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("braindecode")

from eegmtl.mixnet.losses import ReconstructionLoss, SemiHardTripletLoss  # noqa: E402
from eegmtl.models.multitask import MultiTaskBraindecode, trunk_from_braindecode  # noqa: E402
from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader  # noqa: E402
from eegmtl.mtl.tasks import MultiTaskModel, Task  # noqa: E402
from eegmtl.mtl.trainer import Trainer  # noqa: E402
from eegmtl.mtl.weightings import get_weighting  # noqa: E402

C, T = 3, 512


def _loader(n: int, seed: int, shuffle: bool = True) -> MultiTaskLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, C, T, generator=g)
    y = torch.tensor([0, 1] * (n // 2))
    ds = MultiTaskDataset(x, {"reconstruction": x, "metric": y, "classification": y})
    return MultiTaskLoader(ds, 8, shuffle=shuffle, seed=seed)


def _tasks() -> list[Task]:
    return [Task("reconstruction", ReconstructionLoss()), Task("metric", SemiHardTripletLoss(1.0)),
            Task("classification", torch.nn.CrossEntropyLoss())]


@pytest.mark.parametrize("backbone", ["EEGNet", "ATCNet", "EEGConformer"])
@pytest.mark.parametrize("method", ["blending", "aligned_mtl"])
def test_trains_with_core_mtl_methods(backbone: str, method: str) -> None:
    torch.manual_seed(0)
    net = MultiTaskBraindecode(backbone, n_channels=C, n_times=T, latent_dim=8)
    assert isinstance(net, MultiTaskModel)
    out = net(torch.randn(4, C, T))
    assert out["reconstruction"].shape == (4, C, T) and out["metric"].shape == (4, 8)
    assert out["classification"].shape == (4, 2)
    if method == "blending":
        kw = {"weighting": get_weighting("blending", 3, warmup_epochs=0, batch_size=8,
                                         val_batch_size=8), "interleaved_validation": True}
    else:
        kw = {"weighting": "ew", "aggregator": "aligned_mtl"}
    before = [p.detach().clone() for p in net.shared_parameters()]
    trainer = Trainer(net, _tasks(), max_epochs=1, patience=None, progress=False,
                      scheduler=None, seed=0, lr=1e-2, **kw)
    trainer.fit(_loader(16, 0), _loader(8, 1, shuffle=False))
    assert trainer.n_epochs_trained_ == 1
    changed = [not torch.equal(a, b) for a, b in zip(before, net.shared_parameters())]
    assert any(changed)  # the shared trunk was updated by the MTL step
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
