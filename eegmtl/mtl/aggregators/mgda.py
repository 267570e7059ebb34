"""MGDA: the minimum-norm element of the convex hull of the task gradients (Frank-Wolfe)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    check_choice,
    check_positive_int,
    combine,
    gramian,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator, check_matrix, in_float64

__all__ = ["MGDA", "MGDAUB", "min_norm_weights"]

_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def min_norm_weights(g: np.ndarray, epsilon: float = 1e-3, max_iters: int = 100) -> np.ndarray:
    """Frank-Wolfe weights of the min-norm point of the convex hull, from the Gramian ``g``.

    Sener & Koltun (2018), Algorithm 2: start at the uniform weights, move towards the vertex
    ``e_t`` with the smallest ``(G a)_t`` with the exact line-search step ``gamma``; stop when
    ``gamma < epsilon`` or after ``max_iters`` iterations.
    """
    t_count = g.shape[0]
    alpha = np.full(t_count, 1.0 / t_count)
    if t_count == 1:
        return np.ones(1)
    g_alpha = g @ alpha
    for _ in range(max_iters):
        t = int(np.argmin(g_alpha))
        a = g_alpha[t]  # alpha^T G e_t
        b = float(alpha @ g_alpha)  # alpha^T G alpha
        c = g[t, t]  # e_t^T G e_t
        if c <= a:
            gamma = 1.0
        elif b <= a:
            gamma = 0.0
        else:
            gamma = (b - a) / (b + c - 2.0 * a)
        if gamma == 1.0 and alpha[t] == 1.0:
            break  # already at that vertex: further iterations would not move
        alpha = (1.0 - gamma) * alpha
        alpha[t] += gamma
        g_alpha = (1.0 - gamma) * g_alpha + gamma * g[:, t]
        if gamma < epsilon:
            break
    return alpha


class MGDA(Aggregator):
    r"""Multiple-gradient descent (MGDA) with the Frank-Wolfe min-norm solver.

    Désidéri (2012) / Sener & Koltun, *Multi-Task Learning as Multi-Objective Optimization*,
    NeurIPS 2018, Algorithm 2: weights :math:`\alpha = \arg\min_{\alpha \in \Delta}
    \|\alpha^\top G\|^2`, update :math:`\alpha^\top G` (the min-norm element of the convex hull
    of the rows). Solved on the T x T Gramian only (float64, CPU): uniform start, exact line
    search, stop when the step ``gamma < epsilon`` (default ``1e-3``) or after ``max_iters``
    (default 100) iterations -- the settings of TorchJD's ``MGDA``. The official solver
    (``MinNormSolver``) starts from the best pair and uses ``1e-5``/250 iterations; for T = 2 both
    give the exact solution.

    Touches the shared parameters only (the step gives each head its own gradient). For the
    representation-level variant of the paper (MGDA-UB, Sec. 3.3) use :class:`MGDAUB`.

    Parameters
    ----------
    epsilon
        Frank-Wolfe stopping threshold on the step size (default ``1e-3``).
    max_iters
        Maximum number of Frank-Wolfe iterations (default 100).
    normalization
        Gradient normalisation applied to the rows before solving, as LibMTL's ``mgda_gn``
        (the official code's ``gradient_normalizers``): ``"none"`` (default, paper),
        ``"l2"`` (divide row t by ``||g_t||``), ``"loss"`` (by the loss value ``L_t``) or
        ``"loss+"`` (by ``L_t * ||g_t||``). As in LibMTL the update combines the *normalised*
        rows, so the returned weights are ``alpha_t / n_t``. The loss modes need the (positive)
        task losses: call ``mgda(matrix, losses=...)``; ``needs_losses`` tells the step.

    Notes
    -----
    Satisfies non-conflict (``G @ A(G) >= 0`` up to the solver tolerance), permutation
    invariance and positive homogeneity (``A(cG) = c A(G)``, c > 0).
    """

    name = "mgda"
    linear = False
    level = "parameters"

    def __init__(
        self, epsilon: float = 1e-3, max_iters: int = 100, normalization: str = "none"
    ) -> None:
        if not (isinstance(epsilon, (int, float)) and epsilon > 0):
            raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
        self.epsilon = float(epsilon)
        self.max_iters = check_positive_int("max_iters", max_iters)
        self.normalization = check_choice("normalization", normalization, _NORMALIZATIONS)

    @property
    def needs_losses(self) -> bool:
        """True when ``__call__`` needs ``losses=`` (loss-based normalisation)."""
        return self.normalization in ("loss", "loss+")

    def __call__(self, matrix: Tensor, losses: Tensor | None = None) -> Aggregation:
        check_matrix(matrix)
        if losses is not None or self.needs_losses:
            losses = self._check_losses(losses, matrix.shape[0])
        return in_float64(self._solve, matrix, losses)

    def _check_losses(self, losses: Tensor | None, n_tasks: int) -> np.ndarray:
        if losses is None:
            raise ValueError(
                f"normalization={self.normalization!r} needs the task losses: call "
                "aggregator(matrix, losses=losses) or use normalization='none'/'l2'."
            )
        arr = np.asarray(torch.as_tensor(losses).detach().to("cpu", torch.float64)).reshape(-1)
        if arr.shape[0] != n_tasks:
            raise ValueError(f"got {arr.shape[0]} losses for a matrix with {n_tasks} rows.")
        if not np.isfinite(arr).all() or (arr <= 0).any():
            raise ValueError(
                "loss-based normalisation needs finite, strictly positive losses; got "
                f"{arr.tolist()}."
            )
        return arr

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        return self._solve(matrix, None)

    def _solve(self, matrix: Tensor, losses: np.ndarray | None) -> Aggregation:
        g = gramian(matrix)
        norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
        if self.normalization == "none":
            scale = np.ones_like(norms)
        elif self.normalization == "l2":
            scale = norms.copy()
        elif self.normalization == "loss":
            scale = losses.copy()
        else:  # "loss+"
            scale = losses * norms
        scale[scale <= 0] = 1.0  # zero rows: nothing to normalise, avoid 0/0
        g_n = g / np.outer(scale, scale)
        alpha = min_norm_weights(g_n, self.epsilon, self.max_iters)
        return combine(alpha / scale, matrix)


class MGDAUB(MGDA):
    """MGDA-UB (Sener & Koltun 2018, Sec. 3.3): :class:`MGDA` applied to the gradients with
    respect to the shared *representation* (``level = "representation"``), an upper bound of
    the parameter-level problem needing one backward through the encoder. Same solver and
    defaults as :class:`MGDA`; LibMTL calls it ``MGDA`` + ``rep_grad=True``."""

    name = "mgda_ub"
    level = "representation"
