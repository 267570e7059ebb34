"""Batched two-task weights for the toy landscape (:mod:`eegmtl.benchmarks.toy`).

The fast path of :func:`~eegmtl.benchmarks.toy.run_trajectory`: the same weights as the
registry aggregators / weightings (default hyper-parameters), computed for a batch of 2x2
Gramians ``(B, 2, 2)`` at once. Each is checked against the registry implementation by the
toy-landscape tests; the registry remains the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BATCHED_WEIGHTS"]

_EPS32 = float(np.finfo(np.float32).eps)
_EPS64 = float(np.finfo(np.float64).eps)


def _bw_mgda(g: np.ndarray, **_: Any) -> np.ndarray:
    # min-norm point of the segment [g1, g2] (Frank-Wolfe is exact in one step for T = 2)
    den = g[:, 0, 0] + g[:, 1, 1] - 2 * g[:, 0, 1]
    gam = np.where(den > 0, (g[:, 1, 1] - g[:, 0, 1]) / np.where(den > 0, den, 1.0), 0.5)
    gam = np.clip(gam, 0.0, 1.0)
    return np.stack([gam, 1 - gam], -1)


def _bw_pcgrad(g: np.ndarray, **_: Any) -> np.ndarray:
    # g1' = g1 - [g12<0] g12/|g2|^2 g2 and g2' = g2 - [g12<0] g12/|g1|^2 g1 (each projected on
    # the normal plane of the *original* other gradient; order-free for T = 2); d = g1' + g2'
    g11, g12, g22 = g[:, 0, 0], g[:, 0, 1], g[:, 1, 1]
    neg = g12 < 0
    w1 = 1 - np.where(neg & (g11 > 0), g12 / np.where(g11 > 0, g11, 1.0), 0.0)
    w2 = 1 - np.where(neg & (g22 > 0), g12 / np.where(g22 > 0, g22, 1.0), 0.0)
    return np.stack([w1, w2], -1)


def _bw_cagrad(g: np.ndarray, c: float = 0.4, **_: Any) -> np.ndarray:
    n = g.shape[0]
    g0 = g.sum((1, 2)) / 4
    tr = g[:, 0, 0] + g[:, 1, 1]
    ok = (g0 > 1e-14 * np.maximum(tr, 0)) & (tr > 0)
    gn = g / np.where(ok, g0, 1.0)[:, None, None]
    a = gn @ np.array([0.5, 0.5])

    q11, q12, q22 = gn[:, 0, 0], gn[:, 0, 1], gn[:, 1, 1]

    def obj(x: np.ndarray) -> np.ndarray:  # w = (x, 1 - x)
        y = 1 - x
        quad = x * x * q11 + 2 * x * y * q12 + y * y * q22
        return x * a[:, 0] + y * a[:, 1] + c * np.sqrt(np.maximum(quad, 0) + 1e-12)

    # exact 1-D minimisation over x in [0, 1]: the stationary points solve
    # c^2 quad'(x)^2 = 4 da^2 quad(x), a quadratic in x; compare them with the end points
    qa, qb, qc = q11 - 2 * q12 + q22, 2 * (q12 - q22), q22  # quad(x) = qa x^2 + qb x + qc
    da = a[:, 0] - a[:, 1]
    pa = 4 * c**2 * qa**2 - 4 * da**2 * qa
    pb = 4 * c**2 * qa * qb - 4 * da**2 * qb
    pc = c**2 * qb**2 - 4 * da**2 * qc
    disc = np.sqrt(np.maximum(pb**2 - 4 * pa * pc, 0.0))
    quad_ok = np.abs(pa) > 1e-14 * (np.abs(pb) + np.abs(pc) + 1e-300)
    safe_pa = np.where(quad_ok, pa, 1.0)
    lin = np.where(np.abs(pb) > 0, -pc / np.where(np.abs(pb) > 0, pb, 1.0), 0.0)
    r1 = np.where(quad_ok, (-pb + disc) / (2 * safe_pa), lin)
    r2 = np.where(quad_ok, (-pb - disc) / (2 * safe_pa), lin)
    cand = np.clip(np.stack([np.zeros(n), np.ones(n), r1, r2], -1), 0.0, 1.0)
    vals = np.stack([obj(cand[:, k]) for k in range(4)], -1)
    x = cand[np.arange(n), vals.argmin(-1)]
    w = np.stack([x, 1 - x], -1)
    gw = np.sqrt(np.maximum(np.einsum("bi,bij,bj->b", w, gn, w), 0))
    out = np.full((n, 2), 0.5)
    add = ok & (gw > 1e-8) & (c > 0)
    out = out + np.where(add, c / np.where(add, gw, 1.0), 0.0)[:, None] * w
    return out / (1 + c**2)


def _bw_imtl_g(g: np.ndarray, **_: Any) -> np.ndarray:
    tr = g[:, 0, 0] + g[:, 1, 1]
    gn = g / np.where(tr > 0, tr, 1.0)[:, None, None]
    d = np.sqrt(np.clip(np.stack([gn[:, 0, 0], gn[:, 1, 1]], -1), 0, None))
    v = (np.linalg.pinv(gn, rcond=2 * _EPS64, hermitian=True) @ d[..., None])[..., 0]
    s = v.sum(-1)
    good = (tr > 0) & (np.abs(s) > 1e-12 * np.abs(v).sum(-1))
    return np.where(good[:, None], v / np.where(good, s, 1.0)[:, None], 0.0)


def _bw_nash_mtl(g: np.ndarray, max_norm: float = 1.0, **_: Any) -> np.ndarray:
    # closed form of G a = 1/a for T = 2: a1^2 = 1/(g11 + g12 sqrt(g11/g22)), same for a2
    fro = np.sqrt((g**2).sum((1, 2)))
    gn = g / np.where(fro > 0, fro, 1.0)[:, None, None] + 1e-10 * np.eye(2)
    g11, g12, g22 = gn[:, 0, 0], gn[:, 0, 1], gn[:, 1, 1]
    tr = g[:, 0, 0] + g[:, 1, 1]
    act1, act2 = g[:, 0, 0] > _EPS64 * tr, g[:, 1, 1] > _EPS64 * tr
    both = act1 & act2
    r = np.sqrt(np.where(both, g11 / np.where(both, g22, 1), 1.0))
    a1 = np.where(both, 1 / np.sqrt(np.maximum(g11 + g12 * r, 1e-300)), 1 / np.sqrt(g11))
    a2 = np.where(both, 1 / np.sqrt(np.maximum(g22 + g12 / r, 1e-300)), 1 / np.sqrt(g22))
    alpha = np.stack([np.where(act1, a1, 0.0), np.where(act2, a2, 0.0)], -1)
    alpha = np.where((fro > 0)[:, None], alpha / np.sqrt(np.where(fro > 0, fro, 1.0))[:, None], 0)
    if max_norm > 0:
        norm = np.sqrt(np.maximum(np.einsum("bi,bij,bj->b", alpha, g, alpha), 0))
        shrink = np.where(norm > max_norm, max_norm / np.where(norm > 0, norm, 1.0), 1.0)
        alpha = alpha * shrink[:, None]
    return alpha


def _bw_aligned_mtl(g: np.ndarray, **_: Any) -> np.ndarray:
    lam, vec = np.linalg.eigh(g)  # ascending
    tol = lam[:, -1] * 2 * _EPS32
    keep = lam > tol[:, None]
    out = np.ones((g.shape[0], 2))  # B = I when nothing is kept
    full = keep.all(-1) & (tol > 0)
    one = keep[:, 1] & ~keep[:, 0] & (tol > 0)
    lam_safe = np.where(keep, lam, 1.0)
    # rank 2: s = sqrt(lam_min); B = s V diag(1/sqrt(lam)) V^T
    inv = vec / np.sqrt(lam_safe)[:, None, :]
    b_full = np.sqrt(lam_safe[:, :1])[..., None] * inv @ np.swapaxes(vec, 1, 2)
    # rank 1: B = v v^T (s = sqrt(lam_max) cancels 1/sqrt(lam_max))
    v = vec[:, :, 1]
    b_one = v[:, :, None] * v[:, None, :]
    out = np.where(full[:, None], b_full.sum(-1), out)
    out = np.where(one[:, None], b_one.sum(-1), out)
    return out


def _bw_random(g: np.ndarray, rng: np.random.Generator, **_: Any) -> np.ndarray:
    z = rng.standard_normal((g.shape[0], 2))
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


#: registry name -> batched weight function (default hyper-parameters of the registry class)
BATCHED_WEIGHTS: dict[str, Callable[..., np.ndarray]] = {
    "ew": lambda g, **_: np.ones((g.shape[0], 2)),
    "sum": lambda g, **_: np.ones((g.shape[0], 2)),
    "mean": lambda g, **_: np.full((g.shape[0], 2), 0.5),
    "mgda": _bw_mgda,
    "pcgrad": _bw_pcgrad,
    "cagrad": _bw_cagrad,
    "imtl_g": _bw_imtl_g,
    "nash_mtl": _bw_nash_mtl,
    "aligned_mtl": _bw_aligned_mtl,
    "rgw": _bw_random,
    "rlw": _bw_random,
}
