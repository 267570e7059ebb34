"""CAGrad: conflict-averse gradient descent."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from torch import Tensor

from eegmtl.mtl.aggregators._utils import check_nonnegative, combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["CAGrad", "cagrad_dual_weights"]


def cagrad_dual_weights(g: np.ndarray, c: float) -> np.ndarray:
    r"""Solve the CAGrad dual :math:`\min_{w\in\Delta} w^\top G b + c\|g_0\|\sqrt{w^\top G w}`.

    ``g`` is the T x T Gramian normalised so that :math:`\|g_0\|^2 = b^\top G b = 1`
    (:math:`b = 1/T`). Small smooth convex problem: SLSQP with analytic gradients (as the
    official code, which uses ``scipy.optimize.minimize`` without gradients), warm-started at
    the uniform weights.
    """
    t_count = g.shape[0]
    b = np.full(t_count, 1.0 / t_count)
    if t_count == 1:
        return np.ones(1)
    a = g @ b
    delta = 1e-12

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        gw = g @ w
        root = np.sqrt(max(float(w @ gw), 0.0) + delta)
        return float(w @ a) + c * root, a + c * gw / root

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(
            fun,
            b,
            jac=True,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * t_count,
            constraints=(
                {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)},
            ),
            options={"ftol": 1e-12, "maxiter": 200},
        )
    w = np.clip(res.x, 0.0, None)
    total = w.sum()
    return w / total if total > 0 else b


class CAGrad(Aggregator):
    r"""Conflict-Averse Gradient descent (Liu et al., *Conflict-Averse Gradient Descent for
    Multi-task Learning*, NeurIPS 2021, Algorithm 1 / Eq. 3-4).

    The update maximises the worst task improvement within a ball around the average gradient
    :math:`g_0`: :math:`\max_d \min_i g_i^\top d` s.t. :math:`\|d - g_0\| \le c\|g_0\|`. Via the
    dual over the simplex (:math:`w^* = \arg\min_w g_w^\top g_0 + c\|g_0\|\|g_w\|`,
    :math:`g_w = w^\top G`) the update is

    .. math::
        d = g_0 + \frac{c\|g_0\|}{\|g_w\|} g_w, \qquad
        \text{weights} = \frac1T + \frac{c\|g_0\|}{\|g_w\|} w^* ,

    divided by :math:`1+c^2` when ``rescale=1`` (the official code's default, also LibMTL's
    ``rescale=1``), by :math:`1+c` when ``rescale=2``, unchanged when ``rescale=0`` (paper
    Alg. 1; TorchJD). The dual is solved on the T x T Gramian (scale-normalised, float64) with
    SLSQP as the official code (TorchJD uses cvxpy). When :math:`g_w \approx 0` (Pareto
    stationary) the update is :math:`g_0`, as the official code.

    Defaults: ``c = 0.4`` (official NYUv2/Cityscapes scripts, Nash-MTL and F-MTL; LibMTL's
    default is 0.5), ``rescale = 1``. Touches the shared parameters only.

    Parameters
    ----------
    c
        Radius of the ball, relative to :math:`\|g_0\|` (``c = 0`` gives the mean).
    rescale
        0, 1 or 2 (``True``/``False`` are accepted as 1/0), see above.

    Notes
    -----
    Permutation invariant and positively homogeneous. Not non-conflicting in general
    (only for c >= 1 it converges to a Pareto-stationary point).
    """

    name = "cagrad"
    linear = False
    level = "parameters"

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        self.c = check_nonnegative("c", c)
        if rescale not in (0, 1, 2):
            raise ValueError(f"rescale must be 0, 1 or 2, got {rescale!r}.")
        self.rescale = int(rescale)

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        g = gramian(matrix)
        t_count = g.shape[0]
        g0_sq = float(g.sum()) / t_count**2
        trace = float(np.trace(g))
        weights = np.full(t_count, 1.0 / t_count)
        if self.c > 0 and g0_sq > 1e-14 * max(trace, 0.0) and trace > 0:
            g_n = g / g0_sq
            w = cagrad_dual_weights(g_n, self.c)
            gw_norm = np.sqrt(max(float(w @ g_n @ w), 0.0))
            if gw_norm > 1e-8:
                weights = weights + (self.c / gw_norm) * w
        if self.rescale == 1:
            weights = weights / (1.0 + self.c**2)
        elif self.rescale == 2:
            weights = weights / (1.0 + self.c)
        return combine(weights, matrix)
