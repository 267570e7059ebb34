"""MoCo: multi-objective gradient correction with tracked gradients (stateful)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    check_choice,
    check_nonnegative,
    check_task_count,
    gramian,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator
from eegmtl.mtl.aggregators.modo import _state_or_uniform, load_vector, project_to_simplex

__all__ = ["MoCo"]

_NORMALIZATIONS = ("none", "l2")


class MoCo(Aggregator):
    r"""MoCo (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, *Mitigating Gradient Bias in
    Multi-objective Learning: A Provably Convergent Approach*, ICLR 2023, Algorithm 1).

    Stochastic MGDA is biased because the min-norm weights are a non-linear function of noisy
    gradients. MoCo tracks each task gradient with a moving average :math:`y_t` and takes one
    projected-gradient step on the MGDA sub-problem per call, with the tracked gradients:

    .. math::
        y_{k+1,t} = y_{k,t} - \beta_k\,(y_{k,t} - g_{k,t}),\qquad
        \lambda_{k+1} = \Pi_\Delta\bigl(\lambda_k - \gamma_k\,(Y_{k+1}Y_{k+1}^\top
        + \rho I)\,\lambda_k\bigr),\qquad d = Y_{k+1}^\top\lambda_{k+1},

    with :math:`y_0 = 0`, :math:`\lambda_0 = 1/T` and step sizes
    :math:`\beta_k = \beta/k^{\sigma_\beta}`, :math:`\gamma_k = \gamma/k^{\sigma_\gamma}`
    (:math:`k = 1, 2, \ldots`; the paper's analysis uses decreasing steps). Defaults
    ``beta = 0.5``, ``beta_sigma = 0.5``, ``gamma = 0.1``, ``gamma_sigma = 0.5``, ``rho = 0``
    (LibMTL 1.1.5); ``beta_sigma = gamma_sigma = 0`` gives the constant steps of the official
    code (``heshandevaka/Trade-Off-MOL``, where ``rho`` defaults to 0.1).

    ``normalize="l2"`` rescales each incoming gradient to unit norm before tracking, so that
    ``gamma`` does not depend on the gradient scale (the official code offers ``'l2'``,
    ``'loss'``, ``'loss+'`` normalisations of the tracked gradients, default ``'none'``).
    Deviations: LibMTL rescales each gradient to norm equal to its *loss* and replaces the
    simplex projection by a softmax; loss-based normalisations need the loss values, which an
    aggregator does not see, so they are not offered. The paper's projection of
    :math:`y_t` onto a ball of radius :math:`L_t` (for the analysis) is omitted, as in both
    codes. Touches the shared parameters only.

    The update is a combination of the *tracked* gradients, not of the rows of G: ``weights``
    are :math:`\lambda_{k+1}` (the coefficients on :math:`Y`), and
    ``vector == weights @ Y`` rather than ``weights @ G``.

    Stateful: ``reset()``; ``state_dict()``/``load_state_dict()`` (torch, through
    ``get_extra_state()``/``set_extra_state()``) save/restore the step counter,
    :math:`\lambda` and :math:`Y` (a (T, P) tensor kept on the device of the matrix). In flat
    (F-) steps the aggregator is called twice per step, on two different matrices, which mixes
    them in :math:`Y`; use MoCo with plain steps.

    Parameters
    ----------
    beta, gamma
        Initial step sizes of the tracking (in (0, 1], default 0.5) and of the weights (> 0,
        default 0.1).
    beta_sigma, gamma_sigma
        Decay exponents of the step sizes (>= 0, default 0.5 each).
    rho
        :math:`\ell_2` regularisation of the :math:`\lambda` sub-problem (>= 0, default 0).
    normalize
        ``"none"`` (default) or ``"l2"`` (unit-norm gradients before tracking).
    n_tasks
        Expected number of tasks (``None``: fixed by the first matrix).
    """

    name = "moco"
    linear = False
    level = "parameters"

    def __init__(
        self,
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
        normalize: str = "none",
        n_tasks: int | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(beta, (int, float)) and 0.0 < beta <= 1.0):
            raise ValueError(f"beta must be in (0, 1], got {beta!r}.")
        self.beta = float(beta)
        self.beta_sigma = check_nonnegative("beta_sigma", beta_sigma)
        self.gamma = check_nonnegative("gamma", gamma)
        if self.gamma == 0.0:
            raise ValueError("gamma must be positive (the step size of the task weights).")
        self.gamma_sigma = check_nonnegative("gamma_sigma", gamma_sigma)
        self.rho = check_nonnegative("rho", rho)
        self.normalize = check_choice("normalize", normalize, _NORMALIZATIONS)
        self.n_tasks = n_tasks
        self._step = 0
        self._lambda: np.ndarray | None = None
        self._y: Tensor | None = None

    def reset(self) -> None:
        self._step = 0
        self._lambda = None
        self._y = None

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "step": self._step,
            "lambda": None if self._lambda is None else torch.tensor(self._lambda),
            "y": None if self._y is None else self._y.detach().clone(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._step = int(state.get("step", 0))
        self._lambda = load_vector(state, "lambda")
        y = state.get("y")
        self._y = None if y is None else torch.as_tensor(y).detach().clone()

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        check_task_count(matrix, self.n_tasks)
        lam = _state_or_uniform(self._lambda, t_count, "MoCo")
        y = self._y
        if y is None:
            y = torch.zeros_like(matrix)
        elif y.shape != matrix.shape:
            raise ValueError(
                f"MoCo tracks gradients of shape {tuple(y.shape)} but got {tuple(matrix.shape)}; "
                "call reset() when the tasks or the parameters change."
            )
        y = y.to(device=matrix.device, dtype=matrix.dtype)
        grads = matrix
        if self.normalize == "l2":
            norms = matrix.norm(dim=1, keepdim=True)
            grads = torch.where(norms > 0, matrix / norms.clamp_min(1e-300), matrix)
        self._step += 1
        beta_k = self.beta / self._step**self.beta_sigma
        gamma_k = self.gamma / self._step**self.gamma_sigma
        y = y - beta_k * (y - grads)
        g = gramian(y)
        lam = project_to_simplex(lam - gamma_k * (g @ lam + self.rho * lam))
        self._y, self._lambda = y, lam
        w = torch.as_tensor(lam).to(device=matrix.device, dtype=matrix.dtype)
        return Aggregation(w @ y, w)
