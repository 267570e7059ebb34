"""DualProj: project the mean gradient onto the dual cone of the task gradients."""

from __future__ import annotations

from torch import Tensor

from eegmtl.mtl.aggregators._utils import as_pref, combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation
from eegmtl.mtl.aggregators.upgrad import UPGrad, dual_cone_weights

__all__ = ["DualProj"]


class DualProj(UPGrad):
    r"""DualProj (Quinton & Rey 2024, TorchJD ``DualProj``): the weighted mean of the rows,
    projected onto the dual cone of the rows -- the solution of Eq. 11 of Lopez-Paz & Ranzato,
    *Gradient Episodic Memory for Continual Learning* (NeurIPS 2017): the closest vector to the
    mean that conflicts with no task.

    Same QP solver and defaults as :class:`UPGrad` (``reg_eps = 1e-4``; ``norm_eps = 0`` where
    TorchJD uses ``1e-4``, see :class:`UPGrad`; ``pref`` ``1/T`` each). Touches the shared
    parameters only. Non-conflicting (up to ``reg_eps``), permutation invariant, positively
    homogeneous.
    """

    name = "dualproj"

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        omega = as_pref(self.pref, matrix.shape[0], 1.0 / matrix.shape[0])
        w = dual_cone_weights(omega, gramian(matrix), self.norm_eps, self.reg_eps)
        return combine(w, matrix)
