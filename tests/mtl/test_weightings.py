"""Behavioural tests of the loss weightings (everything except gradient blending)."""

from __future__ import annotations

import io
import math

import pytest
import torch

from eegmtl.mtl.weightings import (
    WEIGHTINGS,
    DynamicWeightAverage,
    EqualWeighting,
    GeometricLossWeighting,
    GradNormWeighting,
    IMTLLWeighting,
    RandomLossWeighting,
    UncertaintyWeighting,
    Weighting,
    get_weighting,
)

SAMPLERS = ["normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli"]


# ----------------------------------------------------------------------------- registry / EW
def test_registry_names_and_factory() -> None:
    assert set(WEIGHTINGS) >= {"ew", "rlw", "uw", "dwa", "imtl_l", "gradnorm", "gls", "blending"}
    for name, cls in WEIGHTINGS.items():
        w = get_weighting(name, 3)
        assert isinstance(w, cls) and isinstance(w, Weighting) and w.n_tasks == 3
    assert isinstance(get_weighting("IMTL-L", 2), IMTLLWeighting)
    inst = EqualWeighting(2)
    assert get_weighting(inst, 2) is inst
    with pytest.raises(ValueError, match="unknown weighting"):
        get_weighting("nope", 2)
    with pytest.raises(ValueError, match="built for 2 tasks"):
        get_weighting(inst, 3)


def test_equal_weighting_is_a_sum() -> None:
    w = EqualWeighting(3).weights(torch.tensor([0.1, 5.0, 2.0]))
    assert torch.equal(w, torch.ones(3))


@pytest.mark.parametrize("name", ["ew", "rlw", "uw", "dwa", "imtl_l", "gls", "blending"])
def test_wrong_loss_count_and_nan_raise(name: str) -> None:
    w = get_weighting(name, 3)
    with pytest.raises(ValueError, match="3 tasks but got 2"):
        w.weights(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="non-finite"):
        w.weights(torch.tensor([1.0, float("nan"), 2.0]))
    with pytest.raises(ValueError, match="1-D"):
        w.weights(torch.ones(3, 1))


def test_gradnorm_wrong_inputs() -> None:
    w = GradNormWeighting(2)
    with pytest.raises(ValueError, match="gradients"):
        w.weights(torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="2 tasks"):
        w.weights(torch.tensor([1.0, 1.0]), torch.ones(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        w.weights(torch.tensor([1.0, 1.0]), torch.tensor([[1.0, float("inf")], [1.0, 1.0]]))


def test_gls_rejects_non_positive_losses() -> None:
    with pytest.raises(ValueError, match="strictly positive"):
        GeometricLossWeighting(2).weights(torch.tensor([1.0, 0.0]))


# ----------------------------------------------------------------------------- RLW
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_rlw_mean_is_one_over_t(sampler: str) -> None:
    t, n = 3, 3000
    w = RandomLossWeighting(t, sampler=sampler, seed=0)
    draws = torch.stack([w.weights(torch.ones(t)) for _ in range(n)])
    assert torch.allclose(draws.sum(1), torch.ones(n), atol=1e-5)
    assert torch.allclose(draws.mean(0), torch.full((t,), 1 / t), atol=0.03)
    assert (draws >= 0).all()


def test_rlw_sampler_supports() -> None:
    t = 4
    normal = torch.stack([RandomLossWeighting(t, seed=s).weights(torch.ones(t)) for s in range(50)])
    assert (normal > 0).all()
    uni = RandomLossWeighting(t, sampler="uniform", seed=1)
    u = torch.stack([uni.weights(torch.ones(t)) for _ in range(200)])
    # softmax of U(0,1)^T: every weight within [1/(1+(T-1)e), e/(e+T-1)]
    assert (u > 1 / (1 + (t - 1) * math.e) - 1e-6).all()
    assert (u < math.e / (math.e + t - 1) + 1e-6).all()
    bern = RandomLossWeighting(t, sampler="bernoulli", seed=2)
    for _ in range(200):
        b = bern.weights(torch.ones(t))
        k = int((b > 0).sum())
        assert k >= 1
        assert torch.allclose(b[b > 0], torch.full((k,), 1 / k))
    cb = RandomLossWeighting(t, sampler="constrained_bernoulli", seed=3)
    for _ in range(50):
        c = cb.weights(torch.ones(t))
        assert int((c == 1).sum()) == 1 and int((c == 0).sum()) == t - 1
    scaled = RandomLossWeighting(t, scale="n_tasks", seed=4).weights(torch.ones(t))
    assert scaled.sum().item() == pytest.approx(t)


def test_rlw_seed_reproducible_and_bad_options() -> None:
    a = RandomLossWeighting(3, seed=7)
    b = RandomLossWeighting(3, generator=torch.Generator().manual_seed(7))
    for _ in range(5):
        assert torch.equal(a.weights(torch.ones(3)), b.weights(torch.ones(3)))
    with pytest.raises(ValueError, match="sampler"):
        RandomLossWeighting(3, sampler="beta")
    with pytest.raises(ValueError, match="scale"):
        RandomLossWeighting(3, scale="mean")


# ----------------------------------------------------------------------------- UW / IMTL-L
def _fit(weighting: Weighting, losses: torch.Tensor, steps: int = 300, lr: float = 0.1) -> None:
    opt = torch.optim.SGD(weighting.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        weighting.loss(losses).backward()
        opt.step()


def test_uw_learns_log_variances() -> None:
    losses = torch.tensor([0.5, 2.0, 4.0])
    uw = UncertaintyWeighting(3)
    assert torch.equal(uw.weights(losses), torch.ones(3))
    _fit(uw, losses)
    assert torch.allclose(uw.log_vars.detach(), losses.log(), atol=1e-3)
    assert torch.allclose(uw.weights(losses), 1 / losses, atol=1e-3)


def test_uw_split_matches_joint_objective() -> None:
    theta = torch.tensor([0.3, -1.2], requires_grad=True)
    uw = UncertaintyWeighting(2, init=0.4)
    with torch.no_grad():
        uw.log_vars.copy_(torch.tensor([0.4, -0.7]))

    def task_losses() -> torch.Tensor:
        return torch.stack([(theta[0] - 1) ** 2 + 0.1, (theta[1] + 2) ** 2 + 0.2])

    losses = task_losses()
    total = (uw.weights(losses) * losses).sum() + uw.loss(losses)
    g_split = torch.autograd.grad(total, [theta, uw.log_vars])
    s = uw.log_vars
    losses = task_losses()
    joint = (torch.exp(-s) * losses + s).sum()
    g_joint = torch.autograd.grad(joint, [theta, s])
    for a, b in zip(g_split, g_joint, strict=True):
        assert torch.allclose(a, b)


def test_imtl_l_scales_losses_to_one() -> None:
    losses = torch.tensor([0.5, 2.0, 4.0])
    w = IMTLLWeighting(3)
    _fit(w, losses, steps=400, lr=0.05)
    assert torch.allclose(w.log_scales.detach(), -losses.log(), atol=1e-3)
    assert torch.allclose(w.weights(losses) * losses, torch.ones(3), atol=1e-3)


# ----------------------------------------------------------------------------- DWA
def test_dwa_on_hand_made_history() -> None:
    dwa = DynamicWeightAverage(2, temperature=2.0)
    x = torch.tensor([1.0, 1.0])
    assert torch.equal(dwa.weights(x), torch.ones(2))  # epoch 0
    dwa.after_epoch(0, torch.tensor([1.0, 2.0]))
    assert torch.equal(dwa.weights(x), torch.ones(2))  # epoch 1
    dwa.after_epoch(1, torch.tensor([0.5, 2.0]))
    # r = [0.5, 1.0]; w = 2 softmax(r / 2) = 2 [e^.25, e^.5] / (e^.25 + e^.5)
    expected = torch.tensor([0.875646, 1.124354])
    assert torch.allclose(dwa.weights(x), expected, atol=1e-5)
    dwa.after_epoch(2, torch.tensor([0.5, 1.0]))  # r = [1.0, 0.5]
    assert torch.allclose(dwa.weights(x), expected.flip(0), atol=1e-5)
    assert dwa.weights(x).sum().item() == pytest.approx(2.0)


# ----------------------------------------------------------------------------- GradNorm
def test_gradnorm_moves_weights_toward_balanced_norms() -> None:
    gn = GradNormWeighting(2, alpha=1.5, lr=0.01, optimizer="sgd")
    g = torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # task 0 has the larger gradient
    losses = torch.tensor([1.0, 1.0])
    first = gn.weights(losses, g)
    assert torch.equal(first, torch.ones(2))  # the step uses the current weights
    for _ in range(20):
        w = gn.weights(losses, g)
        assert w.sum().item() == pytest.approx(2.0, abs=1e-5)
    w = gn.current_weights
    assert w[0] < 0.9 and w[1] > 1.1
    assert w.sum().item() == pytest.approx(2.0, abs=1e-5)
    assert gn.initial_losses is not None and torch.equal(gn.initial_losses, losses.double())


def test_gradnorm_favours_the_slower_task() -> None:
    gn = GradNormWeighting(2, alpha=1.5, lr=0.01, optimizer="sgd")
    g = torch.eye(2)  # equal gradient norms
    gn.weights(torch.tensor([1.0, 1.0]), g)  # L(0)
    for _ in range(10):  # task 0 has trained less (higher loss ratio) -> more weight
        gn.weights(torch.tensor([0.9, 0.3]), g)
    w = gn.current_weights
    assert w[0] > 1.0 > w[1]
    assert w.sum().item() == pytest.approx(2.0, abs=1e-5)


def test_gradnorm_columns_restrict_the_norm() -> None:
    g = torch.tensor([[3.0, 1.0], [1.0, 1.0]])
    full = GradNormWeighting(2, lr=0.01, optimizer="sgd")
    last = GradNormWeighting(2, lr=0.01, optimizer="sgd", columns=slice(1, 2))
    for gn in (full, last):
        gn.weights(torch.ones(2), g)
        gn.weights(torch.ones(2), g)
    assert full.current_weights[0] < 1.0
    assert torch.allclose(last.current_weights, torch.ones(2))  # equal norms on column 1


# ----------------------------------------------------------------------------- GLS
def test_gls_gradient_equals_geometric_mean_gradient() -> None:
    torch.manual_seed(0)
    theta = torch.randn(5, requires_grad=True, dtype=torch.float64)
    a = torch.randn(3, 5, dtype=torch.float64)

    def task_losses() -> torch.Tensor:
        return (a @ theta) ** 2 + torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)

    losses = task_losses()
    gm = losses.prod() ** (1 / 3)
    (g_ref,) = torch.autograd.grad(gm, theta)
    losses = task_losses()
    w = GeometricLossWeighting(3).weights(losses)
    assert not w.requires_grad
    (g_w,) = torch.autograd.grad((w * losses).sum(), theta)
    assert torch.allclose(g_w, g_ref, atol=1e-12)


# ----------------------------------------------------------------------------- state dicts
def _drive(w: Weighting, step: int) -> torch.Tensor:
    """One synthetic step: weights, own-parameter update, hooks."""
    losses = torch.tensor([1.0 + 0.3 * math.sin(step), 2.0 / (1 + step), 0.5 + 0.01 * step])
    grads = torch.stack([torch.full((4,), 1.0 + step % 3), torch.arange(4.0), -torch.ones(4)])
    out = w.weights(losses, grads if w.needs_gradients else None)
    params = list(w.parameters())
    if params:
        for p in params:
            p.grad = None
        w.loss(losses).backward()
        with torch.no_grad():
            for p in params:
                p -= 0.05 * p.grad
    w.after_step(losses, losses * 1.1)
    if step % 3 == 2:
        w.after_epoch(step // 3, losses)
    return out


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("ew", {}),
        ("rlw", {"seed": 3}),
        ("rlw", {"sampler": "dirichlet", "seed": 3}),
        ("uw", {}),
        ("dwa", {}),
        ("imtl_l", {}),
        ("gradnorm", {}),
        ("gls", {}),
        ("blending", {"warmup_epochs": 1, "batch_size": 4, "val_batch_size": 2}),
        ("blending", {"warmup_epochs": 1, "batch_size": 4, "formulation": "supplement"}),
    ],
)
def test_state_dict_round_trip(name: str, kwargs: dict) -> None:
    a = get_weighting(name, 3, **kwargs)
    for s in range(9):
        _drive(a, s)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = get_weighting(name, 3, **{k: v for k, v in kwargs.items() if k != "seed"})
    b.load_state_dict(state)
    for s in range(9, 15):
        assert torch.equal(_drive(a, s), _drive(b, s)), f"{name} diverged after resume at {s}"


def test_fixed_weighting_constant_and_validated() -> None:
    from eegmtl.mtl.weightings import FixedWeighting

    w = get_weighting("fixed", 3, weights=[0.5, 0.1, 1.0])
    assert isinstance(w, FixedWeighting)
    for losses in ([1.0, 2.0, 3.0], [9.0, 0.1, 4.0]):
        torch.testing.assert_close(w.weights(torch.tensor(losses)), torch.tensor([0.5, 0.1, 1.0]))
    assert torch.equal(FixedWeighting(2).weights(torch.tensor([1.0, 2.0])), torch.ones(2))
    with pytest.raises(ValueError, match="3 tasks"):
        FixedWeighting(3, [1.0, 2.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        FixedWeighting(2, [1.0, -1.0])
