"""Exact resume of a skorch / braindecode fit from an epoch checkpoint.

:class:`EpochCheckpoint` is a skorch callback that writes, after an epoch, everything the next
epochs depend on: network and optimiser state, the history, the early-stopping state (misses,
threshold, best epoch and best weights), the global RNG states (torch, CUDA, numpy, random:
batch order and dropout) and the random generators of the training-batch augmentation
transforms. :func:`resume_fit` restores such a checkpoint into a freshly initialised net and
trains the remaining epochs, so an interrupted fit ends with the same weights, history and
predictions as an uninterrupted one (on the same machine and library versions).

Files go through :func:`eegmtl.mtl.checkpoint.save_checkpoint` (atomic) and carry a
fingerprint (data digest and settings); :func:`eegmtl.mtl.checkpoint.check_fingerprint`
refuses a checkpoint of another fit. Imports skorch: import this module only where braindecode
is installed (:func:`eegmtl._compat.import_braindecode`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skorch.callbacks import Callback

from eegmtl.eeg.augmentation import transform_generators
from eegmtl.mtl.checkpoint import (
    CheckpointMismatchError,
    check_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from eegmtl.mtl.rng import get_rng_state, set_rng_state

__all__ = ["EpochCheckpoint", "load_fit_checkpoint", "resume_fit"]

#: early-stopping attributes that change during training (skorch ``EarlyStopping``)
_ES_STATE = ("misses_", "dynamic_threshold_", "best_epoch_", "best_model_weights_")


def _early_stopping(net: Any) -> Any:
    from skorch.callbacks import EarlyStopping

    for _, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, EarlyStopping):
            return cb
    return None


class EpochCheckpoint(Callback):
    """skorch callback: write the fit's state to ``path`` after an epoch.

    Parameters
    ----------
    path : path-like
        Checkpoint file (written atomically).
    fingerprint : mapping
        What a resumed fit must agree on (stored with the state).
    transforms : sequence, optional
        The training-batch augmentation transforms (their generators are saved).
    every_s : float, default 30
        Minimum seconds between two writes (the first epoch is always written), so that
        short epochs do not spend their time on disk writes.

    Notes
    -----
    Put it after the early-stopping callback: skorch calls callbacks in order, and the state
    written must include this epoch's early-stopping update. An epoch at which early stopping
    ends the fit is not written (training is over).
    """

    def __init__(self, path: str | Path, fingerprint: Mapping[str, Any],
                 transforms: Sequence[Any] | None = None, every_s: float = 30.0) -> None:
        self.path = Path(path)
        self.fingerprint = dict(fingerprint)
        self.transforms = transforms
        self.every_s = float(every_s)
        #: a checkpoint to restore at the next ``on_train_begin`` (set by :func:`resume_fit`)
        self.restore: Mapping[str, Any] | None = None
        self._elapsed_before = 0.0  # training seconds of the fit before this process
        self._t0 = time.perf_counter()
        self._last: float | None = None

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self._t0 = time.perf_counter()
        if self.restore is None:
            return
        es = _early_stopping(net)  # EarlyStopping.on_train_begin has just reset its state
        if es is not None and self.restore.get("early_stopping") is not None:
            for k, v in self.restore["early_stopping"].items():
                setattr(es, k, v)
        saved = self.restore.get("augmentation", [])
        for gen, st in zip(transform_generators(self.transforms), saved):
            gen.set_state(st)
        self._elapsed_before = float(self.restore.get("elapsed", 0.0))
        set_rng_state(self.restore["rng"])  # last: nothing may draw after it
        self.restore = None

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        if self._last is not None and now - self._last < self.every_s:
            return
        self._last = now
        es = _early_stopping(net)
        save_checkpoint({
            "model": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "history": net.history.to_list(),
            "epoch": len(net.history),
            "early_stopping": None if es is None else {
                k: copy.deepcopy(getattr(es, k)) for k in _ES_STATE if hasattr(es, k)},
            "augmentation": [g.get_state() for g in transform_generators(self.transforms)],
            "rng": get_rng_state(),
            "elapsed": self._elapsed_before + now - self._t0,
            "fingerprint": self.fingerprint,
        }, self.path)


def load_fit_checkpoint(path: str | Path, fingerprint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if there is one, checked against ``fingerprint``.

    Raises
    ------
    CheckpointMismatchError
        It was written for other data or settings (what differs is named).
    CorruptCheckpointError
        It cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        return None
    state = load_checkpoint(path)
    check_fingerprint(state.get("fingerprint"), dict(fingerprint), path)
    return state


def resume_fit(net: Any, state: Mapping[str, Any], callback: EpochCheckpoint, X: Any,
               y: Any) -> Any:
    """Continue the fit of a skorch ``net`` (built as for the interrupted fit, not yet fitted)
    from ``state`` (a checkpoint of the same fit) for its remaining ``max_epochs``;
    ``callback`` is the net's :class:`EpochCheckpoint`. Returns the net."""
    from skorch.history import History

    if hasattr(net, "signal_args_set_"):  # braindecode: the module's signal arguments (n_chans,
        net.signal_args_set_ = True       # n_times, n_outputs) are given, none to infer
    net.initialize()
    try:
        net.module_.load_state_dict(state["model"])
        net.optimizer_.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointMismatchError(
            f"the checkpoint {callback.path} belongs to another network ({type(err).__name__}: "
            f"{str(err).splitlines()[0]}); delete it or fit with resume=False.") from err
    net.history_ = History(copy.deepcopy(state["history"]))
    callback.restore = state
    # also with no epoch left (killed after the last checkpoint): the train-end hooks still run
    # (early stopping restores the best weights)
    net.partial_fit(X, y, epochs=max(int(net.max_epochs) - int(state["epoch"]), 0))
    return net
