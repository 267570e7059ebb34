"""Small torch dataset containers shared by the vision benchmarks."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MultiInputSplits",
    "MultiTaskSplits",
    "MultiTaskTensorDataset",
    "load_image",
]


class MultiTaskTensorDataset(Dataset):
    """In-memory data set of inputs ``x`` and a dict of per-task targets.

    ``ds[i] == (x[i], {task: targets[task][i]})``; the default ``DataLoader`` collate turns a
    batch into ``(x_batch, {task: y_batch})``, the layout the MTL step expects. ``x`` and the
    targets are also exposed as attributes for fast batched indexing.
    """

    def __init__(self, x: Tensor, targets: Mapping[str, Tensor]) -> None:
        if not targets:
            raise ValueError("targets must hold at least one task.")
        n = x.shape[0]
        for name, y in targets.items():
            if y.shape[0] != n:
                raise ValueError(
                    f"target {name!r} has {y.shape[0]} rows but x has {n}; every target needs "
                    "one row per sample."
                )
        self.x = x
        self.targets = dict(targets)

    @property
    def task_names(self) -> list[str]:
        return list(self.targets)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        return self.x[index], {k: v[index] for k, v in self.targets.items()}

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> MultiTaskTensorDataset:
        """A new data set holding the given rows (copies)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return MultiTaskTensorDataset(self.x[idx], {k: v[idx] for k, v in self.targets.items()})


@dataclass
class MultiTaskSplits:
    """Train / validation / test splits of a benchmark plus provenance information."""

    train: Dataset
    val: Dataset
    test: Dataset
    task_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class MultiInputSplits:
    """Splits of a multi-input benchmark (one input set per task, e.g. Office-31 domains):
    ``train[task]``, ``val[task]``, ``test[task]`` are data sets of ``(x, y)``."""

    train: dict[str, Dataset]
    val: dict[str, Dataset]
    test: dict[str, Dataset]
    task_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)


#: ImageNet channel statistics used by torchvision / LibMTL normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
) -> Tensor:
    """Read an image file as a float32 (3, H, W) tensor in [0, 1] (RGB).

    ``size`` = (height, width) resizes bilinearly (PIL, as ``torchvision.transforms.Resize``);
    ``mean``/``std`` then normalise per channel. Needs Pillow (installed with matplotlib).
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - Pillow ships with matplotlib
        raise ImportError("reading JPEG/PNG images needs Pillow: pip install pillow") from err
    with Image.open(path) as img:
        img = img.convert("RGB")
        if size is not None:
            img = img.resize((int(size[1]), int(size[0])), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
    out = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    if mean is not None and std is not None:
        m = torch.tensor(mean, dtype=out.dtype).view(-1, 1, 1)
        s = torch.tensor(std, dtype=out.dtype).view(-1, 1, 1)
        out = (out - m) / s
    return out
