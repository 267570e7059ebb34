"""In-memory multi-task data: a dataset of ``(x, {task: target})`` and a seeded batch loader."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["MultiTaskDataset", "MultiTaskLoader", "make_loader", "to_device"]


def _as_tensor(a: Any) -> Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, Tensor) else a)
    if t.is_floating_point() and t.dtype == torch.float64:
        t = t.float()
    return t


class MultiTaskDataset(Dataset):
    """Inputs and one target array per task, indexed together.

    Parameters
    ----------
    x : array-like or Tensor
        Inputs, first axis = samples. float64 is cast to float32.
    targets : mapping of str to array-like
        ``{task name: target}``, each with the same first-axis length as ``x``. A task whose
        target is the input itself (reconstruction) may pass ``x`` again (no copy is made for
        tensors).

    ``dataset[i]`` is ``(x[i], {task: target[i]})``; ``dataset.batch(idx)`` returns the same
    for an index tensor, which is what :class:`MultiTaskLoader` uses (no per-item collation).
    """

    def __init__(self, x: Any, targets: Mapping[str, Any]) -> None:
        self.x = _as_tensor(x)
        if not targets:
            raise ValueError("targets is empty: give {task name: target array}.")
        self.targets = {}
        for name, y in targets.items():
            y_t = self.x if y is x else _as_tensor(y)
            if y_t.shape[0] != self.x.shape[0]:
                raise ValueError(
                    f"target {name!r} has {y_t.shape[0]} samples but x has {self.x.shape[0]}."
                )
            self.targets[name] = y_t
        if self.x.shape[0] == 0:
            raise ValueError("the dataset is empty (x has no samples).")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        return self.x[i], {k: v[i] for k, v in self.targets.items()}

    def batch(self, idx: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Batch of the given indices."""
        return self.x[idx], {k: v[idx] for k, v in self.targets.items()}


class MultiTaskLoader:
    """Batches of a :class:`MultiTaskDataset` with seeded, per-epoch reshuffling.

    The order of epoch ``e`` is ``randperm(n, generator=manual_seed(seed + e))``, so it depends
    only on ``(seed, epoch)``: a resumed run sees exactly the batches of an uninterrupted one.
    The trainer calls :meth:`set_epoch`; without it each ``iter()`` advances the epoch.

    Parameters
    ----------
    dataset : MultiTaskDataset
    batch_size : int
    shuffle : bool, default True
    seed : int, default 0
    drop_last : bool, default False
    pin_memory : bool or None, default None
        Copy each CPU batch into page-locked memory, so the ``non_blocking`` copy to a GPU
        (:func:`to_device`) overlaps with compute. ``None``: decided by
        :func:`eegmtl.mtl.runtime.configure_runtime` (on for a CUDA trainer, off otherwise).
    """

    def __init__(
        self,
        dataset: MultiTaskDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        pin_memory: bool | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.pin_memory = pin_memory
        self.pinned = bool(pin_memory)  # what the iterator does (auto resolved by the trainer)
        self._epoch = 0
        self._explicit = False

    def set_epoch(self, epoch: int) -> None:
        """Fix the shuffling of the next iteration to that of ``epoch``."""
        self._epoch = int(epoch)
        self._explicit = True

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self._epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if not self._explicit:
            self._epoch += 1
        self._explicit = False
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            batch = self.dataset.batch(order[start : start + self.batch_size])
            yield _pinned(batch) if self.pinned else batch


def make_loader(
    dataset: MultiTaskDataset | tuple[Any, Mapping[str, Any]],
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
) -> MultiTaskLoader:
    """Build a :class:`MultiTaskLoader` from a dataset or an ``(x, targets)`` pair."""
    if not isinstance(dataset, MultiTaskDataset):
        x, targets = dataset
        dataset = MultiTaskDataset(x, targets)
    return MultiTaskLoader(dataset, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                           pin_memory=pin_memory)


def _pinned(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.pin_memory() if obj.device.type == "cpu" else obj
    if isinstance(obj, Mapping):
        return {k: _pinned(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_pinned(v) for v in obj)
    return obj


def host_floats(*tensors: Tensor) -> list[float]:
    """The values of ``tensors`` (flattened, in order) as Python floats, read back in one
    transfer (one host-device sync on an accelerator, not one per value); float64 holds every
    float32 / float16 value exactly, so each equals ``float(t[i])``."""
    return torch.cat([t.detach().reshape(-1).double() for t in tensors]).tolist()


def to_device(obj: Any, device: torch.device) -> Any:
    """Move tensors inside nested dicts/lists/tuples to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
