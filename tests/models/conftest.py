"""Shared pieces of the multi-task EEG network tests: MixNet's three tasks and a toy loader."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from eegmtl.mixnet.losses import ReconstructionLoss, SemiHardTripletLoss
from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader
from eegmtl.mtl.tasks import Task


@pytest.fixture
def mixnet_tasks() -> list[Task]:
    """Reconstruction, semi-hard triplet and cross-entropy tasks, in MixNet's order."""
    return [Task("reconstruction", ReconstructionLoss()), Task("metric", SemiHardTripletLoss(1.0)),
            Task("classification", torch.nn.CrossEntropyLoss())]


@pytest.fixture
def toy_loader() -> Callable[..., MultiTaskLoader]:
    """``toy_loader(n, seed, c, t, shuffle=True)``: ``n`` Gaussian trials ``(c, t)``, labels
    0/1 alternating, batches of 8, targets for MixNet's three tasks."""

    def make(n: int, seed: int, c: int, t: int, shuffle: bool = True) -> MultiTaskLoader:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, c, t, generator=g)
        y = torch.tensor([0, 1] * (n // 2))
        ds = MultiTaskDataset(x, {"reconstruction": x, "metric": y, "classification": y})
        return MultiTaskLoader(ds, 8, shuffle=shuffle, seed=seed)

    return make


@pytest.fixture
def train_one_epoch(mixnet_tasks, toy_loader) -> Callable[[torch.nn.Module, str], None]:
    """``train_one_epoch(net, method)``: one epoch of the MTL core's Trainer on toy trials of
    the net's ``(n_channels, n_times)`` with ``"blending"`` (interleaved validation) or an
    aggregator with equal weights (e.g. ``"aligned_mtl"``); asserts that the shared
    parameters moved."""
    from eegmtl.mtl.trainer import Trainer
    from eegmtl.mtl.weightings import get_weighting

    def run(net: torch.nn.Module, method: str) -> None:
        c, t = net.n_channels, net.n_times
        if method == "blending":
            kw = {"weighting": get_weighting("blending", 3, warmup_epochs=0, batch_size=8,
                                             val_batch_size=8), "interleaved_validation": True}
        else:
            kw = {"weighting": "ew", "aggregator": method}
        before = [p.detach().clone() for p in net.shared_parameters()]
        trainer = Trainer(net, mixnet_tasks, max_epochs=1, patience=None, progress=False,
                          scheduler=None, seed=0, lr=1e-2, **kw)
        trainer.fit(toy_loader(16, 0, c, t), toy_loader(8, 1, c, t, shuffle=False))
        assert trainer.n_epochs_trained_ == 1
        assert any(not torch.equal(a, b) for a, b in zip(before, net.shared_parameters()))

    return run
