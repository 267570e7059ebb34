"""The CAGrad / Nash-MTL / Aligned-MTL two-task landscape: objective, Jacobian, Pareto set.

The objective and its conventions are written out in :mod:`eegmtl.benchmarks.toy` (Liu et al.,
CAGrad, NeurIPS 2021, ``toy.py``; Senushkin et al., Aligned-MTL, CVPR 2023, §6.1). This module
holds the functions of ``x`` only: :func:`toy_losses` (torch, autograd-able),
:func:`toy_losses_np` and the analytic :func:`toy_jacobian` (numpy, torch's sub-gradient
conventions at the kinks), the Pareto set, the minimiser of the scaled sum and the distance of
points to a curve; :mod:`eegmtl.benchmarks.toy` runs the optimisers on it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "INITS",
    "LOWER",
    "distance_to_curve",
    "global_optimum",
    "pareto_set",
    "toy_jacobian",
    "toy_losses",
    "toy_losses_np",
]

LOWER = 5e-6
#: The five starting points of Nash-MTL and Aligned-MTL.
INITS: tuple[tuple[float, float], ...] = (
    (-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)
)


def toy_losses(x: Tensor) -> Tensor:
    """Unscaled objectives ``(f1, f2)`` of points ``x`` of shape (..., 2); returns (..., 2)."""
    x1, x2 = x[..., 0], x[..., 1]
    l1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOWER).log() + 6
    l2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOWER).log() + 6
    c1 = torch.clamp(torch.tanh(x2 * 0.5), 0)
    q1 = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    q2 = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = torch.clamp(torch.tanh(-x2 * 0.5), 0)
    return torch.stack([l1 * c1 + q1 * c2, l2 * c1 + q2 * c2], dim=-1)


def _parts(x: np.ndarray) -> dict[str, np.ndarray]:
    x1, x2 = x[..., 0], x[..., 1]
    th = np.tanh(x2)
    u1 = -0.5 * x1 - 3.5 + th  # 0.5(-x1-7) - tanh(-x2)
    u2 = -0.5 * x1 + 3.5 - th  # 0.5(-x1+3) + tanh(-x2) + 2
    a1, a2 = np.abs(u1), np.abs(u2)
    th2 = np.tanh(0.5 * x2)
    return {
        "x1": x1, "x2": x2, "th": th, "u1": u1, "u2": u2, "a1": a1, "a2": a2, "th2": th2,
        "l1": np.log(np.maximum(a1, LOWER)) + 6, "l2": np.log(np.maximum(a2, LOWER)) + 6,
        "c1": np.maximum(th2, 0.0), "c2": np.maximum(-th2, 0.0),
        "q1": ((x1 - 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20,
        "q2": ((x1 + 7) ** 2 + 0.1 * (x2 + 8) ** 2) / 10 - 20,
    }


def toy_losses_np(x: np.ndarray) -> np.ndarray:
    """Numpy version of :func:`toy_losses` (float64)."""
    p = _parts(np.asarray(x, dtype=np.float64))
    f1 = p["l1"] * p["c1"] + p["q1"] * p["c2"]
    f2 = p["l2"] * p["c1"] + p["q2"] * p["c2"]
    return np.stack([f1, f2], -1)


def toy_jacobian(x: np.ndarray) -> np.ndarray:
    """Analytic Jacobian of ``(f1, f2)``: shape (..., 2 tasks, 2 coordinates), float64.

    Row ``i`` is :math:`\\nabla f_i(x)`. Sub-gradients at kinks follow torch autograd
    (see the module docstring).
    """
    p = _parts(np.asarray(x, dtype=np.float64))
    sech2 = 1.0 - p["th"] ** 2
    # d l_i: sign(u)/|u| * du, masked where the clamp at LOWER is active (torch: pass if >=)
    g1 = np.where(p["a1"] >= LOWER, np.sign(p["u1"]) / np.maximum(p["a1"], LOWER), 0.0)
    g2 = np.where(p["a2"] >= LOWER, np.sign(p["u2"]) / np.maximum(p["a2"], LOWER), 0.0)
    dl1 = (g1 * -0.5, g1 * sech2)
    dl2 = (g2 * -0.5, g2 * -sech2)
    dth2 = 0.5 * (1.0 - p["th2"] ** 2)
    dc1 = np.where(p["th2"] >= 0, dth2, 0.0)
    dc2 = np.where(-p["th2"] >= 0, -dth2, 0.0)
    dq1 = ((p["x1"] - 7) / 5, 0.02 * (p["x2"] + 8))
    dq2 = ((p["x1"] + 7) / 5, 0.02 * (p["x2"] + 8))
    c1, c2 = p["c1"], p["c2"]
    j11 = dl1[0] * c1 + dq1[0] * c2
    j12 = dl1[1] * c1 + p["l1"] * dc1 + dq1[1] * c2 + p["q1"] * dc2
    j21 = dl2[0] * c1 + dq2[0] * c2
    j22 = dl2[1] * c1 + p["l2"] * dc1 + dq2[1] * c2 + p["q2"] * dc2
    return np.stack([np.stack([j11, j12], -1), np.stack([j21, j22], -1)], -2)


# ------------------------------------------------------------------------ Pareto set / optimum
def _front_x2(x1: np.ndarray, lam: np.ndarray, iters: int = 80) -> np.ndarray:
    """argmin over x2 in [-20, 0] of c2(x2) * (lam q1 + (1-lam) q2), vectorised golden section."""
    def h(x2: np.ndarray) -> np.ndarray:
        pts = np.stack([x1, x2], -1)
        f = toy_losses_np(pts)
        return lam * f[..., 0] + (1 - lam) * f[..., 1]

    lo, hi = np.full_like(x1, -20.0), np.zeros_like(x1)
    r = (np.sqrt(5) - 1) / 2
    a, b = hi - r * (hi - lo), lo + r * (hi - lo)
    fa, fb = h(a), h(b)
    for _ in range(iters):
        left = fa < fb
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
        a_new = hi - r * (hi - lo)
        b_new = lo + r * (hi - lo)
        a, b = a_new, b_new
        fa, fb = h(a), h(b)
    return 0.5 * (lo + hi)


def pareto_set(n: int = 2001) -> np.ndarray:
    """``n`` points of the global Pareto set, ordered from ``x1 = -7`` to ``x1 = 7``; (n, 2)."""
    lam = np.linspace(0.0, 1.0, n)
    x1 = 14 * lam - 7
    return np.stack([x1, _front_x2(x1, lam)], -1)


def global_optimum(scale: float = 0.5) -> np.ndarray:
    """Minimiser of ``scale * f1 + (1 - scale) * f2`` (a point of the Pareto set); (2,)."""
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"scale must be in [0, 1], got {scale}.")
    lam = np.array([float(scale)])
    x1 = 14 * lam - 7
    return np.array([x1[0], _front_x2(x1, lam)[0]])


def distance_to_curve(points: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point (..., 2) to the polyline ``curve`` (M, 2)."""
    pts = np.asarray(points, dtype=np.float64)[..., None, :]  # (..., 1, 2)
    a, b = curve[:-1], curve[1:]
    ab = b - a
    t = np.clip(((pts - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300), 0.0, 1.0)
    proj = a + t[..., None] * ab
    return np.sqrt(((pts - proj) ** 2).sum(-1)).min(-1)
