"""Geometric loss strategy (GLS), Chennupati et al., CVPR Workshops 2019."""

from __future__ import annotations

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["GeometricLossWeighting"]


class GeometricLossWeighting(Weighting):
    r"""Geometric loss strategy (GLS), registry name ``"gls"``.

    Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream Feature Aggregation
    and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019, Eq. (2):

    .. math:: L = \Big(\prod_{t=1}^T L_t\Big)^{1/T}.

    Expressed as weights: since
    :math:`\nabla L = \frac{1}{T}\big(\prod_i L_i\big)^{1/T}\sum_t \nabla L_t / L_t`,
    the detached weights

    .. math:: w_t = \frac{\big(\prod_i L_i\big)^{1/T}}{T\,L_t}

    give :math:`\sum_t w_t \nabla L_t = \nabla L` exactly (same gradient, not the same loss
    value). The geometric mean is computed in log space for stability.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.

    Notes
    -----
    Losses must be strictly positive (raises otherwise). No learnable parameters, no state.
    The weights multiply the losses, so heads see them (as with the plain geometric-mean loss).
    """

    name = "gls"

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks).detach()
        if (losses <= 0).any():
            raise ValueError(
                f"GLS needs strictly positive task losses (geometric mean), got "
                f"{losses.tolist()}; shift or clip non-positive losses."
            )
        log_l = torch.log(losses.double())
        gm = torch.exp(log_l.mean())
        w = gm / (self.n_tasks * losses.double())
        return w.to(dtype=losses.dtype)
