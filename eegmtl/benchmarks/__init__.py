"""Vision MTL benchmarks: data builders and loaders, the two-task landscape.

- :mod:`~eegmtl.benchmarks.multimnist` -- MultiMNIST / MultiFashion / MultiFashion+MNIST from
  the original IDX files (ParetoMTL protocol, cached, validation hold-out);
- :mod:`~eegmtl.benchmarks.scenes` -- NYUv2 and Cityscapes in the MTAN ``.npy`` layout;
- :mod:`~eegmtl.benchmarks.celeba` -- CelebA, 40 binary attributes;
- :mod:`~eegmtl.benchmarks.office` -- Office-31 / Office-Home, multi-input (one task per domain);
- :mod:`~eegmtl.benchmarks.toy` -- the CAGrad / Nash-MTL / Aligned-MTL two-task landscape;
- :mod:`~eegmtl.benchmarks.idx` -- IDX file reader.

Models live in :mod:`eegmtl.models.vision`. Nothing is downloaded: missing data raise
:class:`eegmtl.config.DataNotFoundError` saying what to put where.
"""

from __future__ import annotations

from eegmtl.benchmarks.celeba import load_celeba
from eegmtl.benchmarks.datasets import MultiInputSplits, MultiTaskSplits, MultiTaskTensorDataset
from eegmtl.benchmarks.idx import IDXFormatError, load_mnist_split, read_idx
from eegmtl.benchmarks.multimnist import MultiMNISTConfig, load_multimnist
from eegmtl.benchmarks.office import load_office
from eegmtl.benchmarks.scenes import load_cityscapes, load_nyuv2, load_scene_splits
from eegmtl.benchmarks.toy import run_trajectory, toy_jacobian, toy_losses

__all__ = [
    "IDXFormatError",
    "MultiInputSplits",
    "MultiMNISTConfig",
    "MultiTaskSplits",
    "MultiTaskTensorDataset",
    "load_celeba",
    "load_cityscapes",
    "load_mnist_split",
    "load_multimnist",
    "load_nyuv2",
    "load_office",
    "load_scene_splits",
    "read_idx",
    "run_trajectory",
    "toy_jacobian",
    "toy_losses",
]


def __getattr__(name: str):  # the runner pulls in the trainer and pandas: import on first use
    if name in {"run_benchmark", "run_grid"}:
        from eegmtl.benchmarks import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'eegmtl.benchmarks' has no attribute {name!r}")
