"""Property, golden-value and behaviour tests of eegmtl.mtl.aggregators (TorchJD style)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eegmtl.mtl.aggregators import (
    AGGREGATORS,
    IMTLG,
    MGDA,
    RGW,
    Aggregation,
    Aggregator,
    AlignedMTL,
    CAGrad,
    DualProj,
    GradDrop,
    GradVac,
    Mean,
    NashMTL,
    PCGrad,
    Sum,
    UPGrad,
    get_aggregator,
    sample_task_weights,
)
from eegmtl.mtl.aggregators.aligned_mtl import balance_transformation
from eegmtl.mtl.aggregators.nash_mtl import nash_weights

try:
    from ._agg_matrices import (
        conflicting,
        families,
        non_strongly_stationary,
        normal_with_rank,
        strongly_stationary,
    )
except ImportError:  # tests/ is not a package
    from _agg_matrices import (  # type: ignore[no-redef]
        conflicting,
        families,
        non_strongly_stationary,
        normal_with_rank,
        strongly_stationary,
    )

J_REF = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
FAMILIES = families()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Fresh instance per use (stateful and random ones get a seeded generator).
FACTORIES = {
    "mean": Mean,
    "sum": Sum,
    "mgda": MGDA,
    "mgda_l2": lambda: MGDA(normalization="l2"),
    "mgda_ub": lambda: get_aggregator("mgda_ub"),
    "pcgrad": lambda: PCGrad(generator=_gen()),
    "graddrop": lambda: GradDrop(generator=_gen()),
    "imtl_g": IMTLG,
    "gradvac": lambda: GradVac(generator=_gen()),
    "cagrad": CAGrad,
    "cagrad_c0.5_norescale": lambda: CAGrad(c=0.5, rescale=0),
    "nash_mtl": NashMTL,
    "nash_mtl_noclip": lambda: NashMTL(max_norm=0.0),
    "rgw": lambda: RGW(generator=_gen()),
    "aligned_mtl": AlignedMTL,
    "aligned_mtl_median": lambda: AlignedMTL(scale="median"),
    "aligned_mtl_rmse": lambda: AlignedMTL(scale="rmse"),
    "aligned_mtl_ub": lambda: get_aggregator("aligned_mtl_ub"),
    "upgrad": UPGrad,
    "dualproj": DualProj,
}
ALL = sorted(FACTORIES)
WEIGHTED = [n for n in ALL if n != "graddrop"]  # vector == weights @ G
PERMUTATION_INVARIANT = [
    "mean",
    "sum",
    "mgda",
    "mgda_l2",
    "imtl_g",
    "cagrad",
    "nash_mtl",
    "nash_mtl_noclip",
    "aligned_mtl",
    "aligned_mtl_median",
    "aligned_mtl_rmse",
    "upgrad",
    "dualproj",
]
NON_CONFLICTING = ["mgda", "mgda_l2", "upgrad", "dualproj"]
# A(c G) == c A(G) for c > 0 (random ones with the same seed)
HOMOGENEOUS = [
    "mean",
    "sum",
    "mgda",
    "pcgrad",
    "imtl_g",
    "gradvac",
    "cagrad",
    "rgw",
    "aligned_mtl",
    "aligned_mtl_median",
    "aligned_mtl_rmse",
    "upgrad",
    "dualproj",
    "graddrop",
]


def _tol(matrix: torch.Tensor, vector: torch.Tensor) -> float:
    """Absolute tolerance for comparisons of G-sized quantities."""
    return 1e-6 * float(matrix.norm()) * (1.0 + float(vector.norm())) + 1e-30


# --------------------------------------------------------------------------- registry / API
def test_registry_names_and_attributes() -> None:
    assert {
        "mean",
        "sum",
        "mgda",
        "mgda_ub",
        "pcgrad",
        "graddrop",
        "imtl_g",
        "gradvac",
        "cagrad",
        "nash_mtl",
        "rgw",
        "aligned_mtl",
        "aligned_mtl_ub",
        "upgrad",
        "dualproj",
    } <= set(AGGREGATORS)
    for key, cls in AGGREGATORS.items():
        assert key == key.lower() == cls.name
        assert cls.level in ("parameters", "representation")
        assert cls.__doc__ and len(cls.__doc__) > 200, f"{key}: docstring too short"
        assert cls.linear == (key in ("mean", "sum"))
    rep = {k for k, c in AGGREGATORS.items() if c.level == "representation"}
    assert rep == {"mgda_ub", "aligned_mtl_ub", "graddrop"}


def test_get_aggregator() -> None:
    assert isinstance(get_aggregator("Aligned-MTL"), AlignedMTL)
    agg = get_aggregator("cagrad", c=0.5)
    assert agg.c == 0.5 and get_aggregator(agg) is agg
    with pytest.raises(ValueError, match="unknown aggregator"):
        get_aggregator("nope")
    with pytest.raises(ValueError, match="keyword"):
        get_aggregator(agg, c=0.1)
    with pytest.raises(TypeError):
        get_aggregator(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        get_aggregator("mean", c=0.1)
    assert "c=0.5" in repr(agg)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (MGDA, {"epsilon": 0}),
        (MGDA, {"max_iters": 0}),
        (MGDA, {"normalization": "l1"}),
        (PCGrad, {"reduction": "max"}),
        (PCGrad, {"generator": 3}),
        (GradDrop, {"leak": [0.5, 2.0]}),
        (GradVac, {"beta": 1.5}),
        (CAGrad, {"c": -0.1}),
        (CAGrad, {"rescale": 3}),
        (NashMTL, {"max_norm": -1}),
        (NashMTL, {"update_weights_every": 0}),
        (NashMTL, {"optim_niter": 0}),
        (RGW, {"sampler": "gamma"}),
        (AlignedMTL, {"scale": "max"}),
        (AlignedMTL, {"reduction": "max"}),
        (UPGrad, {"reg_eps": -1.0}),
    ],
)
def test_invalid_hyper_parameters(cls: type[Aggregator], kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        cls(**kwargs)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ALL)
def test_bad_input_raises(name: str) -> None:
    agg = FACTORIES[name]()
    with pytest.raises(ValueError, match="NaN or Inf"):
        agg(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        agg(torch.tensor([[1.0, float("inf")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        agg(torch.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        agg(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="no rows"):
        agg(torch.ones(0, 3))
    with pytest.raises(ValueError, match="no columns"):
        agg(torch.ones(2, 0))
    with pytest.raises(TypeError):
        agg(np.ones((2, 3)))  # type: ignore[arg-type]


def test_stateful_task_count_mismatch() -> None:
    for agg in (NashMTL(), GradVac(generator=_gen())):
        agg(torch.randn(3, 4, generator=_gen()))
        with pytest.raises(ValueError, match="reset"):
            agg(torch.randn(2, 4, generator=_gen()))
        agg.reset()
        agg(torch.randn(2, 4, generator=_gen()))
    with pytest.raises(ValueError, match="configured for 3 tasks"):
        NashMTL(n_tasks=3)(torch.ones(2, 4))
    with pytest.raises(ValueError, match="rows"):
        GradDrop(leak=[0.0, 0.0, 0.0])(torch.ones(2, 4))


# --------------------------------------------------------------------------- golden values
GOLDEN = [  # mtl-reference.md §2.3 (TorchJD tests/unit/aggregation/test_values.py)
    ("mean", Mean, [1.0, 1.0, 1.0], [0.5, 0.5]),
    ("sum", Sum, [2.0, 2.0, 2.0], [1.0, 1.0]),
    ("mgda", MGDA, [0.0, 1.0, 1.0], [0.6, 0.4]),
    ("pcgrad", PCGrad, [0.5848, 3.8012, 3.8012], [2.2222, 1.5789]),
    ("gradvac", GradVac, [0.5848, 3.8012, 3.8012], [2.2222, 1.5789]),
    ("imtl_g", IMTLG, [0.0767, 1.0, 1.0], [0.5923, 0.4077]),
    (
        "aligned_mtl",
        lambda: AlignedMTL(reduction="mean"),
        [0.2133, 0.9673, 0.9673],
        [0.5591, 0.4083],
    ),
    ("upgrad", UPGrad, [0.2929, 1.9004, 1.9004], [1.1109, 0.7894]),
    ("dualproj", DualProj, [0.5563, 1.1109, 1.1109], None),
    ("cagrad", lambda: CAGrad(c=0.5, rescale=0), [0.1835, 1.2041, 1.2041], [0.7041, 0.5]),
    ("nash_mtl", NashMTL, [0.0542, 0.7061, 0.7061], None),
]


@pytest.mark.parametrize(
    ("name", "factory", "vector", "weights"), GOLDEN, ids=[g[0] for g in GOLDEN]
)
def test_golden_values(name, factory, vector, weights) -> None:
    out = factory()(J_REF)
    torch.testing.assert_close(out.vector, torch.tensor(vector), atol=1e-4, rtol=0)
    if weights is not None:
        torch.testing.assert_close(out.weights, torch.tensor(weights), atol=1e-4, rtol=0)


def test_golden_conventions() -> None:
    """Default scale conventions vs the golden (TorchJD) ones."""
    # Aligned-MTL default = official sum of aligned gradients = T x TorchJD's mean
    torch.testing.assert_close(
        AlignedMTL()(J_REF).vector, 2 * torch.tensor([0.2133, 0.9673, 0.9673]), atol=2e-4, rtol=0
    )
    # CAGrad default rescale=1 divides the golden (rescale=0) update by 1 + c^2
    torch.testing.assert_close(
        CAGrad(c=0.5)(J_REF).vector,
        torch.tensor([0.1835, 1.2041, 1.2041]) / 1.25,
        atol=1e-4,
        rtol=0,
    )
    torch.testing.assert_close(
        CAGrad(c=0.5, rescale=2)(J_REF).vector,
        torch.tensor([0.1835, 1.2041, 1.2041]) / 1.5,
        atol=1e-4,
        rtol=0,
    )
    # PCGrad mean reduction
    torch.testing.assert_close(
        PCGrad(reduction="mean")(J_REF).vector,
        torch.tensor([0.5848, 3.8012, 3.8012]) / 2,
        atol=1e-4,
        rtol=0,
    )


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("name", ALL)
def test_structure_and_weights(name: str) -> None:
    """Every family (shapes, ranks, zero, strongly stationary, scales): shape, dtype,
    finiteness, zero in -> zero out, and ``vector == weights @ G`` where claimed."""
    for fam, matrix in FAMILIES:
        for dtype in (torch.float32, torch.float64):
            m = matrix.to(dtype)
            out = FACTORIES[name]()(m)
            assert isinstance(out, Aggregation), fam
            assert out.vector.shape == (m.shape[1],), fam
            assert out.weights.shape == (m.shape[0],), fam
            assert out.vector.dtype == dtype and out.weights.dtype == dtype, fam
            assert torch.isfinite(out.vector).all(), fam
            assert torch.isfinite(out.weights).all(), fam
            if fam.startswith("zero"):
                assert (out.vector == 0).all(), fam
        if name in WEIGHTED:
            out = FACTORIES[name]()(matrix)
            torch.testing.assert_close(
                out.weights @ matrix,
                out.vector,
                atol=_tol(matrix, out.weights),
                rtol=1e-7,
                msg=lambda text, fam=fam: f"{fam}: {text}",
            )


@pytest.mark.parametrize("name", PERMUTATION_INVARIANT)
@pytest.mark.parametrize("seed", [0, 1])
def test_permutation_invariance(name: str, seed: int) -> None:
    for t, p in [(3, 5), (5, 50), (4, 3)]:
        m = conflicting(t, p, seed=seed)
        perm = torch.randperm(t, generator=_gen(seed))
        a = FACTORIES[name]()(m)
        b = FACTORIES[name]()(m[perm])
        tol = 1e-5 * float(a.vector.norm()) + 1e-12
        if name in ("mgda", "mgda_l2"):  # Frank-Wolfe stops at gamma < 1e-3: approximate
            tol = 2e-2 * float(a.vector.norm()) + 1e-12
        torch.testing.assert_close(a.vector, b.vector, atol=tol, rtol=0)
        if name not in ("mgda", "mgda_l2"):
            torch.testing.assert_close(a.weights[perm], b.weights, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", NON_CONFLICTING)
@pytest.mark.parametrize("chunk", range(4))
def test_non_conflicting(name: str, chunk: int) -> None:
    for fam, matrix in FAMILIES[chunk::4]:
        _check_non_conflicting(name, fam, matrix)


def _check_non_conflicting(name: str, fam: str, matrix: torch.Tensor) -> None:
    out = FACTORIES[name]()(matrix)
    products = matrix @ out.vector
    gram_scale = float(torch.diagonal(matrix @ matrix.T).sum())
    # UPGrad/DualProj: regularised by reg_eps * trace; MGDA: Frank-Wolfe tolerance
    tol = 2e-4 * gram_scale * float(out.weights.abs().max()) + 1e-10 * gram_scale + 1e-300
    if name.startswith("mgda"):
        # Frank-Wolfe stops when its step gamma < 1e-3: duality gap <= gamma * (2 max ||row||)^2
        # (of the rows it solved on: the raw rows, or the unit rows for "l2")
        norms = matrix.norm(dim=1)
        tol = 4e-3 * float(norms.max()) * (1.0 if name == "mgda_l2" else float(norms.max()))
        tol += 1e-300
    assert (products >= -tol).all(), (fam, products, tol)


def test_mgda_min_norm_against_reference_solver() -> None:
    from scipy.optimize import minimize

    for seed, t in [(5, 4), (6, 3), (7, 5)]:
        m = conflicting(t, 30, seed=seed)
        g = (m @ m.T).numpy()
        scale = np.trace(g)
        g = g / scale
        ref = (
            scale
            * minimize(
                lambda w, g=g: w @ g @ w,
                np.full(t, 1 / t),
                jac=lambda w, g=g: 2 * g @ w,
                method="SLSQP",
                bounds=[(0, 1)] * t,
                constraints=({"type": "eq", "fun": lambda w: w.sum() - 1},),
                options={"ftol": 1e-15, "maxiter": 500},
            ).fun
        )
        out = MGDA()(m)
        sq = float(out.vector @ out.vector)
        assert ref <= sq <= ref * (1 + 2e-2)  # default eps=1e-3: within 2 % of the optimum
        tight = MGDA(epsilon=1e-8, max_iters=20_000)(m)
        assert float(tight.vector @ tight.vector) <= ref * (1 + 5e-4)  # FW: slow tail
        assert (m @ out.vector >= 0).all()  # min-norm direction: no task conflicts
        assert out.weights.sum().item() == pytest.approx(1.0)
        assert (out.weights >= 0).all()


def test_mgda_l2_is_scale_invariant() -> None:
    m = conflicting(3, 5, seed=11)
    a = MGDA(normalization="l2")(m)
    for c in (1e-7, 3.0, 1e6):
        torch.testing.assert_close(MGDA(normalization="l2")(c * m).vector, a.vector)


@pytest.mark.parametrize("name", HOMOGENEOUS)
@pytest.mark.parametrize("c", [1e-7, 3.0, 1e6])
def test_positive_homogeneity(name: str, c: float) -> None:
    m = conflicting(3, 5, seed=11)
    a = FACTORIES[name]()(m)
    b = FACTORIES[name]()(m * c)
    torch.testing.assert_close(
        b.vector, c * a.vector, rtol=1e-5, atol=1e-9 * c * float(a.vector.norm())
    )


def test_nash_scale_invariant_update() -> None:
    m = conflicting(3, 5, seed=2)
    a = NashMTL(max_norm=0)(m)
    b = NashMTL(max_norm=0)(m * 1e4)
    torch.testing.assert_close(a.vector, b.vector, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["upgrad", "mean", "sum"])
def test_linear_under_row_scaling(name: str) -> None:
    """A(diag(a c1 + b c2) J) = a A(diag(c1) J) + b A(diag(c2) J) (TorchJD property)."""
    m = conflicting(3, 7, seed=4)
    c1 = torch.tensor([1.0, 2.0, 0.5], dtype=m.dtype)
    c2 = torch.tensor([0.3, 1.0, 4.0], dtype=m.dtype)
    # UPGrad normalises the Gramian by its trace before regularising: disable the regulariser
    agg = UPGrad(reg_eps=0.0) if name == "upgrad" else FACTORIES[name]()
    lhs = agg((2.0 * c1 + 3.0 * c2)[:, None] * m).vector
    rhs = 2.0 * agg(c1[:, None] * m).vector + 3.0 * agg(c2[:, None] * m).vector
    torch.testing.assert_close(lhs, rhs, rtol=1e-6, atol=1e-8 * float(rhs.norm()))


@pytest.mark.parametrize("name", ["mgda", "upgrad", "dualproj", "aligned_mtl", "imtl_g", "cagrad"])
def test_not_zero_when_not_strongly_stationary(name: str) -> None:
    for t, p in [(2, 5), (3, 5), (5, 50)]:
        m = non_strongly_stationary(t, p, seed=t)
        assert float(FACTORIES[name]()(m).vector.norm()) > 1e-3


@pytest.mark.parametrize("name", ["mgda", "upgrad", "dualproj"])
def test_strongly_stationary_gives_small_update(name: str) -> None:
    m = strongly_stationary(3, 5, seed=1)
    out = FACTORIES[name]()(m)
    # MGDA: exactly 0 up to FW tolerance; dual-cone methods: only the reg_eps part survives
    assert float(out.vector.norm()) < 0.05 * float(m.norm())


@pytest.mark.parametrize("name", ALL)
def test_no_graph_is_built(name: str) -> None:
    m = conflicting(3, 5, seed=0).requires_grad_(True)
    out = FACTORIES[name]()(m)
    assert not out.vector.requires_grad and not out.weights.requires_grad


# --------------------------------------------------------------------------- per-method behaviour
def test_single_task_cases() -> None:
    row = torch.tensor([[3.0, -4.0]])
    for name in [
        "mean",
        "sum",
        "mgda",
        "pcgrad",
        "imtl_g",
        "gradvac",
        "upgrad",
        "dualproj",
        "rgw",
        "graddrop",
    ]:
        torch.testing.assert_close(FACTORIES[name]()(row).vector, row[0])
    # Aligned-MTL: B = 1 for a single task (s = sigma_min = ||g||)
    torch.testing.assert_close(AlignedMTL()(row).vector, row[0])
    # CAGrad with one task: (1 + c) g / (1 + c^2)
    torch.testing.assert_close(CAGrad(c=0.4)(row).vector, row[0] * 1.4 / 1.16)
    # Nash: alpha = 1/||g||, update g/||g|| (norm 1, not clipped)
    torch.testing.assert_close(NashMTL()(row).vector, row[0] / 5.0)


def test_mgda_normalizations() -> None:
    m = conflicting(3, 6, seed=8)
    norms = m.norm(dim=1, keepdim=True)
    a = MGDA(normalization="l2")(m)
    b = MGDA()(m / norms)
    torch.testing.assert_close(a.vector, b.vector)
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=m.dtype)
    c = MGDA(normalization="loss")(m, losses=losses)
    d = MGDA()(m / losses[:, None])
    torch.testing.assert_close(c.vector, d.vector)
    e = MGDA(normalization="loss+")(m, losses=losses)
    f = MGDA()(m / (losses[:, None] * norms))
    torch.testing.assert_close(e.vector, f.vector)
    assert MGDA(normalization="loss").needs_losses and not MGDA().needs_losses
    with pytest.raises(ValueError, match="needs the task losses"):
        MGDA(normalization="loss")(m)
    with pytest.raises(ValueError, match="positive"):
        MGDA(normalization="loss")(m, losses=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="3 rows"):
        MGDA(normalization="loss")(m, losses=torch.tensor([1.0, 1.0]))


def test_pcgrad_projects_conflicts_away() -> None:
    m = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    out = PCGrad()(m)
    # g1^PC = g1 - (g1.g2/|g2|^2) g2 = [.5, .5]; g2^PC = g2 - (g2.g1) g1 = [0, 1]
    torch.testing.assert_close(out.vector, torch.tensor([0.5, 1.5]))
    no_conflict = torch.tensor([[1.0, 0.2], [0.5, 1.0], [0.1, 0.3]])
    torch.testing.assert_close(PCGrad()(no_conflict).vector, no_conflict.sum(0))


def test_imtl_g_equal_projections_and_dependent_rows() -> None:
    m = conflicting(3, 8, seed=9)
    out = IMTLG()(m)
    unit = m / m.norm(dim=1, keepdim=True)
    proj = unit @ out.vector
    torch.testing.assert_close(proj, proj.mean().expand(3), rtol=1e-6, atol=1e-9)
    assert out.weights.sum().item() == pytest.approx(1.0)
    dep = torch.cat([m[:2], 2.0 * m[:1]])  # third row = 2 x first
    out2 = IMTLG()(dep)
    assert torch.isfinite(out2.vector).all() and float(out2.vector.norm()) > 0


def test_aligned_mtl_orthonormalises() -> None:
    m = conflicting(3, 10, seed=1)
    g = (m @ m.T).numpy()
    b = torch.from_numpy(balance_transformation(g, "min"))
    aligned = b @ m  # rows: aligned gradients
    gram = aligned @ aligned.T
    smin = float(torch.linalg.svdvals(m).min())
    torch.testing.assert_close(gram, smin**2 * torch.eye(3, dtype=m.dtype), rtol=1e-6, atol=1e-8)


def test_aligned_mtl_rank_deficient() -> None:
    m = normal_with_rank(4, 6, 2, seed=3)  # rank 2 < T = 4
    g = (m @ m.T).numpy()
    b = torch.from_numpy(balance_transformation(g, "min"))
    aligned = b @ m
    lam = np.linalg.eigvalsh(g)
    s2 = float(np.sort(lam)[-2])  # smallest kept eigenvalue
    # aligned Gram = s^2 * projector on the 2-D row space of the Gram matrix
    gram = (aligned @ aligned.T).numpy()
    np.testing.assert_allclose(np.linalg.eigvalsh(gram)[-2:], [s2, s2], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.eigvalsh(gram)[:2], [0, 0], atol=1e-8 * s2)
    for scale in ("min", "median", "rmse"):
        out = AlignedMTL(scale=scale)(m.float())
        assert torch.isfinite(out.vector).all() and float(out.vector.norm()) > 0
    # pref / reduction
    torch.testing.assert_close(
        AlignedMTL(pref=[0.25] * 4)(m).vector, AlignedMTL(reduction="mean")(m).vector
    )
    with pytest.raises(ValueError, match="one entry per task"):
        AlignedMTL(pref=[1.0, 1.0])(m)


def test_upgrad_matches_explicit_projection() -> None:
    """Each projected row lies in the dual cone and is the closest such point (KKT check)."""
    from eegmtl.mtl.aggregators.upgrad import dual_cone_weights

    m = conflicting(3, 6, seed=6)
    g = (m @ m.T).numpy()
    w = dual_cone_weights(np.eye(3), g, norm_eps=1e-4, reg_eps=0.0)
    g_n = g / np.trace(g)
    for i in range(3):
        mu = g_n @ w[i]
        slack = w[i] - np.eye(3)[i]
        assert (mu >= -1e-9).all() and (slack >= -1e-9).all()
        assert abs(mu @ slack) < 1e-8  # complementary slackness


def test_cagrad_c0_is_mean_and_worst_case_improves() -> None:
    m = conflicting(3, 6, seed=10)
    torch.testing.assert_close(CAGrad(c=0.0)(m).vector, m.mean(0))
    d = CAGrad(c=0.4, rescale=0)(m).vector
    g0 = m.mean(0)
    assert float((d - g0).norm()) <= 0.4 * float(g0.norm()) * (1 + 1e-6)
    assert float((m @ d).min()) >= float((m @ g0).min()) - 1e-9  # worst task not worse


def test_nash_solves_bargaining_equation() -> None:
    for t in (2, 3, 5):
        m = (
            non_strongly_stationary(t, 20, seed=t)
            * torch.logspace(0, 1, t, dtype=torch.float64)[:, None]
        )
        out = NashMTL(max_norm=0.0)(m)
        g = m @ m.T
        torch.testing.assert_close(
            out.weights * (g @ out.weights), torch.ones(t, dtype=m.dtype), rtol=1e-7, atol=1e-7
        )
    # max_norm clips the update
    big = 100.0 * conflicting(3, 5, seed=1)
    out = NashMTL(max_norm=1.0)(big)
    assert float(out.vector.norm()) == pytest.approx(1.0) or float(out.vector.norm()) < 1.0
    # zero row -> zero weight, other rows still solved
    m = conflicting(3, 5, seed=2)
    m[1] = 0
    out = NashMTL(max_norm=0.0)(m)
    assert out.weights[1] == 0 and (out.weights[[0, 2]] > 0).all()


def test_nash_newton_converges_fast() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = int(rng.integers(2, 8))
        j = rng.normal(size=(t, 30)) * rng.lognormal(sigma=1.5, size=(t, 1))
        g = j @ j.T
        g = g / np.linalg.norm(g)
        a, it = nash_weights(g, max_iter=50)
        assert it <= 20
        np.testing.assert_allclose(a * (g @ a), 1.0, rtol=1e-8)


def test_nash_update_every_and_state_round_trip() -> None:
    ms = [conflicting(3, 5, seed=s) for s in range(6)]
    agg = NashMTL(update_weights_every=2, max_norm=0.0)
    w0 = agg(ms[0]).weights
    w1 = agg(ms[1]).weights  # re-used
    torch.testing.assert_close(w0, w1)
    assert not torch.allclose(agg(ms[2]).weights, w1)
    state = agg.state_dict()
    clone = NashMTL(update_weights_every=2, max_norm=0.0)
    clone.load_state_dict(state)
    for m in ms[3:]:
        torch.testing.assert_close(agg(m).vector, clone(m).vector)
    agg.reset()
    assert agg.get_extra_state()["alpha"] is None and agg.get_extra_state()["step"] == 0


def test_gradvac_state_round_trip_and_targets() -> None:
    ms = [conflicting(4, 6, seed=s) for s in range(6)]
    agg = GradVac(beta=0.5, generator=_gen(3))
    first = agg(ms[0])
    torch.testing.assert_close(first.vector, PCGrad(generator=_gen(3))(ms[0]).vector)
    agg(ms[1])
    state = agg.state_dict()
    phi = state["_extra_state"]["phi"]
    assert phi.shape == (4, 4) and (phi.diagonal() == 0).all() and phi.abs().max() > 0
    clone = GradVac(beta=0.5, generator=_gen(99))
    clone.load_state_dict(state)  # restores the targets and the generator state
    for m in ms[2:]:
        torch.testing.assert_close(agg(m).vector, clone(m).vector)
    agg.reset()
    assert agg.get_extra_state()["phi"] is None
    # beta = 0 keeps zero targets: always PCGrad
    torch.testing.assert_close(
        GradVac(beta=0.0, generator=_gen(1))(ms[3]).vector, PCGrad(generator=_gen(1))(ms[3]).vector
    )


def test_graddrop_behaviour() -> None:
    m = torch.tensor([[1.0, -2.0, 3.0, 0.0], [2.0, 1.0, -3.0, 0.0]])
    out = GradDrop(generator=_gen(0))(m)
    # column 0: same sign -> always kept entirely; column 3: zeros
    assert out.vector[0] == 3.0 and out.vector[3] == 0.0
    # mixed columns: either the positive or the negative part survives
    assert out.vector[1].item() in (1.0, -2.0) and out.vector[2].item() in (3.0, -3.0)
    torch.testing.assert_close(GradDrop(leak=[1.0, 1.0])(m).vector, m.sum(0))
    # purity 1 / 0 selects the sign deterministically
    pos = torch.tensor([[1.0, 2.0], [0.0, 3.0]])
    torch.testing.assert_close(GradDrop()(pos).vector, pos.sum(0))
    # the kept fraction per task is reported as weights
    assert ((out.weights >= 0) & (out.weights <= 1)).all()
    # sign purity: over many draws a column with purity p keeps the positive part w.p. p
    col = torch.tensor([[3.0], [-1.0]])  # p = 0.5 * (1 + 2/4) = 0.75
    gen = _gen(5)
    kept_pos = sum(GradDrop(generator=gen)(col).vector.item() == 3.0 for _ in range(2000))
    assert abs(kept_pos / 2000 - 0.75) < 0.04


@pytest.mark.parametrize("name", ["pcgrad", "graddrop", "gradvac", "rgw"])
def test_random_ones_are_deterministic_with_a_seed(name: str) -> None:
    m = conflicting(5, 50, seed=1)
    cls = type(FACTORIES[name]())
    a = cls(generator=_gen(7))(m)
    b = cls(generator=_gen(7))(m)
    torch.testing.assert_close(a.vector, b.vector, rtol=0, atol=0)
    outs = {tuple(cls(generator=_gen(s))(m).vector.round(decimals=6).tolist()) for s in range(8)}
    assert len(outs) > 1
    # generator state is part of state_dict
    agg = cls(generator=_gen(7))
    agg(m)
    state = agg.state_dict()
    nxt = agg(m).vector
    agg2 = cls(generator=_gen(0))
    agg2.load_state_dict(state)
    torch.testing.assert_close(agg2(m).vector, nxt, rtol=0, atol=0)


@pytest.mark.parametrize(
    "sampler", ["normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli"]
)
def test_rgw_samplers(sampler: str) -> None:
    gen = _gen(0)
    draws = torch.stack([sample_task_weights(3, sampler, gen) for _ in range(3000)])
    torch.testing.assert_close(draws.sum(1), torch.ones(3000))
    assert (draws >= 0).all()
    torch.testing.assert_close(draws.mean(0), torch.full((3,), 1 / 3), atol=0.03, rtol=0)
    if sampler == "constrained_bernoulli":
        assert ((draws == 1).sum(1) == 1).all()
    if sampler == "bernoulli":
        values = {round(v, 5) for v in torch.unique(draws).tolist()}
        assert values <= {0.0, round(1 / 3, 5), 0.5, 1.0}
    m = conflicting(3, 5, seed=0)
    out = RGW(sampler=sampler, generator=_gen(1))(m)
    torch.testing.assert_close(out.weights @ m, out.vector)


def test_float32_large_p_fast_path() -> None:
    """A (3, 50k) float32 matrix goes through every aggregator quickly and stays float32."""
    m = torch.randn(3, 50_000, generator=_gen(0))
    m[1] -= 0.8 * m[0]
    for name in ALL:
        out = FACTORIES[name]()(m)
        assert out.vector.dtype == torch.float32 and torch.isfinite(out.vector).all()


# --------------------------------------------------------------------------- cross-check TorchJD
def _tjd():
    return pytest.importorskip("torchjd.aggregation")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_torchjd(seed: int) -> None:
    tjd = _tjd()
    for t, p in [(2, 4), (3, 7), (5, 20)]:
        m = conflicting(t, p, seed=seed)
        pairs = [
            (Mean(), tjd.Mean()),
            (Sum(), tjd.Sum()),
            (IMTLG(), tjd.IMTLG()),
            (AlignedMTL(reduction="mean"), tjd.AlignedMTL()),
            (AlignedMTL(scale="rmse", reduction="mean"), tjd.AlignedMTL(scale_mode="rmse")),
            (MGDA(), tjd.MGDA()),
        ]
        if t == 2:
            pairs.append((PCGrad(), tjd.PCGrad()))
        for ours, theirs in pairs:
            expected = theirs(m)
            tol = 1e-6 * float(expected.norm()) + 1e-9
            torch.testing.assert_close(ours(m).vector, expected, atol=tol, rtol=1e-5)


def test_matches_torchjd_cagrad() -> None:
    tjd = _tjd()
    pytest.importorskip("cvxpy")
    pytest.importorskip("clarabel")
    for seed, (t, p) in enumerate([(2, 4), (3, 7), (5, 20)]):
        m = conflicting(t, p, seed=seed)
        expected = tjd.CAGrad(c=0.4)(m)
        ours = CAGrad(c=0.4, rescale=0)(m).vector
        torch.testing.assert_close(ours, expected, atol=1e-4 * float(expected.norm()), rtol=0)


def test_matches_torchjd_upgrad_dualproj() -> None:
    tjd = _tjd()
    pytest.importorskip("quadprog")
    pytest.importorskip("qpsolvers")
    for seed, (t, p) in enumerate([(2, 4), (3, 7), (5, 20)]):
        m = conflicting(t, p, seed=seed)
        for ours, theirs in [(UPGrad(), tjd.UPGrad()), (DualProj(), tjd.DualProj())]:
            expected = theirs(m)
            torch.testing.assert_close(
                ours(m).vector, expected, atol=1e-6 * float(expected.norm()), rtol=1e-5
            )


def test_families_cover_claimed_cases() -> None:
    """Sanity of the test matrices themselves (so the properties above can fail)."""
    s = strongly_stationary(3, 5, seed=0)
    assert float(torch.linalg.matrix_rank(s)) == 2
    assert math.isclose(float(torch.linalg.matrix_rank(normal_with_rank(5, 50, 3))), 3)
