"""Dynamic weight average (DWA), Liu, Johns & Davison, CVPR 2019 (MTAN)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["DynamicWeightAverage"]


class DynamicWeightAverage(Weighting):
    r"""Dynamic weight average (DWA), registry name ``"dwa"``.

    Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, Eq. (7):

    .. math:: w_t(e) = \frac{T \exp(r_t(e-1)/\tau)}{\sum_i \exp(r_i(e-1)/\tau)}, \qquad
              r_t(e-1) = \frac{L_t(e-1)}{L_t(e-2)},

    where :math:`L_t(e)` is the epoch-mean *training* loss of task ``t`` over epoch ``e`` and
    :math:`\tau` the temperature. The weights sum to ``T``. During the first two epochs
    (no two past epoch means yet) :math:`w_t = 1`, as in the paper and LibMTL.

    The epoch means come in through :meth:`after_epoch` (called once at the end of every
    epoch with the (T,) mean training losses); the weights are constant within an epoch.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    temperature : float, default 2.0
        :math:`\tau` (paper and LibMTL: 2).

    Notes
    -----
    No learnable parameters. The weights multiply the losses, so heads see them.
    """

    name = "dwa"

    def __init__(self, n_tasks: int, temperature: float = 2.0) -> None:
        super().__init__(n_tasks)
        if not temperature > 0:
            raise ValueError(f"the DWA temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
        self._history: list[list[float]] = []
        self._weights = torch.ones(self.n_tasks)

    @property
    def current_weights(self) -> Tensor:
        """The weights in force for the current epoch."""
        return self._weights.clone()

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        return self._weights.to(device=losses.device, dtype=losses.dtype)

    def after_epoch(
        self, epoch: int, train_losses: Tensor, val_losses: Tensor | None = None
    ) -> None:
        train_losses = check_losses(train_losses, self.n_tasks).detach().double().cpu()
        if (train_losses <= 0).any():
            raise ValueError(
                f"DWA needs positive epoch-mean losses (it divides by them), got "
                f"{train_losses.tolist()}."
            )
        self._history.append(train_losses.tolist())
        self._history = self._history[-2:]
        if len(self._history) == 2:
            prev2, prev1 = (torch.tensor(h, dtype=torch.float64) for h in self._history)
            r = prev1 / prev2
            w = self.n_tasks * torch.softmax(r / self.temperature, dim=0)
            self._weights = w.float()

    def get_extra_state(self) -> dict[str, Any]:
        return {"history": [list(h) for h in self._history], "weights": self._weights.clone()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._history = [list(h) for h in state["history"]]
        self._weights = torch.as_tensor(state["weights"], dtype=torch.float32).clone()
