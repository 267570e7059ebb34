"""Atomic checkpoint files: write a temporary file in the same directory, fsync, ``os.replace``.

A crash (or a kill) during saving leaves either the previous checkpoint or the new one, never a
truncated file (:func:`eegmtl._io.atomic_open`: a temporary ``.<name>.<pid>.tmp`` next to the
target, fsync'ed, renamed over the target with :func:`os.replace`, folder fsync'ed where the OS
allows it; a temporary file left by a killed writer is removed by the next save).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from eegmtl._io import atomic_open
from eegmtl.mtl.rng import get_rng_state, set_rng_state

__all__ = ["load_checkpoint", "load_trainer_state", "save_checkpoint", "trainer_state"]


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


def trainer_state(trainer: Any) -> dict[str, Any]:
    """Everything a :class:`~eegmtl.mtl.trainer.Trainer` needs to resume training exactly:
    model, optimiser, scheduler, step (weighting / aggregator state), global RNG states,
    history, early-stopping and callback states."""
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        "step": trainer.step.state_dict(),
        "rng": get_rng_state(),
        "history": copy.deepcopy(trainer.history),
        "epoch": trainer.epoch_,
        "global_step": trainer.global_step_,
        "best_score": trainer.best_score_,
        "best_epoch": trainer.best_epoch_,
        "best_state": trainer.best_state_,
        "best_weights": trainer.best_weights_,
        "wait": trainer.wait_,
        "stopped": trainer.stopped_,
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
    }


def load_trainer_state(trainer: Any, state: Mapping[str, Any]) -> None:
    """Restore a :func:`trainer_state` into ``trainer`` (callback states are kept in
    ``trainer._callback_states`` for the callbacks built by the next ``fit``)."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.step.load_state_dict(state["step"])
    set_rng_state(state["rng"])
    trainer.history = copy.deepcopy(state["history"])
    trainer.epoch_ = int(state["epoch"])
    trainer.global_step_ = int(state["global_step"])
    trainer.best_score_ = state["best_score"]
    trainer.best_epoch_ = state["best_epoch"]
    trainer.best_state_ = state["best_state"]
    trainer.best_weights_ = state.get("best_weights")
    trainer.wait_ = int(state["wait"])
    trainer.stopped_ = bool(state["stopped"])
    trainer._callback_states = list(state.get("callbacks", []))
