"""Aligned-MTL: align the task gradients by the eigen-decomposition of their Gram matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import as_pref, check_choice, combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["AlignedMTL", "AlignedMTLUB", "balance_transformation"]

_FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def balance_transformation(g: np.ndarray, scale: str = "min") -> np.ndarray:
    r"""The T x T balance transformation :math:`B = s\, V \Sigma^{-1} V^\top` of Aligned-MTL.

    ``g`` is the Gram matrix :math:`G G^\top`. Eigen-decomposition, numerical rank with the
    tolerance :math:`\lambda_{max} \cdot T \cdot \epsilon_{float32}`, top-R eigenpairs,
    :math:`\Sigma = \mathrm{diag}(\sqrt{\lambda})`, scale :math:`s = \sqrt{\lambda_R}` (``"min"``),
    :math:`\sqrt{\mathrm{median}\,\lambda}` (``"median"``) or :math:`\sqrt{\mathrm{mean}\,\lambda}`
    (``"rmse"``). Rank 0 (all-zero matrix) gives the identity (the update is then zero).
    """
    t_count = g.shape[0]
    lam, vec = np.linalg.eigh(g)
    tol = float(lam.max()) * t_count * _FLOAT32_EPS
    keep = lam > tol
    if tol <= 0.0 or not keep.any():
        return np.eye(t_count)
    order = np.argsort(lam)[::-1]
    order = order[keep[order]]
    lam, vec = lam[order], vec[:, order]
    if scale == "min":
        s = np.sqrt(lam[-1])
    elif scale == "median":
        s = np.sqrt(np.median(lam))
    else:  # "rmse"
        s = np.sqrt(lam.mean())
    return s * (vec / np.sqrt(lam)) @ vec.T


class AlignedMTL(Aggregator):
    r"""Aligned-MTL (Senushkin et al., *Independent Component Alignment for Multi-Task
    Learning*, CVPR 2023, Algorithm 1, Eq. 9-11; official ``ProcrustesSolver``).

    The task gradients are replaced by the closest (Procrustes) set of orthogonal gradients of
    equal norm :math:`\hat G = B G` with the balance transformation
    :math:`B = s V\Sigma^{-1}V^\top` from the eigen-decomposition of the Gram matrix
    :math:`G G^\top = V \Sigma^2 V^\top` (see :func:`balance_transformation`: numerical rank
    :math:`\lambda_{max} T \epsilon_{float32}`, only the top-R eigenpairs, so rank-deficient
    matrices are handled; all-zero matrix gives a zero update). The update is
    :math:`\sum_t \omega_t \hat g_t`, i.e. weights :math:`\alpha = B\omega`.

    Defaults follow the official code: ``scale="min"`` (:math:`s = \sigma_{min}`, the smallest
    non-zero singular value) and :math:`\omega = 1` for every task (sum of the aligned
    gradients; the paper's Alg. 1 has a task-importance vector :math:`\omega`, which the official
    code does not use -- LibMTL issue #57). ``reduction="mean"`` uses :math:`\omega = 1/T`, the
    scale of TorchJD's ``AlignedMTL`` (its golden value). ``pref`` sets :math:`\omega` explicitly.

    Touches the shared parameters only (the heads keep their own unweighted gradient, the
    official ``update_decoder_grads=True``; the optional scaling of head gradients by
    :math:`\alpha_t` is the step's business). For Aligned-MTL-UB use :class:`AlignedMTLUB`.

    Parameters
    ----------
    scale
        ``"min"`` (default), ``"median"`` or ``"rmse"``.
    reduction
        ``"sum"`` (default, official/LibMTL) or ``"mean"`` (TorchJD).
    pref
        Explicit task-importance vector :math:`\omega` (overrides ``reduction``).

    Notes
    -----
    Permutation invariant; positively homogeneous (B does not depend on the scale of G).
    Not non-conflicting in general.

    Examples
    --------
    >>> import torch
    >>> from eegmtl.mtl.aggregators import AlignedMTL
    >>> G = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # orthogonal gradients, norms 3 and 1
    >>> out = AlignedMTL()(G)
    >>> out.weights  # rescaled to equal norm sigma_min = 1
    tensor([0.3333, 1.0000])
    >>> out.vector
    tensor([1., 1.])
    """

    name = "aligned_mtl"
    linear = False
    level = "parameters"

    def __init__(
        self,
        scale: str = "min",
        reduction: str = "sum",
        pref: Sequence[float] | Tensor | None = None,
    ) -> None:
        self.scale = check_choice("scale", scale, ("min", "median", "rmse"))
        self.reduction = check_choice("reduction", reduction, ("sum", "mean"))
        self.pref = pref

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        default = 1.0 if self.reduction == "sum" else 1.0 / t_count
        omega = as_pref(self.pref, t_count, default)
        b = balance_transformation(gramian(matrix), self.scale)
        return combine(b @ omega, matrix)


class AlignedMTLUB(AlignedMTL):
    """Aligned-MTL-UB (Senushkin et al. 2023, Sec. 4.3): :class:`AlignedMTL` applied to the
    per-task gradients with respect to the shared *representation* (``level =
    "representation"``; official ``amtlub``: the full flattened representation gradient,
    batch x features, not summed over the batch), followed by one backward through the encoder.
    Same defaults as :class:`AlignedMTL`."""

    name = "aligned_mtl_ub"
    level = "representation"
