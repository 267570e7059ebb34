"""ExcessMTL: task weights driven by estimated excess risks (stateful)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import check_task_count
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["ExcessMTL"]


class ExcessMTL(Aggregator):
    r"""ExcessMTL (He, Zhou, Jiang, Yang & Zhao, *Robust Multi-Task Learning with Excess Risks*,
    ICML 2024, Algorithm 1, Eq. 6-9; TorchJD ``ExcessMTL``, LibMTL ``ExcessMTL``).

    Each call accumulates the squared gradients :math:`S_t \mathrel{+}= g_t^2` (AdaGrad-style
    diagonal curvature, Eq. 7), estimates the excess risk of task t as
    :math:`E_t = g_t^\top \mathrm{diag}(S_t + 10^{-7})^{-1/2} g_t` (Eq. 6), divides it by the
    baseline :math:`E_t^{(0)}` (Sec. 3.2) and takes an exponentiated-gradient step on the
    simplex (Eq. 9):

    .. math:: w \leftarrow \frac{w \odot e^{\eta E/E^{(0)}}}{\sum_t w_t e^{\eta E_t/E_t^{(0)}}},
              \qquad d = w^\top G .

    Weights start at :math:`1/T`. The baseline is the first call's :math:`E` (used raw on that
    call, as TorchJD and the official code) or, with ``n_warmup_steps > 0``, the mean over that
    many calls during which the weights stay uniform (paper App. C.1: three epochs). Default
    ``robust_step_size = 1e-2`` (LibMTL; TorchJD uses 1.0).

    Deviations: LibMTL starts from weights 1 and renormalises them to sum T (T times ours, the
    same sequence otherwise), does not update on the first call, and multiplies the *losses*
    (so the heads see the weights); here the weights apply to the shared-parameter gradients
    and the heads keep their own gradient (``weight_heads=True`` in the step gives LibMTL's
    heads). The exponentiated step is done in log space (no overflow), as TorchJD.

    Stateful: ``reset()``; ``state_dict()`` holds the (T, P) float64 accumulator (memory
    ``8 T P`` bytes), the weights, the baseline and the step count. The number of tasks and
    columns is fixed by the first call.

    Parameters
    ----------
    robust_step_size
        Step size :math:`\eta > 0` of the exponentiated update (default 1e-2).
    n_warmup_steps
        Calls with uniform weights that set the baseline (default 0).
    """

    name = "excess_mtl"
    linear = False
    level = "parameters"

    def __init__(self, robust_step_size: float = 1e-2, n_warmup_steps: int = 0) -> None:
        if not (isinstance(robust_step_size, (int, float)) and np.isfinite(robust_step_size)
                and robust_step_size > 0):
            raise ValueError(f"robust_step_size must be > 0, got {robust_step_size!r}.")
        if isinstance(n_warmup_steps, bool) or not isinstance(n_warmup_steps, int) or (
            n_warmup_steps < 0
        ):
            raise ValueError(f"n_warmup_steps must be an integer >= 0, got {n_warmup_steps!r}.")
        self.robust_step_size = float(robust_step_size)
        self.n_warmup_steps = n_warmup_steps
        self.reset()

    def reset(self) -> None:
        self._sq_sum: Tensor | None = None
        self._weights: Tensor | None = None
        self._baseline: Tensor | None = None
        self._warmup_sum: Tensor | None = None
        self._n_steps = 0

    def get_extra_state(self) -> dict[str, Any]:
        def copy(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.detach().clone()

        return {
            "sq_sum": copy(self._sq_sum),
            "weights": copy(self._weights),
            "baseline": copy(self._baseline),
            "warmup_sum": copy(self._warmup_sum),
            "n_steps": self._n_steps,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._sq_sum = state["sq_sum"]
        self._weights = state["weights"]
        self._baseline = state["baseline"]
        self._warmup_sum = state["warmup_sum"]
        self._n_steps = int(state["n_steps"])

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        if self._sq_sum is None:
            self._sq_sum = torch.zeros_like(matrix)
            self._weights = matrix.new_full((t_count,), 1.0 / t_count)
            self._warmup_sum = matrix.new_zeros(t_count)
        if self._sq_sum.shape != matrix.shape:
            raise ValueError(
                f"ExcessMTL holds statistics for a {tuple(self._sq_sum.shape)} matrix but got "
                f"{tuple(matrix.shape)}; call reset() when the tasks or parameters change."
            )
        check_task_count(matrix, t_count)
        sq = matrix.pow(2)
        self._sq_sum = self._sq_sum.to(matrix.device) + sq
        excess = (sq / torch.sqrt(self._sq_sum + 1e-7)).sum(dim=1)  # Eq. 6-7
        weights = self._weights.to(matrix.device)
        self._n_steps += 1
        if self._n_steps <= self.n_warmup_steps:
            self._warmup_sum = self._warmup_sum.to(matrix.device) + excess
            return Aggregation(weights @ matrix, weights)
        if self._baseline is None:
            if self.n_warmup_steps > 0:
                self._baseline = self._warmup_sum.to(matrix.device) / self.n_warmup_steps
                excess = excess / (self._baseline + 1e-7)
            else:
                self._baseline = excess
        else:
            excess = excess / (self._baseline.to(matrix.device) + 1e-7)
        weights = torch.softmax(torch.log(weights) + self.robust_step_size * excess, dim=0)
        self._weights = weights
        return Aggregation(weights @ matrix, weights)
