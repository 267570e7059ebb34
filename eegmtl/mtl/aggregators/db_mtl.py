"""DB-MTL gradient-magnitude balancing: EMA task gradients rescaled to the largest norm."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["DBMTL"]


class DBMTL(Aggregator):
    r"""DB-MTL's gradient-magnitude balancing (Lin, Jiang, Ye, Zhang, Chen, Chen, Liu, Tsang &
    Kwok, "Dual-Balancing for Multi-Task Learning", arXiv 2308.12029, Sec. 3.2, Eq. 3-4,
    Algorithm 1; LibMTL ``DB_MTL``). Registry name ``"db_mtl"``.

    At call :math:`k` (counted from 1) each task's gradient :math:`g_t` enters an exponential
    moving average, every average is normalised and all are rescaled to the largest norm:

    .. math::
        \hat g_t^{(k)} = \beta_k \hat g_t^{(k-1)} + (1 - \beta_k)\, g_t,
        \qquad \beta_k = \beta / k^{\sigma}, \qquad \hat g_t^{(0)} = 0,

        d = \max_s \lVert \hat g_s^{(k)} \rVert \sum_t
            \frac{\hat g_t^{(k)}}{\lVert \hat g_t^{(k)} \rVert} .

    Every task thus moves the shared parameters by the same magnitude, that of the task with
    the largest (averaged) gradient. The rows it receives should be gradients of
    :math:`\log L_t` -- the method name ``"db_mtl"`` pairs this aggregator with the
    :class:`~eegmtl.mtl.weightings.LogLossWeighting` (``"log"``), whose weights
    :math:`1/(L_t + \epsilon)` turn the rows into exactly those gradients.

    Defaults ``beta = 0.9``, ``beta_sigma = 0`` (LibMTL ``DB_beta``, ``DB_beta_sigma``; the
    paper's schedule :math:`\beta_k = \beta / k^{\sigma}` is the same rule). No bias
    correction: the first average is :math:`(1 - \beta) g_t`, as in the paper and LibMTL
    (the normalisation removes the factor, only the common magnitude carries it).

    ``weights`` are the coefficients :math:`\alpha_t = \max_s \lVert \hat g_s \rVert /
    \lVert \hat g_t \rVert` of the *averaged* rows (``vector == weights @ EMA``, not
    ``weights @ G``). Scale behaviour: multiplying one task's rows by :math:`c > 0` at every
    call changes at most the common magnitude (through the largest norm), never the
    direction; scaling all rows by :math:`c` scales the update by :math:`c`.

    Deviations from LibMTL: LibMTL divides by :math:`\lVert \hat g_t \rVert + 10^{-8}`; here
    the division is exact (in float64) and a task whose average is exactly zero gets weight 0,
    so rows of any scale (even norms below 1e-8) are balanced. LibMTL weights the losses'
    logarithm inside the method and rejects representation-level gradients; here the log
    transform is the separate ``"log"`` weighting and the aggregator works on whatever rows it
    gets (parameter level). The heads get their own gradient as set by the step
    (``weight_heads=True`` gives LibMTL's :math:`\nabla \log L_t` in the heads).

    Stateful: ``reset()``; ``state_dict()`` holds the (T, P) float64 average (memory
    ``8 T P`` bytes) and the call count. The number of tasks and columns is fixed by the first
    call.

    Parameters
    ----------
    beta
        EMA coefficient :math:`\beta \in [0, 1)` (default 0.9; 0 uses the current rows only).
    beta_sigma
        Decay exponent :math:`\sigma \ge 0` of :math:`\beta_k = \beta / k^{\sigma}` (default 0).
    """

    name = "db_mtl"
    linear = False
    level = "parameters"

    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        if not (isinstance(beta, (int, float)) and np.isfinite(beta) and 0.0 <= beta < 1.0):
            raise ValueError(f"beta must be a number in [0, 1), got {beta!r}.")
        if not (
            isinstance(beta_sigma, (int, float)) and np.isfinite(beta_sigma) and beta_sigma >= 0.0
        ):
            raise ValueError(f"beta_sigma must be a finite number >= 0, got {beta_sigma!r}.")
        self.beta = float(beta)
        self.beta_sigma = float(beta_sigma)
        self.reset()

    def reset(self) -> None:
        self._ema: Tensor | None = None
        self._n_steps = 0

    def get_extra_state(self) -> dict[str, Any]:
        ema = None if self._ema is None else self._ema.detach().clone()
        return {"ema": ema, "n_steps": self._n_steps}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        ema = state["ema"]
        self._ema = None if ema is None else ema.to(torch.float64).clone()
        self._n_steps = int(state["n_steps"])

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        if self._ema is None:
            self._ema = torch.zeros_like(matrix)
        if self._ema.shape != matrix.shape:
            raise ValueError(
                f"DB-MTL holds gradient averages for a {tuple(self._ema.shape)} matrix but got "
                f"{tuple(matrix.shape)}; call reset() when the tasks or parameters change."
            )
        self._n_steps += 1
        beta_k = self.beta / self._n_steps**self.beta_sigma
        ema = matrix + beta_k * (self._ema.to(matrix.device) - matrix)  # Eq. 3
        self._ema = ema
        norms = ema.norm(dim=1)
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        alpha = torch.where(norms > 0, norms.max() / safe, torch.zeros_like(norms))  # Eq. 4
        return Aggregation(alpha @ ema, alpha)
