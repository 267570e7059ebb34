"""UPGrad: average of the projections of each gradient onto the dual cone of all gradients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import nnls
from torch import Tensor

from eegmtl.mtl.aggregators._utils import as_pref, check_nonnegative, combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["UPGrad", "dual_cone_weights"]


def dual_cone_weights(
    u: np.ndarray, g: np.ndarray, norm_eps: float = 0.0, reg_eps: float = 1e-4
) -> np.ndarray:
    r"""Weights of the projections of :math:`u_k^\top J` onto the dual cone of the rows of J.

    By Proposition 1 of Quinton & Rey (2024), the projection of :math:`J^\top u` onto
    :math:`\{x : Jx \ge 0\}` is :math:`J^\top w` with
    :math:`w = \arg\min_{v \ge u} v^\top G v`, :math:`G = J J^\top`. As TorchJD, G is first
    normalised by its trace (treated as zero when the trace is at most ``norm_eps``) and
    ``reg_eps * I`` is added. With a factor :math:`G = A A^\top` (from ``eigh``) and
    :math:`v = u + s`, each QP is the non-negative least-squares problem
    :math:`\min_{s\ge0}\|A^\top s + A^\top u\|`, solved exactly by ``scipy.optimize.nnls``
    (active set; no cvxpy/quadprog).

    ``u`` is a (T,) vector or a (K, T) array of vectors; the result has the same shape.
    """
    trace = float(np.trace(g))
    g_n = g / trace if trace > norm_eps else np.zeros_like(g)
    g_n = g_n + reg_eps * np.eye(g.shape[0])
    lam, vec = np.linalg.eigh(g_n)
    a_t = (vec * np.sqrt(np.clip(lam, 0.0, None))).T  # A^T, with A A^T = G_n
    single = u.ndim == 1
    rows = np.atleast_2d(u)
    out = np.empty_like(rows, dtype=np.float64)
    for k, row in enumerate(rows):
        s, _ = nnls(a_t, -(a_t @ row))
        out[k] = row + s
    return out[0] if single else out


class UPGrad(Aggregator):
    r"""UPGrad, unconflicting projection of gradients (Quinton & Rey, *Jacobian Descent for
    Multi-Objective Optimization*, 2024, Eq. 5; TorchJD ``UPGrad``).

    Each row :math:`g_i`, scaled by its preference weight (default :math:`1/T`), is projected
    onto the dual cone :math:`\{x : Gx \ge 0\}` of the rows, and the projections are summed:
    :math:`A(G) = \sum_i \pi_G(\omega_i g_i)`. Each projection is a T-dimensional QP on the
    Gramian (:func:`dual_cone_weights`), solved exactly by NNLS. As TorchJD/LibMTL the Gramian is
    trace-normalised and regularised by ``reg_eps * I`` (default ``1e-4``) before solving, so
    non-conflict holds up to ``reg_eps`` relative to the trace.

    Deviation: TorchJD/LibMTL use ``norm_eps = 1e-4`` as an *absolute* threshold on the trace
    of the Gramian, below which the Gramian is treated as zero and UPGrad silently becomes the
    mean -- i.e. whenever ``||G||_F < 1e-2``, common late in training. Here ``norm_eps``
    defaults to 0 (only an exactly zero matrix is treated as zero), which keeps the method
    scale invariant; pass ``norm_eps=1e-4`` to reproduce TorchJD exactly.

    Touches the shared parameters only. Properties (paper Sec. 3): non-conflicting, linear under
    scaling of the rows, weighted, permutation invariant (for a permutation-invariant ``pref``).

    Parameters
    ----------
    pref
        Preference vector :math:`\omega` (default ``1/T`` each).
    norm_eps
        Trace threshold below which G is treated as zero (default 0; TorchJD 1e-4).
    reg_eps
        Ridge added to the trace-normalised Gramian (default 1e-4, as TorchJD).
    """

    name = "upgrad"
    linear = False
    level = "parameters"

    def __init__(
        self,
        pref: Sequence[float] | Tensor | None = None,
        norm_eps: float = 0.0,
        reg_eps: float = 1e-4,
    ) -> None:
        self.pref = pref
        self.norm_eps = check_nonnegative("norm_eps", norm_eps)
        self.reg_eps = check_nonnegative("reg_eps", reg_eps)

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        omega = as_pref(self.pref, t_count, 1.0 / t_count)
        w = dual_cone_weights(np.diag(omega), gramian(matrix), self.norm_eps, self.reg_eps)
        return combine(w.sum(axis=0), matrix)
