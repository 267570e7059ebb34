"""Checkpoint files: atomic writes, readable errors, and a fingerprint of what was trained.

A crash (or a kill) during saving leaves either the previous checkpoint or the new one, never a
truncated file (:func:`eegmtl._io.atomic_open`: a temporary ``.<name>.<pid>.tmp`` next to the
target, fsync'ed, renamed over the target with :func:`os.replace`, folder fsync'ed where the OS
allows it; a temporary file left by a killed writer is removed by the next save).

A checkpoint stores a *fingerprint* (:func:`trainer_fingerprint`: model class and parameter
shapes, task names, weighting, aggregator and flat settings, optimiser, number of training batches,
plus anything the caller adds, e.g. a hash of the data). Resuming compares it with the current
one (:func:`check_fingerprint`) and raises :class:`CheckpointMismatchError` naming what differs,
so a checkpoint of other data or settings is never continued silently. A file that cannot be
read (truncated, not a checkpoint) raises :class:`CorruptCheckpointError` naming the path.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from eegmtl._io import atomic_open
from eegmtl.mtl.rng import get_rng_state, set_rng_state

__all__ = [
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "check_fingerprint",
    "load_checkpoint",
    "load_trainer_state",
    "resume_from",
    "save_checkpoint",
    "trainer_fingerprint",
    "trainer_state",
]


class CorruptCheckpointError(ValueError):
    """A checkpoint file exists but cannot be read (truncated, damaged, not a checkpoint)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was written for other data or other settings than the current fit."""


_FIX = (
    "Use a fresh checkpoint_dir for this run, or fit with resume=False to start over (the "
    "checkpoint is then overwritten)."
)


def save_checkpoint(state: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``state`` with :func:`torch.save` atomically to ``path`` and return the path."""
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """Load a checkpoint written by :func:`save_checkpoint`.

    The file holds Python objects (RNG states, histories, weighting state), so it is loaded
    with ``weights_only=False``: only load checkpoints you wrote yourself.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CorruptCheckpointError
        The file is truncated, damaged or not a checkpoint (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train once with checkpoint_dir set, or call "
            "fit(resume=False)."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - EOFError, UnpicklingError, RuntimeError, zip errors
        raise CorruptCheckpointError(
            f"the checkpoint {path} cannot be read ({type(err).__name__}: {err}); it is "
            f"truncated, damaged or not a checkpoint of this library. Delete it, then "
            f"{_FIX[0].lower()}{_FIX[1:]}"
        ) from err
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise CorruptCheckpointError(
            f"{path} does not hold a trainer checkpoint (got {type(state).__name__}"
            f"{' with keys ' + str(sorted(state)[:8]) if isinstance(state, dict) else ''}). "
            + _FIX
        )
    return state


def trainer_fingerprint(
    trainer: Any, train_loader: Any = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: model class and parameter shapes, task
    names, the step's settings (weighting, aggregator, level, flat, autocast), the optimiser
    class, the weight averaging (``ema_decay``, when set), the number of training batches, and
    ``extra`` (e.g. a data hash)."""
    import hashlib
    import json

    shapes = {k: list(v.shape) for k, v in trainer.model.state_dict().items()}
    step = trainer.step
    out: dict[str, Any] = {
        "model": type(trainer.model).__name__,
        "parameter_shapes": hashlib.sha256(
            json.dumps(shapes, sort_keys=True).encode()
        ).hexdigest()[:16],
        "tasks": [t.name for t in trainer.tasks],
        "weighting": type(step.weighting).__name__,
        "aggregator": type(step.aggregator).__name__,
        "level": getattr(step, "level", None),
        "weight_heads": getattr(step, "weight_heads", None),
        "flat": None if step.flat is None else repr(step.flat),
        "autocast": getattr(step, "autocast", None),
        "optimizer": type(trainer.optimizer).__name__,
        "train_batches": None if train_loader is None else len(train_loader),
    }
    if getattr(trainer, "ema_decay", None) is not None:  # absent when off: older checkpoints
        out["ema_decay"] = trainer.ema_decay
    for key, value in (extra or {}).items():
        out[str(key)] = value
    return out


def check_fingerprint(
    saved: Mapping[str, Any] | None, current: Mapping[str, Any], path: str | os.PathLike[str]
) -> None:
    """Raise :class:`CheckpointMismatchError` when ``saved`` and ``current`` differ.

    Checkpoints without a fingerprint (written before fingerprints existed) pass unchecked.
    """
    if saved is None:
        return
    keys = sorted(set(saved) | set(current))
    diffs = [
        f"{k}: checkpoint {saved.get(k, '<absent>')!r}, now {current.get(k, '<absent>')!r}"
        for k in keys if saved.get(k) != current.get(k)
    ]
    if diffs:
        raise CheckpointMismatchError(
            f"the checkpoint {path} was written for other data or settings than this fit "
            f"({'; '.join(diffs)}), so resuming it would silently continue another run. "
            + _FIX
        )


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
        "fingerprint": getattr(trainer, "fingerprint_", None),
    }


def load_trainer_state(
    trainer: Any, state: Mapping[str, Any], path: str | os.PathLike[str] | None = None
) -> None:
    """Restore a :func:`trainer_state` into ``trainer`` (callback states are kept in
    ``trainer._callback_states`` for the callbacks built by the next ``fit``). ``path`` (where
    ``state`` was read) is named in errors.

    Raises
    ------
    CheckpointMismatchError
        The model, optimiser or step state does not fit the trainer (another configuration).
    """
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        if trainer.scheduler is not None and state.get("scheduler") is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.step.load_state_dict(state["step"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CheckpointMismatchError(
            f"the checkpoint {path or '(state)'} belongs to another model or training "
            f"configuration ({type(err).__name__}: {str(err).splitlines()[0]}). " + _FIX
        ) from err
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


def resume_from(trainer: Any, path: Path | None) -> bool:
    """Load the checkpoint at ``path`` into ``trainer`` after checking its fingerprint against
    ``trainer.fingerprint_``; ``False`` (with a warning) when there is no file yet.

    Raises
    ------
    ValueError
        ``path`` is None (no ``checkpoint_dir``).
    CheckpointMismatchError, CorruptCheckpointError
        See :func:`check_fingerprint`, :func:`load_checkpoint`.
    """
    if path is None:
        raise ValueError("resume=True needs checkpoint_dir.")
    if not path.is_file():
        warnings.warn(f"no checkpoint at {path}; training from scratch.", stacklevel=3)
        return False
    state = load_checkpoint(path, map_location=trainer.device)
    check_fingerprint(state.get("fingerprint"), trainer.fingerprint_, path)
    load_trainer_state(trainer, state, path)
    return True
