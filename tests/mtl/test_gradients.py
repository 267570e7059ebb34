"""Per-task gradients (eegmtl.mtl.gradients) against plain per-task autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eegmtl.mtl.gradients import GradientEngine, flatten, unflatten_to_grads

try:
    from ._tinynet import TinyNet
except ImportError:  # tests/ is not a package
    from _tinynet import TinyNet  # type: ignore[no-redef]


def _losses(out, x, y):
    return torch.stack([
        F.cross_entropy(out["cls"], y), F.mse_loss(out["rec"], x), out["reg"].pow(2).mean(),
    ])


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = TinyNet()
    x = torch.randn(8, 3, 16)
    y = torch.randint(0, 2, (8,))
    return model, x, y


def _reference(model, x, y):
    shared = list(model.shared_parameters())
    heads = [list(model.task_parameters(n)) for n in model.task_names]
    rows, head_grads = [], []
    for t in range(3):
        losses = _losses(model(x), x, y)
        g = torch.autograd.grad(losses[t], shared + heads[t], allow_unused=True)
        rows.append(flatten(g[: len(shared)], shared))
        head_grads.append(g[len(shared):])
    return torch.stack(rows), head_grads


@pytest.mark.parametrize("mode", ["vmap", "loop", "auto"])
def test_parameter_matrix_matches_autograd(setup, mode):
    model, x, y = setup
    ref, ref_heads = _reference(model, x, y)
    shared = list(model.shared_parameters())
    heads = [list(model.task_parameters(n)) for n in model.task_names]
    engine = GradientEngine(mode, model=model)
    for _ in range(3):
        rep = model.encode(x)
        rep_d = rep.detach().requires_grad_(True)
        losses = _losses(model.decode(rep_d), x, y)
        out = engine.compute(losses, rep, rep_d, shared, heads, "parameters")
        assert out.matrix.shape == (3, sum(p.numel() for p in shared))
        torch.testing.assert_close(out.matrix, ref, rtol=1e-5, atol=1e-6)
        for t in range(3):
            assert len(out.heads[t]) == len(ref_heads[t])
            for a, b in zip(out.heads[t], ref_heads[t]):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if mode == "auto":
        assert engine.chosen == "vmap"  # Conv1d/AvgPool1d trunk


def test_auto_mode_is_a_fixed_rule_not_a_timing(setup, monkeypatch):
    """A slow clock (a loaded machine) cannot change the backend, hence the arithmetic."""
    import time

    from eegmtl.mtl.gradients import resolve_gradient_mode

    model, x, y = setup
    lenet_like = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2))
    chosen = []
    for offset in (0.0, 1e3):
        calls = iter(range(10**6))
        monkeypatch.setattr(time, "perf_counter", lambda o=offset, c=calls: o * next(c))
        monkeypatch.setattr(time, "time", lambda o=offset, c=calls: o * next(c))
        chosen.append((GradientEngine("auto", model=model).chosen,
                       GradientEngine("auto", model=lenet_like).chosen))
    assert chosen == [("vmap", "loop"), ("vmap", "loop")]
    assert resolve_gradient_mode("loop", model) == "loop"
    assert resolve_gradient_mode("auto") == "vmap"
    with pytest.raises(ValueError, match="gradient mode"):
        resolve_gradient_mode("fastest", model)
    # the resolved backend is what the step records with its configuration
    from eegmtl.mtl.step import MTLStep
    from eegmtl.mtl.tasks import Task

    tasks = [Task("cls", F.cross_entropy), Task("rec", F.mse_loss),
             Task("reg", lambda z, _: z.pow(2).mean())]
    assert MTLStep(model, tasks, "ew", "pcgrad").config()["gradient_mode"] == "vmap"


def test_representation_matrix_matches_autograd(setup):
    model, x, y = setup
    shared = list(model.shared_parameters())
    heads = [list(model.task_parameters(n)) for n in model.task_names]
    rep = model.encode(x)
    rep_d = rep.detach().requires_grad_(True)
    losses = _losses(model.decode(rep_d), x, y)
    out = GradientEngine("loop").compute(losses, rep, rep_d, shared, heads, "representation")
    assert out.matrix.shape == (3, rep.numel())
    z = model.encode(x)
    for t in range(3):
        (g,) = torch.autograd.grad(_losses(model.decode(z), x, y)[t], z)
        torch.testing.assert_close(out.matrix[t], g.reshape(-1), rtol=1e-5, atol=1e-7)
    # pushing the sum of the rows through the trunk equals the gradient of the loss sum
    upd = out.matrix.sum(0).view_as(rep)
    torch.autograd.backward(rep, upd, inputs=shared)
    got = flatten([p.grad for p in shared], shared)
    ref, _ = _reference(model, x, y)
    torch.testing.assert_close(got, ref.sum(0), rtol=1e-5, atol=1e-6)


def test_vmap_failure_falls_back_to_loop(setup, monkeypatch):
    import eegmtl.mtl.gradients as G

    model, x, y = setup

    def broken(*a, **k):
        raise RuntimeError("no batching rule for this op")

    monkeypatch.setattr(G, "_trunk_vmap", broken)
    shared = list(model.shared_parameters())
    heads = [list(model.task_parameters(n)) for n in model.task_names]
    rep = model.encode(x)
    rep_d = rep.detach().requires_grad_(True)
    losses = _losses(model.decode(rep_d), x, y)
    engine = GradientEngine("vmap")
    with pytest.warns(RuntimeWarning, match="sequential"):
        out = engine.compute(losses, rep, rep_d, shared, heads)
    assert engine.chosen == "loop"
    ref, _ = _reference(model, x, y)
    torch.testing.assert_close(out.matrix, ref, rtol=1e-5, atol=1e-6)


def test_unflatten_roundtrip_and_errors():
    ps = [nn.Parameter(torch.zeros(2, 3)), nn.Parameter(torch.zeros(4))]
    v = torch.arange(10.0)
    unflatten_to_grads(v, ps)
    assert torch.equal(flatten([p.grad for p in ps], ps), v)
    with pytest.raises(ValueError, match="entries"):
        unflatten_to_grads(torch.arange(11.0), ps)
    with pytest.raises(ValueError, match="mode"):
        GradientEngine("fast")
