"""Per-task losses of a batch, with clear errors for missing outputs/targets and NaN/Inf.

Used by the training step (:class:`~eegmtl.mtl.step.MTLStep`), the evaluation passes and the
probes, so every part of the core computes and checks the task losses the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.tasks import Task

__all__ = ["compute_losses"]


def compute_losses(
    outputs: Mapping[str, Tensor],
    targets: Mapping[str, Any],
    tasks: Sequence[Task],
    *,
    check_finite: bool = True,
) -> Tensor:
    """Per-task scalar losses (T,) in task order, with clear errors for missing keys/NaN.

    ``check_finite=False`` skips the NaN/Inf check (it reads the losses on the host).
    """
    losses = []
    for task in tasks:
        if task.name not in outputs:
            raise KeyError(
                f"the model's decode() returned no output for task {task.name!r} "
                f"(got {sorted(outputs)})."
            )
        if task.name not in targets:
            raise KeyError(
                f"the batch has no target for task {task.name!r} (got {sorted(targets)}); "
                "the loader must yield (x, {task name: target})."
            )
        loss = task.loss(outputs[task.name], targets[task.name])
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError(
                f"the loss of task {task.name!r} must be a scalar tensor (mean over the batch), "
                f"got {type(loss).__name__} of shape {getattr(loss, 'shape', None)}."
            )
        losses.append(loss)
    stacked = torch.stack(losses)
    if check_finite and not torch.isfinite(stacked.detach()).all():
        bad = [t.name for t, v in zip(tasks, stacked.detach().tolist()) if not _finite(v)]
        raise FloatingPointError(
            f"non-finite loss for task(s) {bad} (values {stacked.detach().tolist()}): the "
            "training diverged or the batch holds NaN/Inf; lower the learning rate or check "
            "the inputs."
        )
    return stacked


def _finite(v: float) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


