"""Trainer: resume after a crash, early stopping + best restore, interleaved validation, API."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eegmtl.mtl.callbacks import (
    Callback,
    EarlyStopping,
    LRSchedule,
    MeanMetric,
    ModelSelection,
)
from eegmtl.mtl.conflict_probe import ConflictProbe
from eegmtl.mtl.data import MultiTaskDataset, make_loader
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.trainer import Trainer
from eegmtl.mtl.weightings import Weighting


class TinyNet(nn.Module):
    task_names = ("cls", "rec")

    def __init__(self, c: int = 2, n: int = 8, d: int = 3) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv1d(c, 3, 3, padding=1), nn.ELU(), nn.BatchNorm1d(3), nn.Flatten(),
            nn.Linear(3 * n, d),
        )
        self.cls = nn.Linear(d, 2)
        self.rec = nn.Linear(d, c * n)
        self.shape = (c, n)

    def encode(self, x):
        return self.trunk(x)

    def decode(self, z):
        return {"cls": self.cls(z), "rec": self.rec(z).view(-1, *self.shape)}

    def shared_parameters(self):
        return self.trunk.parameters()

    def task_parameters(self, task):
        return getattr(self, task).parameters()


def _acc(out, y):
    return float((out.argmax(1) == y).float().mean())


TASKS = [
    Task("cls", F.cross_entropy, {"acc": _acc}),
    Task("rec", F.mse_loss, higher_is_better=False),
]


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, 8, generator=g) + y[:, None, None] * 0.8
    return MultiTaskDataset(x, {"cls": y, "rec": x})


@pytest.fixture
def loaders():
    return make_loader(_data(48, 0), 16, seed=3), make_loader(_data(24, 1), 8, shuffle=False)


def _model():
    torch.manual_seed(0)
    return TinyNet()


class _Crash(Exception):
    pass


class CrashingLoader:
    """Delegates to a loader and raises in the given epoch (simulated power cut)."""

    def __init__(self, loader, crash_epoch):
        self.loader, self.crash_epoch, self.epoch = loader, crash_epoch, 0

    def set_epoch(self, e):
        self.epoch = e
        self.loader.set_epoch(e)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for i, b in enumerate(self.loader):
            if self.epoch == self.crash_epoch and i == 1:
                raise _Crash
            yield b


def _strip_time(history):
    return {k: [{kk: vv for kk, vv in r.items() if kk != "time"} for r in v]
            for k, v in history.items()}


@pytest.mark.parametrize("kw", [
    {"weighting": "rlw", "aggregator": "sum"},
    {"weighting": "ew", "aggregator": "mean", "flat": 0.05, "gradient_mode": "loop"},
    {"weighting": "ew", "aggregator": "sum", "ema_decay": 0.8, "monitor": "val_cls_acc",
     "interleaved_validation": True},
])
def test_resume_after_crash_is_exact(tmp_path, loaders, kw):
    train, val = loaders
    common = dict(max_epochs=6, seed=5, progress=False, patience=None, **kw)
    straight = Trainer(_model(), TASKS, **common).fit(train, val)

    crashed = Trainer(_model(), TASKS, checkpoint_dir=tmp_path, **common)
    with pytest.raises(_Crash):
        crashed.fit(CrashingLoader(train, crash_epoch=3), val)
    assert (tmp_path / "last.pt").is_file()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp files left

    resumed = Trainer(_model(), TASKS, checkpoint_dir=tmp_path, **common)
    resumed.fit(train, val, resume=True)
    assert resumed.epoch_ == 6 and len(resumed.history["epochs"]) == 6
    assert straight.resumed_epochs_ == 0 and resumed.resumed_epochs_ == 3
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert _strip_time(straight.history) == _strip_time(resumed.history)


class Worsening(Weighting):
    """EW, but counts its hooks."""

    def __init__(self, n):
        super().__init__(n)
        self.steps, self.vals, self.epochs = 0, [], []

    def weights(self, losses, gradients=None):
        return torch.ones(self.n_tasks)

    def after_step(self, train_losses, val_losses=None):
        self.steps += 1
        self.vals.append(val_losses)

    def after_epoch(self, epoch, train_losses, val_losses=None):
        self.epochs.append(epoch)


def test_interleaved_validation_feeds_after_step(loaders):
    train, val = loaders
    w = Worsening(2)
    tr = Trainer(_model(), TASKS, weighting=w, max_epochs=2, progress=False,
                 interleaved_validation=True, seed=0).fit(train, val)
    assert w.steps == 2 * len(train) and w.epochs == [0, 1]
    assert all(v is not None and v.shape == (2,) for v in w.vals)
    steps = tr.history_frame("step")
    assert {"val_loss_cls", "val_loss_rec", "weight_cls", "loss_rec"} <= set(steps.columns)
    ep = tr.history_frame()
    # MixNet's val_loss: per-step weighted interleaved val losses, averaged over the epoch
    e0 = steps[steps.epoch == 0]
    assert math.isclose(ep.val_loss[0], float((e0.val_loss_cls + e0.val_loss_rec).mean()),
                        rel_tol=1e-6)
    assert {"val_cls_acc", "val_loss_unweighted", "lr", "time", "train_cls_loss"} <= set(ep.columns)
    # without interleaving after_step sees None
    w2 = Worsening(2)
    Trainer(_model(), TASKS, weighting=w2, max_epochs=1, progress=False).fit(train, val)
    assert w2.vals and all(v is None for v in w2.vals)


def test_early_stopping_and_best_restore(loaders):
    train, val = loaders
    tr = Trainer(_model(), TASKS, max_epochs=40, patience=2, lr=0.3, optimizer="sgd",
                 monitor="val_cls_acc", progress=False, seed=1, scheduler=None)
    tr.fit(train, val)
    ep = tr.history_frame()
    assert tr.best_epoch_ == int(ep.val_cls_acc.idxmax())
    assert len(ep) == tr.best_epoch_ + 3  # stopped after patience epochs without improvement
    # the restored model scores the best epoch's value
    assert math.isclose(tr.evaluate(val)["cls_acc"], ep.val_cls_acc.max(), rel_tol=1e-6)


def test_plateau_scheduler_halves_lr(loaders):
    train, val = loaders
    tr = Trainer(_model(), TASKS, max_epochs=11, patience=None, progress=False)
    sch = tr.scheduler
    assert (sch.factor, sch.patience, sch.min_lrs, sch.threshold, sch.threshold_mode) == (
        0.5, 5, [1e-4], 1e-4, "abs")  # MixNet's Keras callback
    sch.patience, sch.threshold = 1, 10.0  # no epoch counts as an improvement after the first
    tr.fit(train, val)
    lrs = tr.history_frame().lr.tolist()
    assert lrs == pytest.approx([1e-3] * 3 + [5e-4] * 2 + [2.5e-4] * 2 + [1.25e-4] * 2
                                + [1e-4] * 2)


def test_predict_evaluate_and_errors(loaders, tmp_path):
    train, val = loaders
    tr = Trainer(_model(), TASKS, max_epochs=1, progress=False)
    out = tr.predict(val)
    assert out["cls"].shape == (24, 2) and out["rec"].shape == (24, 2, 8)
    ev = tr.evaluate(val)
    assert set(ev) == {"cls_loss", "rec_loss", "loss", "cls_acc"}
    with pytest.raises(ValueError, match="val_loader"):
        Trainer(_model(), TASKS, interleaved_validation=True, progress=False).fit(train)
    with pytest.raises(KeyError, match="monitor"):
        Trainer(_model(), TASKS, monitor="val_foo", progress=False, max_epochs=1).fit(train, val)
    with pytest.raises(ValueError, match="resume"):
        Trainer(_model(), TASKS, progress=False).fit(train, val, resume=True)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(_model(), TASKS, optimizer="lbfgs")
    with pytest.raises(ValueError, match="samples"):
        MultiTaskDataset(torch.zeros(3, 2), {"a": torch.zeros(4)})
    with pytest.warns(UserWarning, match="train_loss"):
        t2 = Trainer(_model(), TASKS, max_epochs=1, progress=False).fit(train)
    assert t2.history["epochs"][0]["train_loss"] > 0


def test_loader_is_seeded_per_epoch():
    ds = _data(10, 0)
    a, b = make_loader(ds, 4, seed=1), make_loader(ds, 4, seed=1)
    a.set_epoch(2)
    b.set_epoch(2)
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b))
    a.set_epoch(3)
    b.set_epoch(2)
    assert not torch.equal(next(iter(a))[0], next(iter(b))[0])  # reshuffled per epoch
    assert len(a) == 3 and len(make_loader(ds, 4, drop_last=True)) == 2


# ----------------------------------------------------------------------------- callbacks
class Recorder(Callback):
    """Records the hooks it sees, and adds a key that the trainer can monitor."""

    def __init__(self):
        self.calls = []

    def on_fit_begin(self, trainer, train_loader, val_loader):
        self.calls.append("fit_begin")

    def on_epoch_begin(self, trainer, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, trainer, x, targets):
        self.calls.append("batch_begin")

    def on_batch_end(self, trainer, result, record):
        self.calls.append("batch_end")

    def on_epoch_metrics(self, trainer, epoch, record):
        record["val_score"] = -record["val_loss"]

    def on_epoch_end(self, trainer, epoch, record):
        self.calls.append(("epoch_end", epoch, trainer.best_epoch_))

    def on_fit_end(self, trainer):
        self.calls.append("fit_end")


def test_callback_hooks_order_and_monitored_key(loaders):
    train, val = loaders
    rec = Recorder()
    tr = Trainer(_model(), TASKS, max_epochs=2, progress=False, seed=0, device="cpu",
                 patience=None, monitor="val_score", callbacks=[rec]).fit(train, val)
    per_epoch = ["batch_begin", "batch_end"] * len(train)
    assert rec.calls == (["fit_begin", ("epoch_begin", 0), *per_epoch, ("epoch_end", 0, None),
                          ("epoch_begin", 1), *per_epoch, ("epoch_end", 1, 0), "fit_end"])
    hist = tr.history_frame()
    assert tr.mode == "max" and tr.best_epoch_ == int(hist["val_score"].idxmax())
    kinds = [type(cb) for cb in tr.callbacks]
    assert kinds[:3] == [Recorder, ModelSelection, LRSchedule] and EarlyStopping not in kinds


def test_mean_metric_selects_epochs(loaders):
    train, val = loaders
    tr = Trainer(_model(), TASKS, max_epochs=3, progress=False, seed=0, device="cpu",
                 patience=None, monitor="val_mean_acc", callbacks=[MeanMetric("mean_acc", "acc")])
    tr.fit(train, val)
    hist = tr.history_frame()
    assert (hist["val_mean_acc"] == hist["val_cls_acc"]).all()  # one task with "acc"
    assert tr.best_epoch_ == int(hist["val_mean_acc"].idxmax())


def test_conflict_probe_counts_and_resumes_exactly(tmp_path, loaders):
    train, val = loaders
    common = dict(max_epochs=4, seed=5, progress=False, patience=None, device="cpu")
    probe = ConflictProbe(every=2)
    straight = Trainer(_model(), TASKS, callbacks=[probe], **common).fit(train, val)
    n_steps = 4 * len(train)
    assert probe.calls == n_steps and probe.counter.n_batches == math.ceil(n_steps / 2)
    assert 0.0 <= probe.counter.rate <= 1.0

    crashed_probe = ConflictProbe(every=2)
    crashed = Trainer(_model(), TASKS, checkpoint_dir=tmp_path, callbacks=[crashed_probe],
                      **common)
    with pytest.raises(_Crash):
        crashed.fit(CrashingLoader(train, crash_epoch=2), val)
    resumed_probe = ConflictProbe(every=2)
    resumed = Trainer(_model(), TASKS, checkpoint_dir=tmp_path, callbacks=[resumed_probe],
                      **common).fit(train, val, resume=True)
    assert resumed_probe.state_dict() == probe.state_dict()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_conflict_probe_does_not_change_training(loaders):
    train, val = loaders
    common = dict(max_epochs=2, seed=1, progress=False, patience=None, device="cpu")
    plain = Trainer(_model(), TASKS, **common).fit(train, val)
    probed = Trainer(_model(), TASKS, callbacks=[ConflictProbe()], **common).fit(train, val)
    for (k, a), b in zip(plain.model.state_dict().items(), probed.model.state_dict().values()):
        assert torch.equal(a, b), k


# ----------------------------------------------------------------------------- weight averaging
class _Recorder(Callback):
    """Copies of the model's weights: at every step's start and end, and at every epoch's
    validation (``on_evaluate``)."""

    def __init__(self):
        self.begin, self.end, self.validated = [], [], []

    @staticmethod
    def _copy(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def on_batch_begin(self, trainer, x, targets):
        self.begin.append(self._copy(trainer.model))

    def on_batch_end(self, trainer, result, record):
        self.end.append(self._copy(trainer.model))

    def on_evaluate(self, trainer, result):
        self.validated.append(self._copy(trainer.model))


def _ema(states, decay):
    """The expected average: first state, then decay * avg + (1 - decay) * state."""
    avg = {k: v.double() for k, v in states[0].items()}
    for s in states[1:]:
        avg = {k: decay * avg[k] + (1 - decay) * s[k].double() for k in avg}
    return avg


def _close(a, b):
    return all(torch.allclose(a[k].double(), b[k].double(), atol=1e-5) for k in a
               if a[k].is_floating_point())


@pytest.mark.parametrize("restore_best", [False, True])
def test_weight_averaging_validates_selects_and_returns_the_average(loaders, restore_best):
    train, val = loaders
    rec = _Recorder()
    tr = Trainer(_model(), TASKS, ema_decay=0.7, max_epochs=4, seed=2, progress=False,
                 patience=None, monitor="val_cls_loss", restore_best=restore_best,
                 callbacks=[rec], device="cpu").fit(train, val)
    n = len(train)
    # each epoch is validated on the average of every step so far, BatchNorm statistics too
    for epoch, seen in enumerate(rec.validated):
        expected = _ema(rec.end[: (epoch + 1) * n], 0.7)
        assert _close(seen, expected), epoch
        assert not _close(seen, rec.end[(epoch + 1) * n - 1])  # not the trained weights
    # ... and training continues from the trained weights, not from the average
    for epoch in range(1, 4):
        first = rec.begin[epoch * n]
        assert all(torch.equal(first[k], rec.end[epoch * n - 1][k]) for k in first)
    # the validation keys are those of the averaged weights
    probe = _model()
    probe.load_state_dict({k: v.float() for k, v in _ema(rec.end, 0.7).items()})
    probe.trunk[2].num_batches_tracked.copy_(rec.validated[-1]["trunk.2.num_batches_tracked"])
    last = Trainer(probe, TASKS, progress=False, device="cpu").evaluate(val)
    assert tr.history["epochs"][-1]["val_cls_loss"] == pytest.approx(last["cls_loss"], rel=1e-4)
    # the fit ends with the average: of the best epoch when restoring the best, else the last
    best = tr.best_epoch_ if restore_best else 3
    assert _close(tr.model.state_dict(), rec.validated[best])


def test_weight_averaging_is_off_by_default_and_checks_its_decay(tmp_path, loaders):
    from eegmtl.mtl.callbacks import WeightAveraging
    from eegmtl.mtl.checkpoint import CheckpointMismatchError

    train, val = loaders
    plain = Trainer(_model(), TASKS, max_epochs=2, seed=1, progress=False, device="cpu")
    assert not any(isinstance(c, WeightAveraging) for c in plain.fit(train, val).callbacks)
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="ema_decay must be in"):
            Trainer(_model(), TASKS, ema_decay=bad)
    with pytest.warns(UserWarning, match="chosen on the trained weights"):
        Trainer(_model(), TASKS, ema_decay=0.9, interleaved_validation=True)
    _checkpointed(tmp_path, loaders)
    with pytest.raises(CheckpointMismatchError, match="ema_decay: checkpoint '<absent>'"):
        Trainer(_model(), TASKS, max_epochs=3, progress=False, checkpoint_dir=tmp_path,
                ema_decay=0.9).fit(train, val, resume=True)


# ----------------------------------------------------------------------------- checkpoint errors
def _checkpointed(tmp_path, loaders, **kw):
    train, val = loaders
    common = dict(max_epochs=2, seed=5, progress=False, patience=None, checkpoint_dir=tmp_path)
    return Trainer(_model(), TASKS, **{**common, **kw}).fit(train, val)


def test_resume_refuses_another_method_and_other_data(tmp_path, loaders):
    from eegmtl.mtl.checkpoint import CheckpointMismatchError

    _checkpointed(tmp_path, loaders, aggregator="pcgrad")
    train, val = loaders
    ckpt = str(tmp_path / "last.pt")
    other = Trainer(_model(), TASKS, aggregator="mgda", max_epochs=3, progress=False,
                    checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatchError, match="aggregator: checkpoint 'PCGrad', now "
                       "'MGDA'") as err:
        other.fit(train, val, resume=True)
    assert ckpt in str(err.value) and "resume=False" in str(err.value)
    data = Trainer(_model(), TASKS, aggregator="pcgrad", max_epochs=3, progress=False,
                   checkpoint_dir=tmp_path, fingerprint={"data": "subject 2"})
    with pytest.raises(CheckpointMismatchError, match="data: checkpoint '<absent>', now"):
        data.fit(train, val, resume=True)
    same = Trainer(_model(), TASKS, aggregator="pcgrad", max_epochs=3, progress=False,
                   checkpoint_dir=tmp_path, seed=5)
    assert same.fit(train, val, resume=True).epoch_ == 3  # same settings: continues


def test_checkpoint_of_another_model_without_fingerprint(tmp_path, loaders):
    """A checkpoint without fingerprint whose tensors do not fit: clear error with the path."""
    from eegmtl.mtl.checkpoint import CheckpointMismatchError, load_checkpoint, save_checkpoint

    _checkpointed(tmp_path, loaders)
    state = load_checkpoint(tmp_path / "last.pt")
    state.pop("fingerprint")
    save_checkpoint(state, tmp_path / "last.pt")
    train, val = loaders
    torch.manual_seed(0)
    wider = Trainer(TinyNet(d=5), TASKS, max_epochs=3, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatchError, match="another model or training configuration"
                       ) as err:
        wider.fit(train, val, resume=True)
    assert str(tmp_path / "last.pt") in str(err.value)


@pytest.mark.parametrize("damage", ["truncate", "empty", "foreign"])
def test_unreadable_checkpoint_names_the_file(tmp_path, loaders, damage):
    from eegmtl.mtl.checkpoint import CorruptCheckpointError

    _checkpointed(tmp_path, loaders)
    path = tmp_path / "last.pt"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(2)}, path)
    train, val = loaders
    trainer = Trainer(_model(), TASKS, max_epochs=3, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CorruptCheckpointError, match="resume=False") as err:
        trainer.fit(train, val, resume=True)
    assert str(path) in str(err.value)


def test_temporary_file_of_a_killed_writer_is_removed_by_the_next_save(tmp_path, loaders):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".last.pt.{int(dead.stdout)}.tmp"
    stale.write_bytes(b"\0" * 1024)  # what a SIGKILLed torch.save leaves behind
    _checkpointed(tmp_path, loaders)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
