"""Constant, user-given loss weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["FixedWeighting"]


class FixedWeighting(Weighting):
    """Constant loss weights ``L = sum_t w_t L_t`` (hand-tuned weights).

    Used e.g. by MIN2Net (Autthasan et al., IEEE TBME 69(6), 2022; ``run_MIN2Net.py``), which
    trains the [reconstruction, triplet, cross-entropy] losses with fixed weights such as
    ``[0.5, 0.1, 1.0]`` (BCIC IV 2b, subject-dependent). Heads see the weights. No state and no
    learnable parameters.

    Parameters
    ----------
    n_tasks : int
    weights : sequence of float or None
        One finite, non-negative weight per task, in task order; ``None`` gives all ones
        (equal weighting).
    """

    name = "fixed"

    def __init__(self, n_tasks: int, weights: Sequence[float] | None = None) -> None:
        super().__init__(n_tasks)
        if weights is None:
            weights = [1.0] * self.n_tasks
        w = torch.as_tensor([float(v) for v in weights], dtype=torch.float32).flatten()
        if w.numel() != self.n_tasks:
            raise ValueError(
                f"got {w.numel()} fixed weights but there are {self.n_tasks} tasks: give one "
                "weight per task, in task order."
            )
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"fixed weights must be finite and >= 0, got {w.tolist()}.")
        self.fixed_weights = w.tolist()
        self._w = w

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        return self._w.to(device=losses.device, dtype=losses.dtype)
