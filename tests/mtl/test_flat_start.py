"""FlatConfig(start=...): flat training only from a given epoch; before it the plain step."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from eegmtl.mtl.callbacks import Callback
from eegmtl.mtl.data import MultiTaskDataset, make_loader
from eegmtl.mtl.flat import FlatConfig
from eegmtl.mtl.step import MTLStep
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from _tinynet import TinyNet  # noqa: E402

TASKS = [Task("cls", F.cross_entropy), Task("rec", F.mse_loss)]


def _model():
    torch.manual_seed(0)
    return TinyNet(with_reg=False)


def _loader():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (32,), generator=g)
    x = torch.randn(32, 3, 16, generator=g) + y[:, None, None]
    return make_loader(MultiTaskDataset(x, {"cls": y, "rec": x}), 8, seed=1)


class _Snapshot(Callback):
    """Keeps the parameters at the end of every epoch."""

    def __init__(self):
        self.states = []

    def on_epoch_end(self, trainer, epoch, record):
        self.states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def _fit(flat, epochs, aggregator="pcgrad"):
    snap = _Snapshot()
    trainer = Trainer(
        _model(), TASKS, aggregator=aggregator, flat=flat, max_epochs=epochs, patience=None,
        scheduler=None, restore_best=False, progress=False, seed=0, log_steps=True,
        gradient_mode="loop", monitor="train_loss", callbacks=[snap],
    )
    trainer.fit(_loader())
    trainer.snapshots = snap.states
    return trainer


def _params(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def _assert_same(a, b):
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_start_validated_and_resolved():
    for bad in (-1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="start"):
            FlatConfig(start=bad)
    assert FlatConfig(start=0.5).start_epoch(10) == 5
    assert FlatConfig(start=0.5).start_epoch(3) == 1  # at least the last half is flat
    assert FlatConfig(start=4).start_epoch(10) == 4
    # the default leaves records, hashes and checkpoint fingerprints as they were
    assert FlatConfig(start=0).as_record() == FlatConfig().as_record()
    assert "start" not in repr(FlatConfig()) and "start=0.5" in repr(FlatConfig(start=0.5))
    assert FlatConfig(start=0.5).as_record()["start"] == 0.5


@pytest.mark.parametrize("mode", ["exact", "looksam"])
def test_start_zero_is_the_flat_step_from_the_first_batch(mode):
    """start=0: the trainer's run equals the flat step driven by hand, bit for bit."""
    every = 2 if mode == "looksam" else 1
    trainer = _fit({"rho": 0.3, "mode": mode, "every": every, "start": 0}, 2)
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = MTLStep(model, TASKS, "ew", "pcgrad", opt, gradient_mode="loop",
                   flat={"rho": 0.3, "mode": mode, "every": every})
    assert step.flat_active
    loader = _loader()
    paths = []
    torch.manual_seed(0)
    for epoch in range(2):
        loader.set_epoch(epoch)
        model.train()
        for x, y in loader:
            paths.append(step(x, y).diagnostics["path"])
    assert set(paths) == {"flat"}
    _assert_same(_params(trainer), {k: v for k, v in model.state_dict().items()})


@pytest.mark.parametrize("start", [2, 0.5])
def test_before_start_the_step_is_the_plain_step(start):
    flat = _fit({"rho": 0.3, "start": start}, 4)
    plain = _fit(None, 2)
    # after 2 epochs the flat run (start epoch 2) has the plain run's parameters, bit for bit
    early = [r for r in flat.history["steps"] if r["epoch"] < 2]
    assert len(early) == len(plain.history["steps"])
    for a, b in zip(early, plain.history["steps"]):
        assert a == b
    _assert_same(flat.snapshots[1], plain.snapshots[1])
    plain4 = _fit(None, 4)
    assert not all(
        torch.equal(a, b) for a, b in zip(_params(flat).values(), _params(plain4).values())
    )
    assert flat.step.flat_active and flat.step.config()["flat"]["start"] == start


def test_switch_in_the_step_and_state():
    step = MTLStep(_model(), TASKS, "ew", "sum", None, flat={"rho": 0.3, "start": 0.5})
    x, y = next(iter(_loader()))
    assert not step.flat_active and step.uses_fast_path
    assert step(x, y).diagnostics["path"] == "fast"
    step.begin_epoch(1, 4)
    assert not step.flat_active
    step.begin_epoch(2, 4)
    assert step.flat_active and not step.uses_fast_path
    assert step(x, y).diagnostics["path"] == "flat"
    other = MTLStep(_model(), TASKS, "ew", "sum", None, flat={"rho": 0.3, "start": 0.5})
    other.load_state_dict(step.state_dict())
    assert other.flat_active
