"""What one training step of :class:`~eegmtl.mtl.step.MTLStep` returns, and its diagnostics.

:class:`StepResult` holds the detached losses, loss weights and aggregator weights of a step;
``_diagnostics`` adds the per-task gradient norms ``‖g_t‖`` and the minimum pairwise cosine
``min_{s≠t} ⟨g_s, g_t⟩ / (‖g_s‖ ‖g_t‖)`` of the (T, P) gradient matrix (a negative value is a
gradient conflict in the sense of PCGrad, Yu et al., NeurIPS 2020, Def. 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["StepResult"]


@dataclass
class StepResult:
    """What one training step returns (all tensors detached, on the model's device).

    Attributes
    ----------
    losses : Tensor
        (T,) unweighted task losses of the batch, in task order.
    weights : Tensor
        (T,) loss weights of the weighting.
    aggregator_weights : Tensor or None
        (T,) weights the aggregator used (on the fast path: the linear aggregator's constant
        weights ``c``; for flat steps: those of the loss part).
    diagnostics : dict
        Optional extras (``"grad_norms"``, ``"min_cosine"`` with ``diagnostics=True``;
        ``"flat_norm"`` and ``"loss_part_norm"`` (norms of the aggregated flat and loss parts
        of the shared update) for flat steps; ``"path"`` always).
    """

    losses: Tensor
    weights: Tensor
    aggregator_weights: Tensor | None
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _diagnostics(matrix: Tensor) -> dict[str, Any]:
    with torch.no_grad():
        norms = matrix.norm(dim=1)
        unit = matrix / norms.clamp_min(1e-12)[:, None]
        cos = unit @ unit.T
        t = matrix.shape[0]
        off = cos[~torch.eye(t, dtype=torch.bool, device=cos.device)]
        return {
            "grad_norms": norms.detach(),
            "min_cosine": float(off.min()) if off.numel() else 1.0,
        }
