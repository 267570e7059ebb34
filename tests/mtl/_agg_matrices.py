"""Families of (T, P) gradient matrices for the aggregator property tests (TorchJD style).

All generators are deterministic (seeded numpy Generators) and return float64 tensors; tests
cast them to the dtype they need.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

SHAPES = [(1, 1), (1, 5), (2, 1), (2, 5), (3, 5), (3, 50), (5, 5), (5, 50)]
SCALES = [1e-10, 1e-5, 1.0, 1e3, 1e5, 1e10]


def normal_with_rank(t: int, p: int, rank: int, seed: int = 0) -> Tensor:
    """Random matrix of (numerical) rank exactly ``rank`` (U S V^T with O(1) singular values)."""
    rng = np.random.default_rng(seed)
    rank = min(rank, t, p)
    if rank == 0:
        return torch.zeros(t, p, dtype=torch.float64)
    u = np.linalg.qr(rng.normal(size=(t, rank)))[0]
    v = np.linalg.qr(rng.normal(size=(p, rank)))[0]
    s = rng.uniform(0.5, 2.0, size=rank)
    return torch.from_numpy((u * s) @ v.T)


def strongly_stationary(t: int, p: int, seed: int = 0) -> Tensor:
    """Matrix with a strictly positive combination of rows equal to zero (v > 0, v^T J = 0)."""
    rng = np.random.default_rng(seed)
    j = rng.normal(size=(t, p))
    v = rng.uniform(0.5, 2.0, size=t)
    j[-1] = -(v[:-1] @ j[:-1]) / v[-1]
    return torch.from_numpy(j)


def non_strongly_stationary(t: int, p: int, seed: int = 0) -> Tensor:
    """Full row rank (T <= P) matrix: no non-zero combination of rows vanishes."""
    return normal_with_rank(t, p, min(t, p), seed)


def conflicting(t: int, p: int, seed: int = 0) -> Tensor:
    """Rows with pairwise conflicts and very different norms."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=p)
    rows = [base * (1.0 if i == 0 else -0.3) + rng.normal(size=p) for i in range(t)]
    norms = np.logspace(0, 2, t)
    return torch.from_numpy(np.stack(rows) * norms[:, None])


def families() -> list[tuple[str, Tensor]]:
    """(id, matrix) pairs: every shape x {full rank, rank 1, zero, strongly stationary,
    conflicting}, plus scaled copies of a 3 x 5 matrix."""
    out: list[tuple[str, Tensor]] = []
    for t, p in SHAPES:
        out.append((f"normal{t}x{p}", normal_with_rank(t, p, min(t, p), seed=t * 100 + p)))
        if min(t, p) > 1:
            out.append((f"rank1_{t}x{p}", normal_with_rank(t, p, 1, seed=t + p)))
        out.append((f"zero{t}x{p}", torch.zeros(t, p, dtype=torch.float64)))
        if t > 1:
            out.append((f"strong{t}x{p}", strongly_stationary(t, p, seed=t * p)))
            out.append((f"conflict{t}x{p}", conflicting(t, p, seed=t + 7 * p)))
    base = conflicting(3, 5, seed=3)
    for s in SCALES:
        out.append((f"scaled{s:g}", base * s))
    return out
