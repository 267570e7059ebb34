"""Logarithmic loss transform: descend sum_t log(L_t + eps) (DB-MTL's loss-scale balancing)."""

from __future__ import annotations

import math

from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["LogLossWeighting"]


class LogLossWeighting(Weighting):
    r"""Log-loss weighting, registry name ``"log"``.

    The loss-scale balancing half of DB-MTL (Lin, Jiang, Ye, Zhang, Chen, Chen, Liu, Tsang &
    Kwok, "Dual-Balancing for Multi-Task Learning", arXiv 2308.12029, Sec. 3.1, Eq. 2): each
    task loss is replaced by :math:`\log(L_t + \epsilon)`. Its gradient is
    :math:`\nabla L_t / (L_t + \epsilon)`, so the loss weights returned by :meth:`weights` are

    .. math:: w_t = \frac{1}{L_t + \epsilon} \qquad (\text{detached}),

    and the weighted gradient rows :math:`w_t \nabla L_t` equal :math:`\nabla \log(L_t+\epsilon)`
    exactly. Scaling a task loss by :math:`c > 0` leaves its weighted gradient unchanged (up to
    :math:`\epsilon`): the transform removes loss scales. With the plain sum it is the paper's
    "loss-scale balancing only" ablation (equal to IMTL-L at the optimum of its scale, paper
    Sec. 3.1); the full method is ``"db_mtl"`` (this weighting + the
    :class:`~eegmtl.mtl.aggregators.DBMTL` aggregator).

    Default :math:`\epsilon = 10^{-8}` (LibMTL ``DB_MTL``: ``log(losses + 1e-8)``).

    Heads: with the plain-sum (fast) path the heads see :math:`w_t` as well; on the explicit
    path they get their unweighted gradient unless the step has ``weight_heads=True`` (LibMTL
    back-propagates :math:`\log L_t` into the heads too).

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    eps : float, default 1e-8
        :math:`\epsilon \ge 0` added to every loss inside the logarithm.

    Raises
    ------
    ValueError
        From :meth:`weights` when a loss plus ``eps`` is not positive (the logarithm is
        undefined: shift such a loss to be non-negative).
    """

    name = "log"

    def __init__(self, n_tasks: int, eps: float = 1e-8) -> None:
        super().__init__(n_tasks)
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
        self.eps = float(eps)

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks).detach()
        shifted = losses + self.eps
        if (shifted <= 0).any():
            raise ValueError(
                f"the log-loss weighting takes log(L + eps): every loss plus eps={self.eps:g} "
                f"must be > 0, got losses {losses.tolist()}; use non-negative losses (e.g. add "
                "a constant to a loss that can be negative) or a larger eps."
            )
        return 1.0 / shifted
