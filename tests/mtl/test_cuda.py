"""The step on CUDA with every aggregator (skipped without a GPU), and free of host syncs."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from eegmtl.mtl.aggregators import AGGREGATORS, get_aggregator
from eegmtl.mtl.step import MTLStep
from eegmtl.mtl.tasks import Task

try:
    from ._tinynet import TinyNet
except ImportError:  # tests/ is not a package
    from _tinynet import TinyNet  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(autouse=True)
def _no_tf32():
    """CPU-vs-CUDA comparisons in full float32: TF32 convolutions (cuDNN's default on Ampere
    and later) round inputs to 10 mantissa bits, far above the tolerances below."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


TASKS = [
    Task("cls", F.cross_entropy),
    Task("rec", F.mse_loss),
    Task("reg", lambda z, _: z.pow(2).mean()),
]


def _agg(name):
    try:
        return get_aggregator(name)
    except TypeError:
        return get_aggregator(name, n_tasks=3)


def _batch(device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, 16, generator=g)
    y = {"cls": torch.randint(0, 2, (16,), generator=g), "rec": x, "reg": x}
    return x.to(device), {k: v.to(device) for k, v in y.items()}


def _grads(device, agg, **kw):
    torch.manual_seed(0)
    model = TinyNet().to(device)
    step = MTLStep(model, TASKS, "ew", _agg(agg), None, gradient_mode="loop", **kw)
    step(*_batch(device))
    return [p.grad.detach().cpu() for p in model.parameters()]


@pytest.mark.parametrize("agg", sorted(AGGREGATORS))
def test_step_on_cuda_matches_cpu(agg):
    if agg in ("rgw", "graddrop"):  # random: different generators on the two devices
        _grads("cuda", agg)
        return
    for a, b in zip(_grads("cpu", agg), _grads("cuda", agg)):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("mode", ["exact", "batched", "looksam", "subset"])
def test_flat_step_on_cuda_matches_cpu(mode):
    flat = {"rho": 0.1, "mode": mode, "every": 2 if mode == "looksam" else 1}
    for a, b in zip(_grads("cpu", "pcgrad", flat=flat), _grads("cuda", "pcgrad", flat=flat)):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kw", [
    {"aggregator": "sum"},
    {"aggregator": "mean", "fast_path": False},
    {"aggregator": "sum", "flat": {"rho": 0.1, "mode": "batched"}},
    {"aggregator": "sum", "flat": {"rho": 0.1}},
    {"aggregator": "sum", "autocast": "bf16"},
])
def test_no_host_sync_inside_the_step(kw):
    torch.manual_seed(0)
    model = TinyNet().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    step = MTLStep(model, TASKS, "ew", kw.pop("aggregator"), opt, **kw)
    batch = _batch("cuda")
    step(*batch)  # first call: lazy initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(*batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_bf16_autocast_on_cuda():
    g32 = _grads("cuda", "pcgrad")
    g16 = _grads("cuda", "pcgrad", autocast="bf16")
    for a, b in zip(g32, g16):
        assert b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0.1, atol=0.02)


def test_trainer_on_cuda_pins_batches_and_benchmarks_cudnn():
    from eegmtl.mtl.data import make_loader
    from eegmtl.mtl.trainer import Trainer

    torch.manual_seed(0)
    x, y = _batch("cpu")
    loader = make_loader((x, y), 8)
    trainer = Trainer(TinyNet(), TASKS, aggregator="pcgrad", max_epochs=1, patience=None,
                      progress=False, device="cuda", monitor="train_loss")
    trainer.fit(loader)
    assert trainer.runtime_ == {"cudnn_benchmark": True, "pin_memory": True}
    xb, yb = next(iter(loader))
    assert xb.is_pinned() and all(v.is_pinned() for v in yb.values())


def _averaged_fit(device, epochs, checkpoint_dir=None, resume=False):
    from eegmtl.mtl.data import make_loader
    from eegmtl.mtl.trainer import Trainer

    x, y = _batch("cpu")
    torch.manual_seed(0)
    trainer = Trainer(TinyNet(), TASKS, aggregator="pcgrad", max_epochs=epochs, patience=None,
                      progress=False, device=device, monitor="train_loss", ema_decay=0.8,
                      seed=0, checkpoint_dir=checkpoint_dir)
    trainer.fit(make_loader((x, y), 4, seed=0), resume=resume)
    return {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}


def test_weight_averaging_on_cuda_matches_cpu_and_resumes(tmp_path):
    """The averaged weights on CUDA: as on the CPU, and a fit resumed from a CUDA checkpoint
    (the average saved with the callback's state) ends where the uninterrupted one does."""
    cpu = _averaged_fit("cpu", 3)
    cuda = _averaged_fit("cuda", 3)
    _averaged_fit("cuda", 2, checkpoint_dir=tmp_path)
    resumed = _averaged_fit("cuda", 3, checkpoint_dir=tmp_path, resume=True)
    for k, v in cpu.items():
        if v.is_floating_point():
            torch.testing.assert_close(cuda[k], v, rtol=1e-3, atol=1e-5)
            torch.testing.assert_close(resumed[k], cuda[k], rtol=1e-5, atol=1e-6)
