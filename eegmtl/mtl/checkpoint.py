"""Atomic checkpoint files: write a temporary file in the same directory, fsync, ``os.replace``.

A crash (or a kill) during saving leaves either the previous checkpoint or the new one, never a
truncated file (:func:`eegmtl._io.atomic_open`: a temporary ``.<name>.<pid>.tmp`` next to the
target, fsync'ed, renamed over the target with :func:`os.replace`, folder fsync'ed where the OS
allows it; a temporary file left by a killed writer is removed by the next save).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from eegmtl._io import atomic_open

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(state: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``state`` with :func:`torch.save` atomically to ``path`` and return the path."""
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """Load a checkpoint written by :func:`save_checkpoint`.

    The file holds Python objects (RNG states, histories, weighting state), so it is loaded
    with ``weights_only=False``: only load checkpoints you wrote yourself.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train once with checkpoint_dir set, or call "
            "fit(resume=False)."
        )
    return torch.load(path, map_location=map_location, weights_only=False)
