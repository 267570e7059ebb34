"""Device selection and seeding shared by every trainer (torch + numpy only)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = [
    "autotune_convolutions",
    "configure_runtime",
    "deterministic_requested",
    "select_device",
    "seed_everything",
]


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Return the torch device to train on.

    Parameters
    ----------
    device : str, torch.device or None
        ``None`` or ``"auto"`` picks ``cuda`` when a GPU is visible, else ``cpu``.
        Anything else is passed to :class:`torch.device`; asking for ``cuda`` on a machine
        without a GPU raises a :class:`RuntimeError` that says so.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but torch sees no CUDA GPU "
            f"(torch {torch.__version__}). Use device='auto' or 'cpu', or install a CUDA build "
            "of torch (see README, 'GPU')."
        )
    return dev


def seed_everything(seed: int | None, *, deterministic: bool = False) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (CPU and CUDA).

    Parameters
    ----------
    seed : int or None
        ``None`` leaves the generators alone.
    deterministic : bool
        Also ask torch for deterministic algorithms (``cudnn.benchmark=False``,
        ``cudnn.deterministic=True``). On the CPU our models are deterministic already.
    """
    if seed is None:
        return
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds legacy global-RNG users (MNE, sklearn)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def deterministic_requested() -> bool:
    """Whether deterministic algorithms were asked for (``seed_everything(deterministic=True)``,
    ``torch.use_deterministic_algorithms(True)`` or ``cudnn.deterministic``)."""
    return bool(torch.backends.cudnn.deterministic or torch.are_deterministic_algorithms_enabled())


def autotune_convolutions(device: str | torch.device) -> bool:
    """Switch cuDNN's autotuner on for a fit on ``device``; returns whether it is on.

    On CUDA, and unless deterministic algorithms were asked for
    (:func:`deterministic_requested`), ``torch.backends.cudnn.benchmark`` is set: cuDNN times
    its convolution algorithms once per input shape and keeps the fastest. Worth it when a fit
    sees a handful of batch shapes (fixed-size training batches, a short last one), as every
    trainer here does. On the CPU nothing changes. The setting is process-wide and stays on.
    """
    if torch.device(device).type == "cuda" and not deterministic_requested():
        torch.backends.cudnn.benchmark = True
    return bool(torch.backends.cudnn.benchmark)


def configure_runtime(device: torch.device, *loaders: Any) -> dict[str, bool]:
    """Device-dependent speed settings before a fit; returns what was decided.

    - ``torch.backends.cudnn.benchmark`` (cuDNN times its convolution algorithms once per
      input shape and keeps the fastest) is switched on only when ``device`` is CUDA, every
      loader yields fixed-shape batches (:class:`~eegmtl.mtl.data.MultiTaskLoader`: in-memory
      tensors, at most two batch sizes) and no deterministic mode was requested
      (:func:`deterministic_requested`); otherwise it is left as it is. The setting is
      process-wide and stays on after the fit.
    - every :class:`~eegmtl.mtl.data.MultiTaskLoader` with ``pin_memory=None`` pins its
      batches when ``device`` is CUDA (page-locked host memory, asynchronous copies), and not
      otherwise; an explicit ``pin_memory`` is kept.

    Nothing changes on the CPU, so CPU results are unaffected.
    """
    from eegmtl.mtl.data import MultiTaskLoader

    cuda = torch.device(device).type == "cuda"
    given = [ld for ld in loaders if ld is not None]
    fixed = all(isinstance(ld, MultiTaskLoader) for ld in given)
    if fixed:
        autotune_convolutions(device)
    pinned = False
    for ld in given:
        if isinstance(ld, MultiTaskLoader):
            ld.pinned = cuda if ld.pin_memory is None else bool(ld.pin_memory)
            pinned = pinned or ld.pinned
    return {"cudnn_benchmark": bool(torch.backends.cudnn.benchmark), "pin_memory": pinned}
