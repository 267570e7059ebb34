"""Base class of loss weightings: small stateful objects with explicit hooks.

A weighting maps the per-task losses of a step to per-task weights ``w`` (shape (T,)).
The step multiplies task ``t``'s loss (or, equivalently, its gradient row) by ``w[t]`` before
aggregation. With the default ``Sum`` aggregator this is ordinary loss scalarisation
``L = sum_t w_t L_t``.

Hooks (all optional; the trainer calls them):

- ``weights(losses, gradients=None)`` -- before the backward of each training step; returns
  the detached (T,) weights. ``gradients`` is the unweighted (T, P) matrix when
  ``needs_gradients`` is True (GradNorm, IMTL-G style weightings).
- ``loss(losses)`` -- the differentiable scalar whose backward updates the weighting's *own*
  learnable parameters (UW, IMTL-L); by default 0 (no parameters). The trainer adds
  ``parameters()`` to the optimiser.
- ``after_step(train_losses, val_losses=None)`` -- after the optimiser step; ``val_losses`` is
  the (T,) loss of the interleaved validation batch when the trainer runs one (gradient
  blending).
- ``after_epoch(epoch, train_losses, val_losses=None)`` -- at the end of each epoch with the
  epoch-mean (T,) losses.
- ``state_dict()`` / ``load_state_dict()`` -- everything needed to resume. Every weighting is a
  :class:`torch.nn.Module` (set up in ``__new__``), so these come from torch: learnable
  parameters (UW, IMTL-L) and tensor state are registered, other state (histories, counters,
  generator and internal-optimiser states) goes through ``get_extra_state()`` /
  ``set_extra_state()``. ``parameters()`` is the module's: the parameters the *trainer's*
  optimiser updates through :meth:`Weighting.loss`; weights a method updates itself (GradNorm's
  ``w``, FAMO's logits) are plain tensors in the extra state, never registered parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Weighting", "check_losses"]


def check_losses(losses: Tensor, n_tasks: int) -> Tensor:
    """Validate a (T,) loss vector for a weighting configured for ``n_tasks`` tasks.

    Shape errors raise everywhere; the NaN/Inf scan runs on CPU tensors only, since on an
    accelerator it would read the losses back to the host at every step (the caller checks
    them there: :class:`eegmtl.mtl.step.StepResult` holds them).
    """
    if not isinstance(losses, Tensor):
        losses = torch.as_tensor(losses, dtype=torch.float32)
    if losses.ndim != 1:
        raise ValueError(
            f"expected a 1-D tensor of per-task losses, got shape {tuple(losses.shape)}."
        )
    if losses.shape[0] != n_tasks:
        raise ValueError(
            f"the weighting was built for {n_tasks} tasks but got {losses.shape[0]} losses."
        )
    if losses.device.type == "cpu" and not torch.isfinite(losses).all():
        raise ValueError(f"non-finite task losses {losses.tolist()}: a task has diverged.")
    return losses


class Weighting(nn.Module, ABC):
    """Abstract loss weighting for ``n_tasks`` tasks (a :class:`torch.nn.Module`)."""

    name: str = "weighting"
    needs_gradients: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Weighting:
        self = super().__new__(cls)
        nn.Module.__init__(self)  # ready before the subclass sets attributes
        return self

    def __init__(self, n_tasks: int) -> None:
        if int(n_tasks) < 1:
            raise ValueError(f"n_tasks must be >= 1, got {n_tasks}.")
        self.n_tasks = int(n_tasks)

    @abstractmethod
    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        """Return the detached (T,) weights for this step."""

    def forward(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        """Same as :meth:`weights`."""
        return self.weights(losses, gradients)

    def loss(self, losses: Tensor) -> Tensor:
        """Differentiable objective of the weighting's own parameters (default: none)."""
        return losses.new_zeros(())

    def after_step(self, train_losses: Tensor, val_losses: Tensor | None = None) -> None:  # noqa: B027
        """Hook called after each optimiser step."""

    def after_epoch(  # noqa: B027
        self, epoch: int, train_losses: Tensor, val_losses: Tensor | None = None
    ) -> None:
        """Hook called at the end of each epoch."""

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}"
            for k, v in vars(self).items()
            if not k.startswith("_") and k not in ("n_tasks", "training")
        )
        return f"{type(self).__name__}(n_tasks={self.n_tasks}{', ' if params else ''}{params})"
