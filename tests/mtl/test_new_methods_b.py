"""MoCo, SDMGrad, MoDo and ConFIG: TorchJD agreement, golden values, properties, state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.mtl.aggregators import (
    AGGREGATORS,
    Aggregation,
    ConFIG,
    MoCo,
    MoDo,
    SDMGrad,
    get_aggregator,
)
from eegmtl.mtl.aggregators.modo import project_to_simplex
from eegmtl.mtl.step import resolve_method
from tests.mtl._agg_matrices import conflicting, families, non_strongly_stationary

NEW = {"moco": MoCo, "sdmgrad": SDMGrad, "modo": MoDo, "config": ConFIG}
FAMILIES = families()


def _tjd():
    return pytest.importorskip("torchjd.aggregation")


def _simplex_bisect(v: np.ndarray) -> np.ndarray:
    """Reference projection onto the simplex by bisection on the threshold (independent of the
    sort-based one under test)."""
    lo, hi = v.min() - 1.0, v.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.maximum(v - mid, 0).sum() > 1.0:
            lo = mid
        else:
            hi = mid
    return np.maximum(v - 0.5 * (lo + hi), 0)


# --------------------------------------------------------------------------- registry / API
def test_registered_and_resolvable() -> None:
    for name, cls in NEW.items():
        assert AGGREGATORS[name] is cls and isinstance(get_aggregator(name), cls)
        assert cls.level == "parameters" and not cls.linear
        assert resolve_method(name)["aggregator"] == name
        assert resolve_method(f"f-{name}")["flat"] is not None


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (MoCo, {"beta": 0.0}),
        (MoCo, {"beta": 1.5}),
        (MoCo, {"gamma": 0.0}),
        (MoCo, {"rho": -1.0}),
        (MoCo, {"normalize": "loss"}),
        (SDMGrad, {"lambda_": -0.1}),
        (SDMGrad, {"lr": 0.0}),
        (SDMGrad, {"momentum": 1.0}),
        (SDMGrad, {"n_iter": 0}),
        (MoDo, {"gamma": 0.0}),
        (MoDo, {"rho": -0.1}),
    ],
)
def test_invalid_hyper_parameters(cls, kwargs) -> None:
    with pytest.raises(ValueError):
        cls(**kwargs)


def test_pref_must_match_task_count() -> None:
    m = conflicting(3, 5)
    for agg in (ConFIG(pref=[1.0, 1.0]), SDMGrad(pref=[0.5, 0.5])):
        with pytest.raises(ValueError, match="one entry per task"):
            agg(m)


@pytest.mark.parametrize("name", sorted(NEW))
def test_structure(name: str) -> None:
    """Shape, dtype, finiteness, zero in -> zero out on every family; the weights reproduce the
    update (on G, or on the tracked gradients for MoCo after one call with beta = 1)."""
    for fam, matrix in FAMILIES:
        for dtype in (torch.float32, torch.float64):
            m = matrix.to(dtype)
            out = NEW[name]()(m)
            assert isinstance(out, Aggregation), fam
            assert out.vector.shape == (m.shape[1],) and out.weights.shape == (m.shape[0],)
            assert out.vector.dtype == dtype and out.weights.dtype == dtype, fam
            assert torch.isfinite(out.vector).all() and torch.isfinite(out.weights).all(), fam
            if fam.startswith("zero"):
                assert (out.vector == 0).all(), fam
        agg = MoCo(beta=1.0) if name == "moco" else NEW[name]()
        out = agg(matrix)
        tol = 1e-6 * float(matrix.norm()) * (1 + float(out.weights.norm())) + 1e-30
        torch.testing.assert_close(out.weights @ matrix, out.vector, atol=tol, rtol=1e-7)


@pytest.mark.parametrize("name", sorted(NEW))
def test_no_graph_and_positive_homogeneity(name: str) -> None:
    m = conflicting(3, 5, seed=1).requires_grad_(True)
    out = NEW[name]()(m)
    assert not out.vector.requires_grad and not out.weights.requires_grad
    if name in ("config",):
        m = m.detach()
        torch.testing.assert_close(NEW[name]()(3.0 * m).vector, 3.0 * NEW[name]()(m).vector)


# --------------------------------------------------------------------------- projection
def test_project_to_simplex() -> None:
    rng = np.random.default_rng(0)
    for t in (1, 2, 3, 7):
        for scale in (0.01, 1.0, 100.0):
            v = rng.normal(size=t) * scale
            p = project_to_simplex(v)
            assert p.min() >= 0 and abs(p.sum() - 1) < 1e-12
            np.testing.assert_allclose(p, _simplex_bisect(v), atol=1e-9)
    np.testing.assert_allclose(project_to_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])


# --------------------------------------------------------------------------- TorchJD agreement
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_config_matches_torchjd(seed: int) -> None:
    tjd = _tjd()
    for t, p in [(2, 4), (3, 7), (5, 20)]:
        m = conflicting(t, p, seed=seed)
        pref = torch.from_numpy(np.random.default_rng(seed).uniform(0.5, 2.0, size=t))
        for ours, theirs in ((ConFIG(), tjd.ConFIG()), (ConFIG(pref), tjd.ConFIG(pref))):
            expected = theirs(m)
            torch.testing.assert_close(
                ours(m).vector, expected, atol=1e-9 * float(expected.norm()), rtol=1e-8
            )


def test_config_torchjd_golden_value() -> None:
    # TorchJD tests/unit/aggregation/test_values.py: J = [[-4, 1, 1], [6, 1, 1]]
    j = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    torch.testing.assert_close(
        ConFIG()(j).vector, torch.tensor([0.1588, 2.0706, 2.0706]), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_sdmgrad_and_modo_match_torchjd_over_steps(seed: int) -> None:
    """Single-batch form == TorchJD's weighting applied to J J^T, over a sequence of calls
    (the state -- warm-started weights -- must evolve identically)."""
    tjd = _tjd()
    rng = np.random.default_rng(seed)
    pref = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    pairs = [
        (SDMGrad(), tjd.SDMGradWeighting()),
        (
            SDMGrad(lambda_=0.0, lr=0.5, momentum=0.0, n_iter=5),
            tjd.SDMGradWeighting(lambda_=0.0, lr=0.5, momentum=0.0, n_iter=5),
        ),
        (
            SDMGrad(lambda_=0.6, lr=0.3, pref=pref),
            tjd.SDMGradWeighting(lr=0.3, lambda_=0.6, pref_vector=pref),
        ),
        (MoDo(), tjd.MoDoWeighting()),
        (MoDo(gamma=0.02, rho=0.0), tjd.MoDoWeighting(gamma=0.02, rho=0.0)),
    ]
    for ours, theirs in pairs:
        for _ in range(4):
            m = torch.from_numpy(rng.normal(size=(3, 11)) * rng.uniform(0.3, 3.0, size=(3, 1)))
            out = ours(m)
            w = theirs(m @ m.T)
            torch.testing.assert_close(out.weights, w, atol=1e-9, rtol=1e-7)
            torch.testing.assert_close(out.vector, w @ m, atol=1e-9, rtol=1e-7)


# --------------------------------------------------------------------------- golden values
def test_moco_hand_golden() -> None:
    """J = diag(1, 2), beta = 1 (Y = J), gamma = 0.1, rho = 0, no decay:
    lambda = Pi(0.5 - 0.1 * 0.5, 0.5 - 0.1 * 2) = Pi(0.45, 0.30) = (0.575, 0.425),
    d = (0.575, 0.85)."""
    j = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    out = MoCo(beta=1.0, beta_sigma=0.0, gamma=0.1, gamma_sigma=0.0)(j)
    torch.testing.assert_close(out.weights, torch.tensor([0.575, 0.425], dtype=torch.float64))
    torch.testing.assert_close(out.vector, torch.tensor([0.575, 0.85], dtype=torch.float64))


def test_modo_hand_golden() -> None:
    """J = diag(1, 2), gamma = rho = 0.1: G lambda + rho lambda = (0.55, 2.05);
    Pi(0.445, 0.295) = (0.575, 0.425); d = (0.575, 0.85)."""
    j = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    out = MoDo()(j)
    torch.testing.assert_close(out.weights, torch.tensor([0.575, 0.425], dtype=torch.float64))
    torch.testing.assert_close(out.vector, torch.tensor([0.575, 0.85], dtype=torch.float64))


def _moco_reference(mats, beta, bs, gamma, gs, rho, normalize):
    """MoCo Algorithm 1 written out with numpy loops (y_0 = 0, lambda_0 = 1/T)."""
    t = mats[0].shape[0]
    y, lam, outs = np.zeros_like(mats[0]), np.full(t, 1.0 / t), []
    for k, g in enumerate(mats, start=1):
        if normalize:
            g = g / np.linalg.norm(g, axis=1, keepdims=True)
        y = (1 - beta / k**bs) * y + (beta / k**bs) * g
        grad = np.array([sum((y[i] @ y[j]) * lam[j] for j in range(t)) for i in range(t)])
        lam = _simplex_bisect(lam - gamma / k**gs * (grad + rho * lam))
        outs.append((lam.copy(), lam @ y))
    return outs


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"beta": 0.2, "beta_sigma": 0.0, "gamma": 0.05, "gamma_sigma": 0.0, "rho": 0.1},
        {"normalize": "l2", "gamma": 0.5},
    ],
)
def test_moco_matches_numpy_reference(kwargs: dict) -> None:
    rng = np.random.default_rng(3)
    mats = [rng.normal(size=(3, 6)) * np.array([[0.5], [1.0], [2.0]]) for _ in range(5)]
    p = {"beta": 0.5, "beta_sigma": 0.5, "gamma": 0.1, "gamma_sigma": 0.5, "rho": 0.0}
    p.update({k: v for k, v in kwargs.items() if k != "normalize"})
    ref = _moco_reference(
        mats,
        p["beta"],
        p["beta_sigma"],
        p["gamma"],
        p["gamma_sigma"],
        p["rho"],
        kwargs.get("normalize") == "l2",
    )
    agg = MoCo(**kwargs)
    for m, (lam, vec) in zip(mats, ref):
        out = agg(torch.from_numpy(m))
        np.testing.assert_allclose(out.weights.numpy(), lam, atol=1e-9)
        np.testing.assert_allclose(out.vector.numpy(), vec, atol=1e-9)


def test_sdmgrad_numpy_reference() -> None:
    """Eq. 6-8 written out: projected SGD with momentum on the scaled Gramian."""
    rng = np.random.default_rng(5)
    j = rng.normal(size=(3, 8))
    g = j @ j.T
    a = g / (np.mean(np.sqrt(np.diag(g))) ** 2 + 1e-8)
    w, tilde, lam, v = np.full(3, 1 / 3), np.full(3, 1 / 3), 0.3, np.zeros(3)
    for i in range(20):
        v = a @ (w + lam * tilde) + (0.5 * v if i else 0)
        w = _simplex_bisect(w - 0.7 * v)
    expected = (w + lam * tilde) / (1 + lam)
    out = SDMGrad(lr=0.7)(torch.from_numpy(j))
    np.testing.assert_allclose(out.weights.numpy(), expected, atol=1e-9)


# --------------------------------------------------------------------------- ConFIG properties
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("t", "p"), [(2, 5), (3, 5), (5, 50)])
def test_config_conflict_free_equal_angles(seed: int, t: int, p: int) -> None:
    m = conflicting(t, p, seed=seed) if seed % 2 else non_strongly_stationary(t, p, seed)
    d = ConFIG()(m).vector
    dots = m @ d
    assert (dots > 0).all()
    cos = dots / (m.norm(dim=1) * d.norm())
    torch.testing.assert_close(cos, cos.mean().expand_as(cos), atol=1e-10, rtol=0)


def test_config_unit_vector_invariance_and_length() -> None:
    m = conflicting(3, 7, seed=2)
    c = torch.tensor([1e-3, 5.0, 20.0], dtype=torch.float64)
    d1, d2 = ConFIG()(m).vector, ConFIG()(c[:, None] * m).vector
    torch.testing.assert_close(d1 / d1.norm(), d2 / d2.norm(), atol=1e-10, rtol=0)
    # length = sum of the projections of the task gradients on the direction
    unit = d2 / d2.norm()
    torch.testing.assert_close(d2.norm(), ((c[:, None] * m) @ unit).sum())


def test_config_single_task_and_zero_row() -> None:
    g = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(ConFIG()(g).vector, g[0])
    m = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    out = ConFIG()(m)
    assert out.weights[1] == 0 and (m[[0, 2]] @ out.vector > 0).all()


# --------------------------------------------------------------------------- state
@pytest.mark.parametrize("name", ["moco", "sdmgrad", "modo"])
def test_state_round_trip_reset_and_task_count(name: str) -> None:
    rng = np.random.default_rng(1)
    mats = [torch.from_numpy(rng.normal(size=(3, 6))) for _ in range(4)]
    a = NEW[name]()
    for m in mats[:2]:
        a(m)
    b = NEW[name]()
    b.load_state_dict(a.state_dict())
    for m in mats[2:]:
        torch.testing.assert_close(a(m).vector, b(m).vector)
    fresh = NEW[name]()
    first = fresh(mats[0]).vector
    a.reset()
    torch.testing.assert_close(a(mats[0]).vector, first)
    with pytest.raises(ValueError, match="reset"):
        a(torch.randn(2, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="configured for 2 tasks"):
        NEW[name](n_tasks=2)(mats[0])


@pytest.mark.parametrize("name", ["moco", "sdmgrad", "modo"])
def test_state_survives_torch_save(name: str, tmp_path) -> None:
    """The state lives in torch's ``state_dict`` (``_extra_state``): a file written by
    ``torch.save`` and read back with ``weights_only=True`` restores identical later outputs,
    and ``reset()`` empties it again."""
    rng = np.random.default_rng(2)
    mats = [torch.from_numpy(rng.normal(size=(3, 7))) for _ in range(6)]
    # one small inner step, so that SDMGrad's warm start shows in its output
    make = (lambda: SDMGrad(lr=0.1, n_iter=1)) if name == "sdmgrad" else NEW[name]
    a = make()
    for m in mats[:3]:
        a(m)
    state = a.state_dict()
    assert set(state) == {"_extra_state"}
    torch.save(state, tmp_path / "agg.pt")
    b = make()
    b.load_state_dict(torch.load(tmp_path / "agg.pt", weights_only=True))
    # the restored state matters: a fresh aggregator answers differently
    assert not torch.allclose(make()(mats[3]).vector, a(mats[3]).vector)
    b(mats[3])
    for m in mats[4:]:
        out_a, out_b = a(m), b(m)
        assert torch.equal(out_a.vector, out_b.vector) and torch.equal(out_a.weights, out_b.weights)
    a.reset()
    assert all(v in (None, 0) for v in a.get_extra_state().values())


def test_moco_tracking_averages_noise() -> None:
    """With constant-rate tracking, Y converges to the mean gradient under zero-mean noise, so
    the weights approach the noiseless MGDA-step weights (the bias correction of the paper)."""
    rng = np.random.default_rng(0)
    mean = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    agg = MoCo(beta=0.05, beta_sigma=0.0)
    for _ in range(2000):
        agg(torch.from_numpy(mean + rng.normal(scale=1.0, size=mean.shape)))
    y = agg.get_extra_state()["y"].numpy()
    np.testing.assert_allclose(y, mean, atol=0.35)
    lam = agg.get_extra_state()["lambda"].numpy()
    np.testing.assert_allclose(lam, [0.5, 0.5], atol=0.1)
