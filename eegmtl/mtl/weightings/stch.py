"""STCH: smooth Tchebycheff scalarisation (Lin et al., ICML 2024)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["STCHWeighting"]


class STCHWeighting(Weighting):
    r"""Smooth Tchebycheff scalarisation, registry name ``"stch"``.

    Lin, Zhang, Zhang, Liu, Wang & Zhang, "Smooth Tchebycheff Scalarization for Multi-Objective
    Optimization", ICML 2024, Eq. 9, in the multi-task form of the official code and LibMTL:
    after ``warmup_epochs`` epochs of log-loss training (:math:`\sum_t \log L_t`), the nadir
    point :math:`n_t` is the mean loss of the next epoch (still log-loss training), and then the
    model descends

    .. math:: T\mu \log \sum_t \exp\bigl(u_t/\mu\bigr), \qquad u_t = \log(L_t / n_t),

    whose gradient is :math:`\sum_t w_t \nabla L_t` with the loss weights returned by
    :meth:`weights`: :math:`w_t = T\,\mathrm{softmax}(u/\mu)_t / L_t` (warm-up:
    :math:`w_t = 1/L_t`). Defaults ``mu = 1.0``, ``warmup_epochs = 4`` (LibMTL); the paper
    evaluates :math:`\mu \in \{0.01, 0.1, 0.5, 1\}`. ``warmup_epochs = 0`` and ``nadir``
    given skips the warm-up. TorchJD's ``scalarization.STCH`` is the plain formula on given
    values, without log transform or nadir estimation.

    Hooks: the epoch comes from :meth:`after_epoch`; the nadir losses are the training losses
    seen by :meth:`weights` during epoch ``warmup_epochs``. State (epoch, running sum, nadir)
    is in ``state_dict()``. The weights multiply the losses, so heads see them.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    mu : float, default 1.0
        Smoothing :math:`\mu > 0` (smaller: closer to the max).
    warmup_epochs : int, default 4
        Epochs of log-loss training before the nadir epoch.
    nadir : sequence of float or None
        Fixed nadir point (skips the estimation).
    """

    name = "stch"

    def __init__(
        self,
        n_tasks: int,
        mu: float = 1.0,
        warmup_epochs: int = 4,
        nadir: Any = None,
    ) -> None:
        super().__init__(n_tasks)
        if not (isinstance(mu, (int, float)) and math.isfinite(mu) and mu > 0):
            raise ValueError(f"STCH mu must be a finite number > 0, got {mu!r}.")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or (
            warmup_epochs < 0
        ):
            raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}.")
        self.mu = float(mu)
        self.warmup_epochs = warmup_epochs
        self._nadir: Tensor | None = None
        if nadir is not None:
            self._nadir = torch.as_tensor(nadir, dtype=torch.float64).clone()
            if self._nadir.shape != (self.n_tasks,) or (self._nadir <= 0).any():
                raise ValueError(f"nadir must hold {self.n_tasks} positive losses, got {nadir!r}.")
        self._epoch = 0
        self._sum = torch.zeros(self.n_tasks, dtype=torch.float64)
        self._count = 0

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        l64 = losses.detach().to(device="cpu", dtype=torch.float64)
        if self._nadir is None and self._count and self._epoch > self.warmup_epochs:
            self._nadir = self._sum / self._count
        if self._nadir is None:
            if self._epoch == self.warmup_epochs:
                self._sum += l64
                self._count += 1
            w = 1.0 / (l64 + 1e-20)
        else:
            u = torch.log(l64 / self._nadir + 1e-20)
            soft = torch.softmax(u / self.mu, dim=0)
            w = self.n_tasks * soft / (l64 + 1e-20 * self._nadir)
        return w.to(device=losses.device, dtype=losses.dtype)

    def after_epoch(
        self, epoch: int, train_losses: Tensor, val_losses: Tensor | None = None
    ) -> None:
        self._epoch += 1

    def get_extra_state(self) -> dict[str, Any]:
        nadir = None if self._nadir is None else self._nadir.clone()
        return {"epoch": self._epoch, "sum": self._sum.clone(), "count": self._count,
                "nadir": nadir}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._epoch = int(state["epoch"])
        self._sum = state["sum"].clone()
        self._count = int(state["count"])
        self._nadir = None if state["nadir"] is None else state["nadir"].clone()
