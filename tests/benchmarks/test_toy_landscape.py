"""Two-task landscape: analytic gradients vs autograd, optimum / Pareto set, optimiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.benchmarks.toy import (
    BATCHED_WEIGHTS,
    INITS,
    distance_to_curve,
    global_optimum,
    pareto_set,
    run_trajectory,
    toy_jacobian,
    toy_losses,
    toy_losses_np,
)


def autograd_jacobian(x: np.ndarray) -> np.ndarray:
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    f = toy_losses(xt)
    rows = [torch.autograd.grad(f[..., i].sum(), xt, retain_graph=True)[0] for i in range(2)]
    return torch.stack(rows, dim=-2).numpy()


def test_reference_values() -> None:
    # by hand at (0, 0): c1 = c2 = 0 -> f = 0; at (7, -8): c2 = tanh(4), q1 = -20, q2 = -0.4
    np.testing.assert_allclose(toy_losses_np(np.array([0.0, 0.0])), [0.0, 0.0])
    c2 = np.tanh(4.0)
    np.testing.assert_allclose(toy_losses_np(np.array([7.0, -8.0])), [-20 * c2, -0.4 * c2])
    # x2 = 3: only the log part, f1 = tanh(1.5) * (log|0.5(-x1-7) + tanh 3| + 6)
    x = np.array([1.0, 3.0])
    want = np.tanh(1.5) * (np.log(abs(0.5 * (-8) + np.tanh(3.0))) + 6)
    np.testing.assert_allclose(toy_losses_np(x)[0], want)
    # torch and numpy objectives agree
    pts = np.random.default_rng(0).uniform(-10, 10, (100, 2))
    both = toy_losses(torch.tensor(pts)).numpy()
    np.testing.assert_allclose(both, toy_losses_np(pts), atol=1e-12)


def test_mirror_symmetry() -> None:
    pts = np.random.default_rng(1).uniform(-10, 10, (200, 2))
    mirrored = pts * np.array([-1.0, 1.0])
    np.testing.assert_allclose(toy_losses_np(pts)[:, 0], toy_losses_np(mirrored)[:, 1], atol=1e-9)


def test_analytic_gradient_matches_autograd() -> None:
    rng = np.random.default_rng(2)
    pts = np.concatenate([
        rng.uniform(-11, 11, (3000, 2)),
        np.array(INITS),
        # on the kinks: x2 = 0 (clamps of c1, c2) and on the valleys of l1 / l2
        [[3.0, 0.0], [-7.0 + 2 * np.tanh(1.0), 1.0], [7.0 - 2 * np.tanh(2.0), 2.0]],
    ])
    np.testing.assert_allclose(toy_jacobian(pts), autograd_jacobian(pts), rtol=1e-9, atol=1e-9)


def test_optimum_and_pareto_set() -> None:
    opt = global_optimum(0.5)
    np.testing.assert_allclose(opt, [0.0, -8.3552], atol=1e-3)  # CAGrad's plotted star
    # stationary: gradient of f1 + f2 vanishes there; and no better point nearby
    np.testing.assert_allclose(toy_jacobian(opt).sum(0), 0.0, atol=1e-6)
    around = opt + np.random.default_rng(3).normal(scale=0.05, size=(200, 2))
    assert (toy_losses_np(around).sum(-1) >= toy_losses_np(opt).sum() - 1e-12).all()
    front = pareto_set(501)
    assert front[0, 0] == -7 and front[-1, 0] == 7 and (front[:, 1] < -8).all()
    # Pareto-stationary: the two gradients are anti-parallel (inner: x1 in (-7, 7))
    j = toy_jacobian(front[1:-1])
    norms = np.linalg.norm(j, axis=-1)
    cos = (j[:, 0] * j[:, 1]).sum(-1) / norms[:, 0] / norms[:, 1]
    np.testing.assert_allclose(cos, -1.0, atol=1e-6)
    # the minimiser of s f1 + (1-s) f2 lies on the set, at x1 = 14 s - 7
    for s in (0.1, 0.3, 0.7):
        o = global_optimum(s)
        assert abs(o[0] - (14 * s - 7)) < 1e-12 and distance_to_curve(o, front) < 1e-3
    assert distance_to_curve(np.array([0.0, 0.0]), front) > 8


@pytest.mark.parametrize("name", sorted(set(BATCHED_WEIGHTS) - {"rgw", "rlw"}))
def test_batched_weights_match_registry(name: str) -> None:
    from eegmtl.mtl.aggregators import AGGREGATORS, get_aggregator
    from eegmtl.mtl.weightings import WEIGHTINGS, get_weighting

    rng = np.random.default_rng(4)
    jac = rng.normal(size=(300, 2, 2))
    if name != "nash_mtl":  # the Nash bargaining solution does not exist for cos = -1
        jac[:20, 1] = -2.5 * jac[:20, 0]  # exactly conflicting pairs
    jac[20:30, 1] = 0.0  # one task without gradient
    gram = jac @ np.swapaxes(jac, 1, 2)
    got = BATCHED_WEIGHTS[name](gram, rng=rng)
    if name in AGGREGATORS:
        want = np.stack([get_aggregator(name)(torch.from_numpy(j)).weights.numpy() for j in jac])
    elif name in WEIGHTINGS:
        w = get_weighting(name, 2)
        want = np.stack([w.weights(torch.zeros(2)).double().numpy() for _ in jac])
    else:
        pytest.skip(f"{name} not in the registries yet")
    vec_got = np.einsum("bt,btp->bp", got, jac)
    vec_want = np.einsum("bt,btp->bp", want, jac)
    np.testing.assert_allclose(vec_got, vec_want, atol=2e-6 * (1 + np.abs(vec_want).max()))


@pytest.mark.parametrize("name", ["mgda", "imtl_g", "aligned_mtl", "nash_mtl"])
def test_batched_trajectory_matches_registry(name: str) -> None:
    kw = dict(n_iter=150, record_every=50)
    a = run_trajectory(name, backend="registry", **kw)
    b = run_trajectory(name, backend="batched", **kw)
    assert a.config["backend"] == "registry" and b.config["backend"] == "batched"
    assert a.path.shape == (4, 5, 2)
    # Adam turns round-off in a (by symmetry) zero gradient coordinate into steps of up to lr
    # (start (0, 0), x1), so agreement is to ~1e-4 there and to ~1e-9 elsewhere
    np.testing.assert_allclose(a.final, b.final, atol=1e-3)
    np.testing.assert_allclose(np.delete(a.final, 1, 0), np.delete(b.final, 1, 0), atol=1e-6)


def test_ew_reaches_optimum_from_the_bottom_and_adam_semantics() -> None:
    # from points of the lower basin, Adam on f1 + f2 converges to the global optimum
    tr = run_trajectory("ew", [(-1.0, -7.0), (1.5, -9.5)], n_iter=3000, lr=2e-3)
    assert np.linalg.norm(tr.final - global_optimum(0.5), axis=1).max() < 1e-3
    # one Adam step from a point moves each coordinate by lr (bias-corrected first step)
    one = run_trajectory("ew", (1.0, 2.0), n_iter=1, lr=0.01)
    g = toy_jacobian(np.array([1.0, 2.0])).sum(0) * 0.5
    np.testing.assert_allclose(one.final[0], [1.0, 2.0] - 0.01 * np.sign(g), atol=1e-8)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scale"):
        run_trajectory("ew", scale=1.0, n_iter=1)
    with pytest.raises(ValueError, match="shape"):
        run_trajectory("ew", np.zeros((2, 3)), n_iter=1)
    with pytest.raises(ValueError, match="unknown MTL method"):
        run_trajectory("nope", n_iter=1)
    with pytest.raises(ValueError, match="batched"):
        run_trajectory("ew", n_iter=1, backend="batched", method_kwargs={"x": 1})
