"""ConFIG: conflict-free inverse gradients (stateless)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from eegmtl.mtl.aggregators._utils import as_pref, combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["ConFIG"]


class ConFIG(Aggregator):
    r"""ConFIG (Liu, Chu & Thuerey, *ConFIG: Towards Conflict-free Training of Physics Informed
    Neural Networks*, arXiv 2408.11104, ICLR 2025, Eq. 2).

    With the unit gradients :math:`u_t = g_t/\|g_t\|` stacked as the rows of :math:`U`, the
    direction is the (minimum-norm) solution of :math:`U d = w` (default :math:`w = 1`), i.e.
    the direction with the *same* cosine to every task gradient, and its length is the sum of
    the projections of the task gradients on it:

    .. math::
        \hat d = \frac{U^{+} w}{\|U^{+} w\|},\qquad
        g_{\mathrm{ConFIG}} = \Bigl(\sum_t g_t^\top \hat d\Bigr)\,\hat d .

    Computed from the T x T Gramian: :math:`U^{+}w = U^\top (UU^\top)^{+} w` with
    :math:`UU^\top = D^{-1}GG^\top D^{-1}`, :math:`D = \mathrm{diag}(\|g_t\|)` (float64,
    pseudo-inverse cut at ``T * eps * max eigenvalue``); the update is formed as
    ``weights @ G``, so it lies in the row space of G. All-zero rows get a zero unit vector
    (as TorchJD; they then take no part). Touches the shared parameters only.

    Properties (paper §3): when the rows are linearly independent, :math:`g_t^\top \hat d > 0`
    for every task (no conflict) with equal cosines (for equal ``pref``); the direction depends
    only on the unit gradients, so rescaling a task's gradient by :math:`c > 0` leaves it
    unchanged (the length changes). Positively homogeneous: :math:`A(cG) = cA(G)`.

    Matches TorchJD's ``ConFIG`` and the official ``ConFIG_update`` with ``EqualWeight`` and
    ``ProjectionLength`` (the official default; it solves with ``lstsq`` instead of ``pinv``,
    the same minimum-norm solution for full-rank rows). The official ``ConFIGOperator`` with
    momentum (M-ConFIG) and its gradient-order alternation are not offered.

    Parameters
    ----------
    pref
        Target cosine weights :math:`w` (default ``1`` per task: equal angles).
    """

    name = "config"
    linear = False
    level = "parameters"

    def __init__(self, pref: Tensor | Sequence[float] | None = None) -> None:
        super().__init__()
        self.pref = pref

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        target = as_pref(self.pref, t_count, 1.0)
        g = gramian(matrix)
        norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
        inv = np.divide(1.0, norms, out=np.zeros(t_count), where=norms > 0)
        uu = g * inv[:, None] * inv[None, :]
        rcond = t_count * np.finfo(np.float64).eps
        coef = np.linalg.pinv(uu, rcond=rcond, hermitian=True) @ target
        best_sq = float(coef @ uu @ coef)
        if not best_sq > 0.0:
            return combine(np.zeros(t_count), matrix)
        unit = coef * inv / np.sqrt(best_sq)  # d_hat = unit @ G
        length = float((g @ unit).sum())  # sum_t g_t . d_hat
        return combine(length * unit, matrix)
