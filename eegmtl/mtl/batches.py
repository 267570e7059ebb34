"""Batch helpers of the trainer: split a ``(x, {task: target})`` batch, count its samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

__all__ = ["batch_len", "split_batch"]


def split_batch(batch: Any) -> tuple[Any, Mapping[str, Any] | None]:
    """``(x, targets)`` of a ``(x, {task: target})`` batch; ``(batch, None)`` for inputs only."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], Mapping):
        return batch[0], batch[1]
    return batch, None


def batch_len(x: Any) -> int:
    """Number of samples of an input batch (tensor, or nested list / tuple / dict of them)."""
    if isinstance(x, Tensor):
        return int(x.shape[0])
    if isinstance(x, (list, tuple)) and x:
        return batch_len(x[0])
    if isinstance(x, Mapping) and x:
        return batch_len(next(iter(x.values())))
    return 1
