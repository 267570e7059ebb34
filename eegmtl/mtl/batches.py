"""Batch helpers of the trainer: split a ``(x, {task: target})`` batch, count its samples, and
:class:`SlicedLoader`, an unshuffled loader whose batches are views instead of copies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from torch import Tensor

from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader

__all__ = ["SlicedLoader", "batch_len", "split_batch"]


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


class SlicedLoader(MultiTaskLoader):
    """An unshuffled :class:`~eegmtl.mtl.data.MultiTaskLoader` whose batches are slices (views)
    of the dataset's tensors: the batches of ``MultiTaskLoader(dataset, batch_size,
    shuffle=False)``, without gathering a copy of every batch (and of a reconstruction target
    that is the input itself) on each pass. Meant for validation passes repeated every epoch;
    consumers must not modify the batches in place. Pinned batches (``pin_memory``) are copies
    as in the parent class.
    """

    def __init__(self, dataset: MultiTaskDataset, batch_size: int, *, drop_last: bool = False,
                 pin_memory: bool | None = None) -> None:
        super().__init__(dataset, batch_size, shuffle=False, drop_last=drop_last,
                         pin_memory=pin_memory)

    def __iter__(self) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        if self.pinned or self.shuffle:
            yield from super().__iter__()
            return
        ds, size = self.dataset, self.batch_size
        n = len(ds)
        stop = (n // size) * size if self.drop_last else n
        for start in range(0, stop, size):
            end = start + size
            yield ds.x[start:end], {k: v[start:end] for k, v in ds.targets.items()}
