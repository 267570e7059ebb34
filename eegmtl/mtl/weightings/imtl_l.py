"""Loss part of Impartial MTL (IMTL-L), Liu et al., ICLR 2021."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["IMTLLWeighting"]


class IMTLLWeighting(Weighting):
    r"""Impartial loss balancing (IMTL-L), registry name ``"imtl_l"``.

    Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
    ICLR 2021, §3.2, Eq. (3): with learnable :math:`s_t`,

    .. math:: L(\theta, s) = \sum_t e^{s_t} L_t(\theta) - s_t ,

    whose minimiser in :math:`s` for fixed losses is :math:`s_t = -\log L_t`, i.e. every
    scaled loss :math:`e^{s_t} L_t` is driven to 1 (scale-invariant). Split as for
    :class:`~eegmtl.mtl.weightings.uncertainty.UncertaintyWeighting`: :meth:`weights` returns
    the detached :math:`e^{s_t}`; :meth:`loss` returns
    :math:`\sum_t e^{s_t}\operatorname{sg}(L_t) - s_t`, whose backward reaches ``s`` only.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    init : float, default 0.0
        Initial ``s`` (LibMTL's IMTL initialises 0).

    Notes
    -----
    Only the loss part (IMTL-L) of IMTL; the gradient part (IMTL-G) is an aggregator, and
    LibMTL's ``IMTL`` class combines both. ``s`` is returned by :meth:`parameters` for the
    trainer's optimiser. The weights multiply the losses, so heads see them.
    """

    name = "imtl_l"

    def __init__(self, n_tasks: int, init: float = 0.0) -> None:
        super().__init__(n_tasks)
        self.init = float(init)
        self._log_scales = nn.Parameter(torch.full((self.n_tasks,), self.init))

    @property
    def log_scales(self) -> nn.Parameter:
        """The learnable log-scales :math:`s` (T,)."""
        return self._log_scales

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        w = torch.exp(self._log_scales.detach())
        return w.to(device=losses.device, dtype=losses.dtype)

    def loss(self, losses: Tensor) -> Tensor:
        losses = check_losses(losses, self.n_tasks).detach()
        s = self._log_scales
        if s.device != losses.device:
            s = s.to(losses.device)
        return (torch.exp(s) * losses.to(s.dtype) - s).sum()
