"""MTLStep: fast path vs explicit path, every registered method, hooks and errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eegmtl.mtl.aggregators import AGGREGATORS, get_aggregator
from eegmtl.mtl.flat import FlatConfig
from eegmtl.mtl.step import MTLStep, resolve_method
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.weightings import WEIGHTINGS, Weighting

try:
    from ._tinynet import TinyNet
except ImportError:  # tests/ is not a package
    from _tinynet import TinyNet  # type: ignore[no-redef]


TASKS = [
    Task("cls", F.cross_entropy),
    Task("rec", F.mse_loss),
    Task("reg", lambda z, _: z.pow(2).mean()),
]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 16, generator=g)
    return x, {"cls": torch.randint(0, 2, (8,), generator=g), "rec": x, "reg": x}


def _model(seed=0):
    torch.manual_seed(seed)
    return TinyNet()


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _make_aggregator(name):
    try:
        return get_aggregator(name)
    except TypeError:
        return get_aggregator(name, n_tasks=3)


def test_fast_path_equals_explicit_path_for_sum(batch):
    x, y = batch
    m1, m2 = _model(), _model()
    fast = MTLStep(m1, TASKS, "ew", "sum")
    slow = MTLStep(m2, TASKS, "ew", "sum", fast_path=False, gradient_mode="loop")
    assert fast.uses_fast_path and not slow.uses_fast_path
    r1, r2 = fast(x, y), slow(x, y)
    assert r1.diagnostics["path"] == "fast" and r2.diagnostics["path"] == "parameters"
    torch.testing.assert_close(r1.losses, r2.losses)
    g1, g2 = _grads(m1), _grads(m2)
    assert g1.keys() == g2.keys()
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=1e-5, atol=1e-6)


def test_representation_level_mean_equals_fast_mean(batch):
    x, y = batch
    m1, m2 = _model(), _model()
    MTLStep(m1, TASKS, "ew", "mean", weight_heads=True)(x, y)
    MTLStep(m2, TASKS, "ew", "mean", grad_level="representation", fast_path=False,
            weight_heads=True)(x, y)
    g1, g2 = _grads(m1), _grads(m2)
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=1e-5, atol=1e-6)


class _Scaled(Weighting):
    name = "scaled"

    def weights(self, losses, gradients=None):
        return torch.tensor([2.0, 0.5, 1.0])


def test_heads_unweighted_by_default_and_weighted_on_request(batch):
    x, y = batch
    m0, m1, m2 = _model(), _model(), _model()
    MTLStep(m0, TASKS, "ew", "sum", fast_path=False)(x, y)
    MTLStep(m1, TASKS, _Scaled(3), "sum", fast_path=False)(x, y)
    MTLStep(m2, TASKS, _Scaled(3), "sum", fast_path=False, weight_heads=True)(x, y)
    torch.testing.assert_close(m1.cls.weight.grad, m0.cls.weight.grad)
    torch.testing.assert_close(m2.cls.weight.grad, 2.0 * m0.cls.weight.grad)
    torch.testing.assert_close(m2.rec.weight.grad, 0.5 * m0.rec.weight.grad)
    # the shared update is weighted either way
    torch.testing.assert_close(m1.trunk[0].weight.grad, m2.trunk[0].weight.grad)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_every_aggregator_runs_and_changes_params(batch, name):
    x, y = batch
    model = _model()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = MTLStep(model, TASKS, "ew", _make_aggregator(name), opt)
    res = step(x, y)
    assert res.losses.shape == (3,) and torch.isfinite(res.losses).all()
    assert model.constrained == 1
    changed = [k for k, v in model.state_dict().items()
               if k.startswith("trunk.0") and not torch.equal(v, before[k])]
    assert changed, f"{name} left the shared parameters unchanged"
    for p in model.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_weighting_runs(batch, name):
    x, y = batch
    model = _model()
    from eegmtl.mtl.weightings import get_weighting

    w = get_weighting(name, 3)
    opt = torch.optim.SGD(list(model.parameters()) + list(w.parameters()), lr=0.1)
    step = MTLStep(model, TASKS, w, "sum", opt)
    for _ in range(3):
        res = step(x, y)
        w.after_step(res.losses, res.losses)
        assert res.weights.shape == (3,) and torch.isfinite(res.weights).all()
    w.after_epoch(0, res.losses, res.losses)
    assert step.uses_fast_path == (not w.needs_gradients)


class _Learnable(Weighting):
    name = "learnable"

    def __init__(self, n):
        super().__init__(n)
        self.s = nn.Parameter(torch.zeros(n))

    def weights(self, losses, gradients=None):
        return torch.exp(-self.s.detach())

    def loss(self, losses):
        return (torch.exp(-self.s) * losses + self.s).sum()

    def parameters(self):
        return [self.s]


def test_weighting_parameters_get_gradients(batch):
    x, y = batch
    model = _model()
    w = _Learnable(3)
    with pytest.raises(ValueError, match="not in the optimizer"):
        MTLStep(model, TASKS, w, "sum", torch.optim.SGD(model.parameters(), lr=0.1))
    opt = torch.optim.SGD(list(model.parameters()) + [w.s], lr=0.1)
    res = MTLStep(model, TASKS, w, "sum", opt)(x, y)
    # d/ds (e^{-s} L + s) = 1 - e^{-s} L at s = 0 -> s moves by -0.1 * (1 - L)
    torch.testing.assert_close(w.s.detach(), -0.1 * (1 - res.losses), rtol=1e-5, atol=1e-6)


class _GradAware(Weighting):
    name = "gradaware"
    needs_gradients = True
    seen = None

    def weights(self, losses, gradients=None):
        _GradAware.seen = gradients
        return 1.0 / gradients.norm(dim=1).clamp_min(1e-8)


def test_needs_gradients_weighting_gets_the_unweighted_matrix(batch):
    x, y = batch
    model = _model()
    step = MTLStep(model, TASKS, _GradAware(3), "sum")
    assert not step.uses_fast_path
    res = step(x, y)
    p = sum(q.numel() for q in model.shared_parameters())
    assert _GradAware.seen.shape == (3, p)
    torch.testing.assert_close(res.weights, 1.0 / _GradAware.seen.norm(dim=1))


def test_diagnostics(batch):
    x, y = batch
    res = MTLStep(_model(), TASKS, "ew", "sum", fast_path=False, diagnostics=True)(x, y)
    assert res.diagnostics["grad_norms"].shape == (3,)
    assert -1.0 <= res.diagnostics["min_cosine"] <= 1.0


def test_errors(batch):
    x, y = batch
    model = _model()
    with pytest.raises(ValueError, match="empty task list"):
        MTLStep(model, [], "ew", "sum")
    with pytest.raises(ValueError, match="do not match"):
        MTLStep(model, TASKS[:2], "ew", "sum")
    with pytest.raises(ValueError, match="3"):
        MTLStep(model, TASKS, _Scaled(2), "sum")
    with pytest.raises(ValueError, match="grad_level"):
        MTLStep(model, TASKS, grad_level="layers")
    with pytest.raises(TypeError, match="MultiTaskModel"):
        MTLStep(nn.Linear(2, 2), TASKS)
    bad = dict(y, rec=torch.full_like(x, float("nan")))
    with pytest.raises(FloatingPointError, match="rec"):
        MTLStep(model, TASKS)(x, bad)
    with pytest.raises(KeyError, match="cls"):
        MTLStep(model, TASKS)(x, {"rec": x, "reg": x})
    with pytest.raises(ValueError, match="rho"):
        FlatConfig(rho=-1.0)


def test_resolve_method():
    assert resolve_method("ew") == {"weighting": "ew", "aggregator": "sum", "flat": None}
    assert resolve_method("rlw")["weighting"] == "rlw"
    r = resolve_method("f-mean")
    assert r["aggregator"] == "mean" and isinstance(r["flat"], FlatConfig)
    assert resolve_method("F-EW")["flat"] is not None
    with pytest.raises(ValueError, match="unknown MTL method"):
        resolve_method("nope")


@pytest.mark.parametrize("kw", [
    {"aggregator": "sum"},
    {"aggregator": "pcgrad"},
    {"aggregator": "mgda_ub"},
    {"aggregator": "pcgrad", "flat": {"rho": 0.1}},
    {"aggregator": "pcgrad", "flat": {"rho": 0.1, "mode": "batched"}},
])
def test_bf16_autocast_close_to_float32(batch, kw):
    """bf16 autocast (CPU here) keeps float32 parameters/gradients and stays near float32."""
    if kw["aggregator"] not in AGGREGATORS:
        pytest.skip("not registered")
    grads = []
    for autocast in (None, "bf16"):
        model = _model()
        step = MTLStep(model, TASKS, "ew", kw["aggregator"], None, autocast=autocast,
                       flat=kw.get("flat"))
        res = step(*batch)
        assert res.losses.dtype == torch.float32
        assert step.config()["autocast"] == autocast
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    assert grads[1].dtype == torch.float32
    cos = F.cosine_similarity(grads[0], grads[1], dim=0)
    assert cos > 0.99, float(cos)
    assert not torch.equal(grads[0], grads[1])  # bf16 really ran
    with pytest.raises(ValueError, match="autocast"):
        MTLStep(_model(), TASKS, autocast="fp16")


def test_public_names_still_importable_from_step():
    from eegmtl.mtl import losses, methods
    from eegmtl.mtl.step import COMBINED_METHODS, compute_losses
    from eegmtl.mtl.step import resolve_method as from_step

    assert compute_losses is losses.compute_losses and from_step is methods.resolve_method
    assert COMBINED_METHODS is methods.COMBINED_METHODS
