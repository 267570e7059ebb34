"""Flat-minima (F-MTL) step: rho = 0 equals the plain step, BN frozen, closed-form SAM."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from eegmtl.mtl.aggregators import AGGREGATORS, get_aggregator
from eegmtl.mtl.flat import FlatConfig, frozen_batchnorm, make_flat_config
from eegmtl.mtl.step import MTLStep
from eegmtl.mtl.tasks import Task

try:
    from ._tinynet import TinyNet
except ImportError:  # tests/ is not a package
    from _tinynet import TinyNet  # type: ignore[no-redef]


TASKS = [Task("cls", F.cross_entropy), Task("rec", F.mse_loss)]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, 16, generator=g)
    return x, {"cls": torch.randint(0, 2, (8,), generator=g), "rec": x}


def _model():
    torch.manual_seed(0)
    return TinyNet(with_reg=False)


def _agg(name):
    try:
        return get_aggregator(name)
    except TypeError:
        return get_aggregator(name, n_tasks=2)


@pytest.mark.parametrize("name", ["sum", "mean", "mgda", "pcgrad", "imtl_g"])
def test_rho_zero_equals_plain_step(batch, name):
    if name not in AGGREGATORS:
        pytest.skip(f"{name} not registered")
    x, y = batch
    m1, m2 = _model(), _model()
    o1 = torch.optim.SGD(m1.parameters(), lr=0.1)
    o2 = torch.optim.SGD(m2.parameters(), lr=0.1)
    MTLStep(m1, TASKS, "ew", _agg(name), o1, fast_path=False, gradient_mode="loop")(x, y)
    r = MTLStep(m2, TASKS, "ew", _agg(name), o2, flat={"rho": 0.0}, gradient_mode="loop")(x, y)
    assert r.diagnostics["path"] == "flat" and r.diagnostics["flat_norm"] == 0.0
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k


def test_perturbed_pass_leaves_batchnorm_untouched(batch):
    x, y = batch
    m1, m2 = _model(), _model()
    MTLStep(m1, TASKS, "ew", "mean", fast_path=False)(x, y)
    MTLStep(m2, TASKS, "ew", "mean", flat={"rho": 0.5})(x, y)
    bn1, bn2 = m1.trunk[2], m2.trunk[2]
    assert int(bn2.num_batches_tracked) == 1
    torch.testing.assert_close(bn1.running_mean, bn2.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn1.running_var, bn2.running_var, rtol=0, atol=0)
    # parameters are restored after each perturbation (only .grad differs)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    # ... and the flat step does produce a different update for rho > 0
    assert not torch.allclose(m1.trunk[0].weight.grad, m2.trunk[0].weight.grad)
    assert not torch.allclose(m1.cls.weight.grad, m2.cls.weight.grad)


def test_frozen_batchnorm_context():
    bn = nn.BatchNorm1d(3)
    before = copy.deepcopy(bn.state_dict())
    with frozen_batchnorm(bn):
        bn(torch.randn(5, 3))
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k


class Quadratic(nn.Module):
    """rep = θ (batch of 1); L_i = ½ (θ − a_i)ᵀ A_i (θ − a_i); no head parameters."""

    task_names = ("a", "b")

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))

    def encode(self, x):
        return self.theta.unsqueeze(0).expand(x.shape[0], -1)

    def decode(self, z):
        return {"a": z, "b": z}

    def shared_parameters(self):
        return [self.theta]

    def task_parameters(self, task):
        return []


A = [torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)),
     torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 4.0]], dtype=torch.float64)]
C = [torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
     torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)]


def _qloss(i):
    return lambda z, _: 0.5 * ((z[0] - C[i]) @ A[i] @ (z[0] - C[i]))


@pytest.mark.parametrize("adaptive", [False, True])
def test_closed_form_sam_gradient_on_a_quadratic(adaptive):
    model = Quadratic()
    tasks = [Task("a", _qloss(0)), Task("b", _qloss(1))]
    rho = 0.3
    step = MTLStep(model, tasks, "ew", "sum", flat={"rho": rho, "adaptive": adaptive})
    x = torch.zeros(1, 1, dtype=torch.float64)
    step(x, {"a": x, "b": x})
    th = model.theta.detach()
    expected = torch.zeros(3, dtype=torch.float64)
    for i in range(2):
        g = A[i] @ (th - C[i])
        if adaptive:
            eps = rho * th**2 * g / torch.linalg.vector_norm(th.abs() * g)
        else:
            eps = rho * g / torch.linalg.vector_norm(g)
        sam = A[i] @ (th + eps - C[i])
        expected += g + (sam - g)
    torch.testing.assert_close(model.theta.grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_flat_runs_around_every_aggregator(batch, name):
    x, y = batch
    model = _model()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = MTLStep(model, TASKS, "ew", _agg(name), opt, flat=0.05)(x, y)
    assert torch.isfinite(res.losses).all()
    assert not torch.equal(model.trunk[0].weight, before["trunk.0.weight"])


def test_flat_with_loss_weighting_scales_rows(batch):
    from eegmtl.mtl.weightings import Weighting

    class Fixed(Weighting):
        def weights(self, losses, gradients=None):
            return torch.tensor([3.0, 0.0])

    x, y = batch
    m1, m2 = _model(), _model()
    MTLStep(m1, TASKS, Fixed(2), "sum", flat={"rho": 0.1}, gradient_mode="loop")(x, y)
    MTLStep(m2, [TASKS[0], TASKS[1]], "ew", "sum", flat={"rho": 0.1}, gradient_mode="loop")(x, y)
    # with w = (3, 0) the shared update only holds task "cls" (3x), so it differs from EW
    assert not torch.allclose(m1.trunk[0].weight.grad, m2.trunk[0].weight.grad)
    # heads keep their own (unweighted) SAM gradients
    torch.testing.assert_close(m1.cls.weight.grad, m2.cls.weight.grad)


def test_make_flat_config():
    assert make_flat_config(None) is None and make_flat_config(False) is None
    assert make_flat_config(True) == FlatConfig()
    assert make_flat_config(0.2).rho == 0.2
    assert make_flat_config({"rho": 1.0, "adaptive": True}).adaptive
    with pytest.raises(ValueError, match="norm"):
        FlatConfig(norm="layer")
    with pytest.raises(TypeError):
        make_flat_config("big")


@pytest.mark.parametrize("aggregate", ["separate", "loss_weights"])
def test_flat_aggregate_modes_in_closed_form_with_aligned_mtl(aggregate):
    """``separate``: AGG(g^loss) + AGG(g^flat), each part rescaled by Aligned-MTL on its own;
    ``loss_weights``: the loss part's weights α combine the SAM rows, α @ g^SAM."""
    from eegmtl.mtl.aggregators import AlignedMTL

    model = Quadratic()
    tasks = [Task("a", _qloss(0)), Task("b", _qloss(1))]
    rho = 0.3
    step = MTLStep(model, tasks, "ew", "aligned_mtl",
                   flat={"rho": rho, "aggregate": aggregate})
    x = torch.zeros(1, 1, dtype=torch.float64)
    step(x, {"a": x, "b": x})
    th = model.theta.detach()
    g = torch.stack([A[i] @ (th - C[i]) for i in range(2)])
    sam = torch.stack([A[i] @ (th + rho * g[i] / torch.linalg.vector_norm(g[i]) - C[i])
                       for i in range(2)])
    loss_part = AlignedMTL()(g)
    if aggregate == "separate":
        expected = loss_part.vector + AlignedMTL()(sam - g).vector
    else:
        expected = loss_part.weights @ sam
    torch.testing.assert_close(model.theta.grad, expected, rtol=1e-8, atol=1e-10)
    other = (loss_part.weights @ sam if aggregate == "separate"
             else loss_part.vector + AlignedMTL()(sam - g).vector)
    assert not torch.allclose(model.theta.grad, other)  # the two modes differ here


def test_flat_loss_weights_equals_separate_for_a_linear_aggregator(batch):
    x, y = batch
    m1, m2 = _model(), _model()
    MTLStep(m1, TASKS, "ew", "mean", flat={"rho": 0.1}, gradient_mode="loop")(x, y)
    MTLStep(m2, TASKS, "ew", "mean", flat={"rho": 0.1, "aggregate": "loss_weights"},
            gradient_mode="loop")(x, y)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-5, atol=1e-7)


def test_flat_loss_weights_refuses_an_aggregator_whose_weights_are_not_coefficients(batch):
    x, y = batch
    step = MTLStep(_model(), TASKS, "ew", _agg("db_mtl"),
                   flat={"rho": 0.1, "aggregate": "loss_weights"}, gradient_mode="loop")
    with pytest.raises(ValueError, match="aggregate='separate'"):
        step(x, y)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_scale_equivariance_flag_matches_each_aggregator(name):
    """``scale_equivariant`` (which picks the flat step's default aggregation) says whether
    ``A(cG) = c A(G)``: checked on a random matrix for every stateless aggregator."""
    if name in ("moco", "modo", "excess_mtl"):  # stateful: the first call sets their state
        pytest.skip(f"{name} keeps state across calls")
    g = torch.randn(3, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(1)
    small = _agg(name)(g).vector
    torch.manual_seed(1)
    large = _agg(name)(10.0 * g).vector
    equivariant = torch.allclose(large, 10.0 * small, rtol=1e-4, atol=1e-8)
    assert equivariant == _agg(name).scale_equivariant, name


@pytest.mark.parametrize("name, default", [("aligned_mtl", "separate"), ("pcgrad", "separate"),
                                           ("nash_mtl", "loss_weights"),
                                           ("fairgrad", "loss_weights")])
def test_flat_default_aggregation_follows_the_aggregators_scaling(batch, name, default):
    """Unset, the flat parts are aggregated separately (the paper) unless the aggregator's
    update norm is fixed (Nash-MTL, FairGrad): then with the loss part's weights, exactly as
    an explicit ``aggregate="loss_weights"``; an explicit ``"separate"`` is kept, with a
    warning for those two."""
    import warnings

    x, y = batch
    m1, m2 = _model(), _model()
    step = MTLStep(m1, TASKS, "ew", _agg(name), flat={"rho": 0.1}, gradient_mode="loop")
    assert step._flat.aggregate == default
    step(x, y)
    MTLStep(m2, TASKS, "ew", _agg(name), flat={"rho": 0.1, "aggregate": default},
            gradient_mode="loop")(x, y)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1.grad, p2.grad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MTLStep(_model(), TASKS, "ew", _agg(name), flat={"rho": 0.1, "aggregate": "separate"})
    said = [str(w.message) for w in caught if "update norm does not scale" in str(w.message)]
    assert bool(said) == (default == "loss_weights")


def test_flat_separate_rescales_the_flat_part_of_a_fixed_norm_aggregator(batch):
    """Why Nash-MTL defaults to ``loss_weights``: with ``separate`` its flat part has the norm
    of its loss part (the aggregator's update norm does not depend on its input's scale)."""
    x, y = batch
    with pytest.warns(UserWarning, match="update norm does not scale"):
        step = MTLStep(_model(), TASKS, "ew", _agg("nash_mtl"),
                       flat={"rho": 0.01, "aggregate": "separate"}, gradient_mode="loop")
    res = step(x, y)
    ratio = float(res.diagnostics["flat_norm"] / res.diagnostics["loss_part_norm"])
    assert ratio == pytest.approx(1.0, rel=1e-3)
    res = MTLStep(_model(), TASKS, "ew", _agg("nash_mtl"), flat={"rho": 0.01},
                  gradient_mode="loop")(x, y)
    assert float(res.diagnostics["flat_norm"] / res.diagnostics["loss_part_norm"]) < 0.5


def test_flat_aggregate_option_is_recorded_only_when_set():
    assert "aggregate" not in FlatConfig().as_record()  # records keep their hashes
    assert "aggregate" not in repr(FlatConfig())
    cfg = FlatConfig(aggregate="loss_weights")
    assert cfg.as_record()["aggregate"] == "loss_weights"
    assert FlatConfig(**cfg.as_record()) == cfg
    assert FlatConfig(aggregate="separate").as_record()["aggregate"] == "separate"
    with pytest.raises(ValueError, match="aggregate must be one of"):
        FlatConfig(aggregate="joint")
