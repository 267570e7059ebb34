"""IMTL-G: closed-form weights giving equal projections of the update on every task direction."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["IMTLG"]


class IMTLG(Aggregator):
    r"""IMTL-G, the gradient part of Impartial MTL (Liu et al., *Towards Impartial Multi-task
    Learning*, ICLR 2021, Sec. 3.2, Eq. 7-9).

    Finds weights :math:`\alpha` with :math:`\sum_t \alpha_t = 1` such that the update
    :math:`g = \alpha^\top G` has the same projection on every unit task gradient
    :math:`u_t = g_t/\|g_t\|`. The paper's closed form
    (:math:`\alpha_{2:T} = g_1 U^\top (D U^\top)^{-1}` with differences to task 1) is equivalent to
    :math:`\alpha \propto (G G^\top)^{+} d`, :math:`d_t = \|g_t\|`, normalised to sum 1; the
    pseudo-inverse (relative cut-off ``T * eps`` of float32, the usual gradient dtype, although
    the solve runs in float64) handles linearly dependent rows as in TorchJD's ``IMTLG``
    (Quinton & Rey 2024). If the weights sum to ~0 (no direction
    with equal positive projections) the weights are zero.

    Touches the shared parameters only. LibMTL's ``IMTL`` class combines IMTL-G with the
    learnable loss scales of IMTL-L; here the two are separate (IMTL-L is a loss weighting).
    No hyper-parameters. Permutation invariant and positively homogeneous.
    """

    name = "imtl_g"
    linear = False
    level = "parameters"

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        g = gramian(matrix)
        t_count = g.shape[0]
        trace = np.trace(g)
        if trace <= 0.0:
            return combine(np.zeros(t_count), matrix)
        g = g / trace  # scale-free: the weights do not depend on the scale of G
        d = np.sqrt(np.clip(np.diag(g), 0.0, None))
        rtol = t_count * torch.finfo(torch.float32).eps
        v = np.linalg.pinv(g, rcond=rtol, hermitian=True) @ d
        s = v.sum()
        if abs(s) <= 1e-12 * np.abs(v).sum():
            return combine(np.zeros(t_count), matrix)
        return combine(v / s, matrix)
