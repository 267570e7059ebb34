"""Atomic checkpoint files: write a temporary file in the same directory, fsync, ``os.replace``.

A crash (or a kill) during saving leaves either the previous checkpoint or the new one, never a
truncated file: the data is written to ``.<name>.tmp-<pid>`` next to the target, flushed and
fsync'ed, then atomically renamed over the target (POSIX ``rename`` semantics of
:func:`os.replace`), and the directory entry is fsync'ed where the OS allows it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(state: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``state`` with :func:`torch.save` atomically to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename durable (not supported on every OS / file system)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


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
