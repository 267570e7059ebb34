"""FairGrad: alpha-fair resource allocation between the tasks, G G^T w = w^(-1/alpha)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from eegmtl.mtl.aggregators._utils import combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["FairGrad", "fairgrad_weights"]


def _barrier(w: np.ndarray, p: float) -> float:
    """:math:`\\sum_i h(w_i)` with :math:`h'(w) = w^{-p}`."""
    return float(np.log(w).sum()) if p == 1.0 else float((w ** (1.0 - p)).sum() / (1.0 - p))


def fairgrad_weights(
    g: np.ndarray, alpha: float, max_iter: int = 100, tol: float = 1e-20
) -> np.ndarray:
    r"""Positive solution of :math:`G w = w^{-1/\alpha}` (element-wise power) by damped Newton.

    With :math:`p = 1/\alpha`, the solution minimises the strictly convex
    :math:`f(w) = \tfrac12 w^\top G w - \sum_i h(w_i)`, :math:`h'(w) = w^{-p}`
    (:math:`h = \log` for :math:`\alpha = 1`), over :math:`w > 0`. ``g`` is first divided by its
    trace :math:`\tau` and the result rescaled by :math:`\tau^{-\alpha/(1+\alpha)}`, so the
    tolerance does not depend on the gradient scale. Start: the uniform vector rescaled by the
    exact line search along its ray; Newton steps with Armijo backtracking inside
    :math:`w > 0`; stop when the squared Newton decrement is below ``tol``.
    """
    t_count = g.shape[0]
    trace = float(np.trace(g))
    if trace <= 0.0:
        return np.zeros(t_count)
    p = 1.0 / alpha
    g_n = g / trace
    w = np.ones(t_count)
    w = w * (float((w ** (1.0 - p)).sum()) / float(w @ g_n @ w)) ** (1.0 / (1.0 + p))

    def objective(x: np.ndarray) -> float:
        return 0.5 * float(x @ g_n @ x) - _barrier(x, p)

    for _ in range(max_iter):
        grad = g_n @ w - w ** (-p)
        step = np.linalg.solve(g_n + np.diag(p * w ** (-p - 1.0)), grad)
        decrement = float(grad @ step)
        if decrement < tol:
            break
        f0, s = objective(w), 1.0
        while s >= 1e-12:
            cand = w - s * step
            if (cand > 0).all() and objective(cand) <= f0 - 1e-4 * s * decrement:
                break
            s *= 0.5
        else:
            break
        w = cand
    return w * trace ** (-alpha / (1.0 + alpha))


class FairGrad(Aggregator):
    r"""FairGrad (Ban & Ji, *Fair Resource Allocation in Multi-Task Learning*, ICML 2024,
    Algorithm 1, Eq. 4; TorchJD ``FairGrad``, LibMTL ``FairGrad``).

    The update :math:`d = w^\top G` maximises the :math:`\alpha`-fair utility
    :math:`\sum_i (g_i^\top d)^{1-\alpha}/(1-\alpha)` in a ball; its weights are the positive
    solution of

    .. math:: G G^\top w = w^{-1/\alpha} \quad (\text{element-wise}),

    i.e. each task's directional derivative is :math:`g_i^\top d = w_i^{-1/\alpha}`.
    :math:`\alpha = 1` is proportional fairness, the Nash bargaining equation of Nash-MTL (so
    ``FairGrad(alpha=1)`` equals ``NashMTL(max_norm=0)``); larger :math:`\alpha` moves towards
    max-min fairness. Default ``alpha = 1.0`` (LibMTL; the paper tunes it, e.g. 2 on QM9).

    Scale behaviour: scaling every gradient by :math:`c > 0` scales the update by
    :math:`c^{(1-\alpha)/(1+\alpha)}` (scale invariant for :math:`\alpha = 1`).

    Deviations: the official code and LibMTL/TorchJD solve the equation with
    ``scipy.optimize.least_squares`` from the uniform start (tolerances ~1e-8, at most
    ``100 T`` evaluations); here the same root is the minimiser of a strictly convex function,
    found by damped Newton on the trace-normalised Gramian (:func:`fairgrad_weights`, float64) to
    machine precision. Tasks whose gradient is zero get weight 0 (the equation has no solution
    for them; least squares returns a large weight). ``alpha = 0`` (not allowed here) would be
    linear scalarisation; use ``mean`` for it. No update-norm clipping (LibMTL and TorchJD
    clip nothing either). Touches the shared parameters only.

    Parameters
    ----------
    alpha
        Fairness parameter :math:`\alpha > 0` (default 1.0).
    max_iter
        Newton iterations per call (default 100; 5-20 are typical).
    """

    name = "fairgrad"
    linear = False
    level = "parameters"
    scale_equivariant = False

    def __init__(self, alpha: float = 1.0, max_iter: int = 100) -> None:
        if not (isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0):
            raise ValueError(
                f"alpha must be a finite number > 0, got {alpha!r} (alpha = 0 is linear "
                "scalarisation: use the 'mean' aggregator)."
            )
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
        self.alpha = float(alpha)
        self.max_iter = max_iter

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        g = gramian(matrix)
        t_count = g.shape[0]
        w = np.zeros(t_count)
        diag = np.diag(g)
        active = diag > np.finfo(np.float64).eps * max(float(np.trace(g)), 0.0)
        if active.any():
            sub = g[np.ix_(active, active)]
            sub = sub + 1e-12 * float(np.trace(sub)) * np.eye(int(active.sum()))
            w[active] = fairgrad_weights(sub, self.alpha, self.max_iter)
        return combine(w, matrix)
