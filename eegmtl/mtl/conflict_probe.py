"""Conflict probe: how often the task gradients of a training run conflict.

:class:`ConflictProbe` is a :class:`~eegmtl.mtl.callbacks.Callback` of
:class:`~eegmtl.mtl.trainer.Trainer` that counts the mini-batches whose per-task gradients of
the unweighted losses w.r.t. the shared parameters have some pair with a negative cosine
(:class:`~eegmtl.mtl.metrics.ConflictCounter`): the fraction of conflicting mini-batches of
F-MTL (Phan et al., ICCV 2025, Fig. 3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from eegmtl.mtl.callbacks import Callback
from eegmtl.mtl.flat import frozen_batchnorm
from eegmtl.mtl.gradients import flatten
from eegmtl.mtl.metrics import ConflictCounter
from eegmtl.mtl.step import compute_losses

if TYPE_CHECKING:  # pragma: no cover
    from eegmtl.mtl.trainer import Trainer

__all__ = ["ConflictProbe"]


class ConflictProbe(Callback):
    """Every ``every``-th training step, before the step, measures whether the per-task
    gradients of the unweighted losses w.r.t. the shared parameters conflict (some pair with a
    negative cosine; BatchNorm statistics frozen), counted by ``counter``
    (:class:`~eegmtl.mtl.metrics.ConflictCounter`; F-MTL, Phan et al., ICCV 2025, Fig. 3).

    When the step itself builds that matrix in float32 (parameter-level aggregators and flat
    variants: the clean (T, P) Jacobian at the same parameters and batch), the probe reads the
    step's minimum pairwise cosine (``MTLStep(diagnostics=True)`` for that step) instead of
    recomputing it (``reuse=True``, the default): same verdict up to float rounding, no extra
    passes. Otherwise it runs one forward and T backward passes of its own.
    """

    def __init__(self, every: int = 1, reuse: bool = True) -> None:
        if int(every) < 1:
            raise ValueError(f"conflict_every must be >= 1, got {every}.")
        self.every = int(every)
        self.reuse = bool(reuse)
        self.calls = 0
        self.counter = ConflictCounter()
        self.seconds = 0.0  # wall time of the probe's own passes (not saved)
        self._pending: bool | None = None

    @staticmethod
    def step_builds_matrix(step: Any) -> bool:
        """Whether ``step`` computes the float32 parameter-level matrix of the unweighted
        task losses (so its ``min_cosine`` diagnostic decides the conflict)."""
        return (
            not step.uses_fast_path and getattr(step, "autocast", None) is None
            and (getattr(step, "flat_active", False) or step.level == "parameters")
        )

    @staticmethod
    def matrix(trainer: Trainer, x: Any, targets: Mapping[str, Tensor]) -> Tensor:
        """(T, P) gradients of the unweighted task losses w.r.t. the shared parameters."""
        step = trainer.step
        with frozen_batchnorm(step.model):
            out = step.model.decode(step.model.encode(x))
            losses = compute_losses(out, targets, step.tasks)
            rows = []
            for t in range(len(step.tasks)):
                g = torch.autograd.grad(
                    losses[t], step.shared, retain_graph=t < len(step.tasks) - 1,
                    allow_unused=True,
                )
                rows.append(flatten(g, step.shared))
        return torch.stack(rows).detach()

    def on_batch_begin(self, trainer: Trainer, x: Any, targets: Mapping[str, Any]) -> None:
        if self.calls % self.every == 0:
            if self.reuse and self.step_builds_matrix(trainer.step):
                self._pending = trainer.step.diagnostics
                trainer.step.diagnostics = True
            else:
                t0 = time.perf_counter()
                self.counter.update(self.matrix(trainer, x, targets).cpu())
                self.seconds += time.perf_counter() - t0
        self.calls += 1

    def on_batch_end(self, trainer: Trainer, result: Any, record: dict[str, Any]) -> None:
        if self._pending is None:
            return
        trainer.step.diagnostics, self._pending = self._pending, None
        self.counter.n_batches += 1
        self.counter.n_conflicting += int(result.diagnostics["min_cosine"] < 0)

    def state_dict(self) -> dict[str, Any]:
        c = self.counter
        return {"calls": self.calls, "n_batches": c.n_batches, "n_conflicting": c.n_conflicting}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.calls = int(state["calls"])
        self.counter.n_batches = int(state["n_batches"])
        self.counter.n_conflicting = int(state["n_conflicting"])
