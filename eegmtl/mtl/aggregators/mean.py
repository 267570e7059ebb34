"""Linear aggregators with constant weights: :class:`Mean` and :class:`Sum`."""

from __future__ import annotations

import torch
from torch import Tensor

from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["Mean", "Sum"]


class Mean(Aggregator):
    """Equal weighting of the task gradients: ``A(G) = (1/T) * 1ᵀ G``.

    The baseline of every multi-task paper ("EW", equal weighting; e.g. Lin et al., 2022,
    *Reasonable effectiveness of random weighting*, Eq. 1 with ``λ_t = 1/T``). Touches the
    shared parameters only (task heads receive their own gradients in the step).

    ``linear = True``: the update equals the gradient of the mean loss, so the step may use its
    fast path (one backward of the weighted sum; no per-task gradient matrix).
    """

    name = "mean"
    linear = True
    level = "parameters"

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t = matrix.shape[0]
        weights = torch.full((t,), 1.0 / t, dtype=matrix.dtype, device=matrix.device)
        return Aggregation(weights @ matrix, weights)


class Sum(Aggregator):
    """Unit weighting of the task gradients: ``A(G) = 1ᵀ G`` (the gradient of the loss sum).

    This is LibMTL's ``EW`` (weight 1 per task, mtl-reference §1.3) and the scale used by the
    official PCGrad / GradVac / Aligned-MTL code; :class:`Mean` divides by T. ``linear = True``
    (see :class:`Mean`). Touches the shared parameters only. No hyper-parameters.
    """

    name = "sum"
    linear = True
    level = "parameters"

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        weights = torch.ones(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
        return Aggregation(matrix.sum(dim=0), weights)
