"""Uncertainty weighting (UW), Kendall, Gal & Cipolla, CVPR 2018."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(Weighting):
    r"""Homoscedastic-uncertainty weighting (UW), registry name ``"uw"``.

    Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018, Eq. (7)/(10) in the log-variance form used by their
    code, LibMTL and Nash-MTL: with learnable :math:`s_t = \log \sigma_t^2`,

    .. math:: L(\theta, s) = \sum_t e^{-s_t} L_t(\theta) + s_t .

    (The paper's 1/2 factors are dropped, as in the common implementations; they only rescale
    the learning rate of ``s``.)

    How the objective is split between the two hooks:

    - :meth:`weights` returns the detached :math:`w_t = e^{-s_t}`; the step multiplies the
      task losses by them, so the model parameters get :math:`\sum_t e^{-s_t}\nabla L_t`;
    - :meth:`loss` returns :math:`\sum_t e^{-s_t} \operatorname{sg}(L_t) + s_t`
      (losses detached), whose backward reaches ``s`` only; add it to the scalar that is
      back-propagated. Together the two give exactly the gradient of the joint objective
      above. For fixed losses its minimiser is :math:`s_t = \log L_t`.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    init : float, default 0.0
        Initial log-variance (0 gives the EW start ``w = 1``; LibMTL uses -0.5).

    Notes
    -----
    The log-variances are an ``nn.Parameter`` returned by :meth:`parameters`; the trainer puts
    them in its optimiser (Nash-MTL uses a separate lr of 0.025 for them). The weights
    multiply the losses, so heads see them too.
    """

    name = "uw"

    def __init__(self, n_tasks: int, init: float = 0.0) -> None:
        super().__init__(n_tasks)
        self.init = float(init)
        self._log_vars = nn.Parameter(torch.full((self.n_tasks,), self.init))

    @property
    def log_vars(self) -> nn.Parameter:
        """The learnable log-variances :math:`s` (T,)."""
        return self._log_vars

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        w = torch.exp(-self._log_vars.detach())
        return w.to(device=losses.device, dtype=losses.dtype)

    def loss(self, losses: Tensor) -> Tensor:
        losses = check_losses(losses, self.n_tasks).detach()
        s = self._log_vars
        if s.device != losses.device:
            s = s.to(losses.device)
        return (torch.exp(-s) * losses.to(s.dtype) + s).sum()
