"""Device selection and seeding shared by every trainer (torch + numpy only)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["select_device", "seed_everything"]


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
