"""Every registered aggregator works in float64 internally: float32 rows at extreme scales
(norm ~1e20, whose Gramian overflows float32, and ~1e-30, whose Gramian underflows) give the
float64 result, in the input dtype."""

from __future__ import annotations

import inspect

import pytest
import torch

from eegmtl.mtl.aggregators import AGGREGATORS, Aggregator


def _build(name: str) -> Aggregator:
    cls = AGGREGATORS[name]
    kwargs = {}
    if "generator" in inspect.signature(cls).parameters:
        kwargs["generator"] = torch.Generator().manual_seed(0)
    return cls(**kwargs)


def _matrix(n_tasks: int, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n_tasks, 40, generator=g, dtype=torch.float64)
    m[1] = -0.6 * m[0] + 0.5 * m[1]  # a conflicting pair
    m = m / m.norm(dim=1, keepdim=True) * torch.linspace(1.0, 3.0, n_tasks, dtype=torch.float64)[
        :, None
    ]
    return m * scale


@pytest.mark.parametrize("scale", [1e20, 1e-30])
@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_float32_extreme_scale_matches_float64(name: str, scale: float) -> None:
    for n_tasks, seed in ((2, 0), (3, 1)):
        m32 = _matrix(n_tasks, scale, seed).to(torch.float32)
        m64 = m32.to(torch.float64)  # the same numbers, in float64
        agg32, agg64 = _build(name), _build(name)
        for _ in range(3):  # stateful aggregators: several calls
            out32, out64 = agg32(m32), agg64(m64)
        assert out32.vector.dtype == torch.float32 and out64.vector.dtype == torch.float64
        assert torch.isfinite(out32.vector).all() and torch.isfinite(out32.weights).all()
        v32, v64 = out32.vector.double(), out64.vector
        n32, n64 = float(v32.norm()), float(v64.norm())
        if n64 == 0.0:
            assert n32 == 0.0, f"{name}: float32 gives a non-zero update where float64 gives 0"
            continue
        assert n32 > 0.0, f"{name}: float32 update vanished at scale {scale:g}"
        cos = float(v32 @ v64) / (n32 * n64)
        assert cos > 0.999, f"{name}: cosine {cos:.6f} between float32 and float64 at {scale:g}"
        assert n32 == pytest.approx(n64, rel=1e-3)
