"""FAMO: fast adaptive multitask optimisation (Liu et al., NeurIPS 2023)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["FAMOWeighting"]

_EPS = 1e-8


class FAMOWeighting(Weighting):
    r"""FAMO, registry name ``"famo"``.

    Liu, Liu, Jin, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023,
    Algorithm 1 / Eq. 6-7 (TorchJD ``scalarization.FAMO``, LibMTL ``FAMO``). With learnable
    logits :math:`\xi`, :math:`z = \mathrm{softmax}(\xi)` and :math:`D_t = L_t - b_t + \epsilon`,
    the model descends :math:`\sum_t z_t \log D_t / c`, :math:`c = \sum_t z_t / D_t` (constant),
    i.e. the loss weights returned by :meth:`weights` are

    .. math:: w_t = \frac{z_t / D_t}{\sum_s z_s / D_s} \qquad (\textstyle\sum_t w_t = 1).

    After the model step the logits take one Adam step (lr ``lr``, L2 ``weight_decay``) along
    :math:`-\nabla_\xi\, z(\xi)^\top \delta`, :math:`\delta_t = \log D_t^{before} -
    \log D_t^{after}` (the log-loss decrease across the step). Defaults ``lr = 0.025``,
    ``weight_decay = 1e-3`` (paper Algorithm 2, LibMTL; the official code uses 1e-5),
    :math:`b = 0`, :math:`\epsilon = 10^{-8}`.

    Hooks: call :meth:`update` with the losses *recomputed on the same batch after the
    optimiser step* for the exact method (as the official code, LibMTL and TorchJD do). When
    the training loop does not (the Trainer of this package has no extra forward pass), the
    next call of :meth:`weights` makes the update with that step's losses as "after": the
    decrease is then measured between consecutive batches, one step late -- a deviation from
    the paper that costs no forward pass.

    The Adam step is written out on buffers (``torch.optim.Adam``'s arithmetic), so the logits
    are not parameters of the trainer's optimiser; ``state_dict()`` holds logits, Adam moments,
    step count and the pending losses. The weights multiply the losses, so heads see them.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    lr : float, default 0.025
        Learning rate of the logits' Adam.
    weight_decay : float, default 1e-3
        L2 coefficient of the logits' Adam (the paper's :math:`\gamma`).
    min_losses : sequence of float or None
        Lower bounds :math:`b_t` of the losses (default 0); losses must stay above them.
    """

    name = "famo"

    def __init__(
        self,
        n_tasks: int,
        lr: float = 0.025,
        weight_decay: float = 1e-3,
        min_losses: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__(n_tasks)
        for label, value in (("lr", lr), ("weight_decay", weight_decay)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"FAMO {label} must be a finite number >= 0, got {value!r}.")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        b = torch.zeros(self.n_tasks, dtype=torch.float64)
        if min_losses is not None:
            b = torch.as_tensor(min_losses, dtype=torch.float64).clone()
            if b.shape != (self.n_tasks,):
                raise ValueError(
                    f"min_losses must have one entry per task ({self.n_tasks}), got shape "
                    f"{tuple(b.shape)}."
                )
        self.register_buffer("min_losses", b)
        self.register_buffer("logits", torch.zeros(self.n_tasks, dtype=torch.float64))
        self.register_buffer("exp_avg", torch.zeros(self.n_tasks, dtype=torch.float64))
        self.register_buffer("exp_avg_sq", torch.zeros(self.n_tasks, dtype=torch.float64))
        self._adam_steps = 0
        self._before: Tensor | None = None  # log D of the last weights() call, not yet used

    def _log_d(self, losses: Tensor) -> Tensor:
        d = losses.detach().to(self.logits) - self.min_losses + _EPS
        if (d <= 0).any():
            raise ValueError(
                f"FAMO takes log(L - min_losses): every loss must exceed its lower bound, got "
                f"losses {losses.tolist()} and min_losses {self.min_losses.tolist()}."
            )
        return d.log()

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        log_d = self._log_d(losses)
        if self._before is not None:  # no update() since the last step: lagged update
            self._adam_step(self._before - log_d)
        self._before = log_d
        z = torch.softmax(self.logits, dim=0)
        w = z * torch.exp(-log_d)
        return (w / w.sum()).to(device=losses.device, dtype=losses.dtype)

    def update(self, losses_after: Tensor) -> None:
        """Adam step of the logits from the losses of the same batch after the model step."""
        losses_after = check_losses(losses_after, self.n_tasks)
        if self._before is None:
            raise RuntimeError("FAMO.update() must follow a weights() call on the same batch.")
        self._adam_step(self._before - self._log_d(losses_after))
        self._before = None

    def _adam_step(self, delta: Tensor) -> None:
        z = torch.softmax(self.logits, dim=0)
        grad = z * (delta - z @ delta)  # (d softmax / d logits)^T delta
        grad = grad + self.weight_decay * self.logits
        self._adam_steps += 1
        beta1, beta2 = 0.9, 0.999
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias1 = 1 - beta1**self._adam_steps
        bias2_sqrt = math.sqrt(1 - beta2**self._adam_steps)
        denom = (self.exp_avg_sq.sqrt() / bias2_sqrt).add_(1e-8)
        self.logits.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)

    def get_extra_state(self) -> dict[str, Any]:
        before = None if self._before is None else self._before.clone()
        return {"adam_steps": self._adam_steps, "before": before}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._adam_steps = int(state["adam_steps"])
        before = state["before"]
        self._before = None if before is None else before.to(self.logits).clone()
