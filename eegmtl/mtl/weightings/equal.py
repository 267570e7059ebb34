"""Equal weighting (EW): the plain sum of the task losses."""

from __future__ import annotations

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["EqualWeighting"]


class EqualWeighting(Weighting):
    r"""Equal weighting, registry name ``"ew"``.

    :math:`L = \sum_t L_t`, i.e. ``w_t = 1`` for every task. This is LibMTL's ``EW``, which
    sums (it does not average) the task losses; divide the learning rate by ``T`` to obtain
    the mean instead. It is the baseline of every loss-weighting paper (e.g. Lin et al.,
    "Reasonable Effectiveness of Random Weighting", TMLR 2022, Table 1 "EW").

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.

    Notes
    -----
    No learnable parameters, no state. Heads see the weights too (their gradient is multiplied
    by ``w_t = 1``, i.e. unchanged).
    """

    name = "ew"

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        return torch.ones(self.n_tasks, dtype=losses.dtype, device=losses.device)
