"""Callbacks of :class:`~eegmtl.mtl.trainer.Trainer`: everything around the training step.

The trainer's loop only runs the steps and the validation pass and writes one record per step
and per epoch; the rest is done by callbacks, called in list order at fixed points:

- ``on_fit_begin(trainer, train_loader, val_loader)`` / ``on_fit_end(trainer)``;
- ``on_epoch_begin(trainer, epoch)``;
- ``on_batch_begin(trainer, x, targets)`` -- before the step (e.g. the conflict probe);
- ``on_batch_end(trainer, result, record)`` -- after the step, before the weighting's
  ``after_step``; a callback may put ``"val_losses"`` (a ``(T,)`` tensor) into
  ``trainer.step_context`` to hand them to ``after_step`` (:class:`InterleavedValidation`);
- ``on_steps_end(trainer, epoch)`` -- after the epoch's last step, before the validation pass
  (:class:`WeightAveraging` puts the averaged weights in the model here);
- ``on_evaluate(trainer, result)`` -- after every validation pass, may add keys;
- ``on_epoch_metrics(trainer, epoch, record)`` -- after the epoch's train and validation keys,
  before the weighting's ``after_epoch``; may add or replace keys;
- ``on_epoch_end(trainer, epoch, record)`` -- after the epoch record is complete (train and
  validation keys, weights, lr); callbacks may add keys (before those reading the monitor);
- ``on_epoch_saved(trainer, epoch)`` -- after the epoch counter is advanced (checkpoints).

Every callback's persistent state lives either on the trainer (best score, early-stopping
counter, ...; saved in its checkpoint) or in the callback's ``state_dict()``, which the trainer
saves and restores with its own, so a resumed fit is exact.

Built-in callbacks, created by the trainer from its arguments (in this order):
:class:`InterleavedValidation` (MixNet's validation batch after every step, Autthasan et al.,
IEEE IoT J. 2024, official ``mixnet/trainer.py``), with ``ema_decay`` :class:`WeightAveraging`
(validation and model selection on an exponential moving average of the weights; Polyak &
Juditsky, 1992), :class:`ModelSelection` (best epoch and its weights), :class:`EarlyStopping`,
:class:`LRSchedule`, :class:`Checkpoint` (atomic ``last.pt`` after every epoch) and
:class:`ProgressBar` (tqdm). Optional: :class:`MeanMetric` (e.g. the mean accuracy over tasks,
to select epochs on) and :class:`~eegmtl.mtl.conflict_probe.ConflictProbe` (fraction of
mini-batches with conflicting task gradients; Phan et al., F-MTL, ICCV 2025, Fig. 3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.data import MultiTaskLoader, host_floats, to_device
from eegmtl.mtl.step import compute_losses

if TYPE_CHECKING:  # pragma: no cover
    from eegmtl.mtl.trainer import Trainer

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "InterleavedValidation",
    "LRSchedule",
    "MeanMetric",
    "ModelSelection",
    "ProgressBar",
    "WeightAveraging",
]


class Callback:
    """Base class: every hook does nothing; ``state_dict`` is empty."""

    def on_fit_begin(self, trainer: Trainer, train_loader: Any, val_loader: Any) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Before the first step of ``epoch``."""

    def on_batch_begin(self, trainer: Trainer, x: Any, targets: Mapping[str, Any]) -> None:
        """Before the step on one batch (already on the trainer's device)."""

    def on_batch_end(self, trainer: Trainer, result: Any, record: dict[str, Any]) -> None:
        """After the step; ``record`` is the step's history record."""

    def on_steps_end(self, trainer: Trainer, epoch: int) -> None:
        """After the last step of ``epoch``, before its validation pass."""

    def on_evaluate(self, trainer: Trainer, result: dict[str, float]) -> None:
        """After a validation pass; may add keys to ``result``."""

    def on_epoch_metrics(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        """After the epoch's train and validation keys; may add or replace keys."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        """After the epoch's record is complete (lr and loss weights included)."""

    def on_epoch_saved(self, trainer: Trainer, epoch: int) -> None:
        """After ``trainer.epoch_`` has been advanced past ``epoch``."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch (also after an exception)."""

    def state_dict(self) -> dict[str, Any]:
        """State to restore on resume (default: none)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class InterleavedValidation(Callback):
    """MixNet's interleaved validation: after every training step, one inference-mode forward
    pass on the next validation batch (batch size ``N_val // n_train_batches`` unless
    ``batch_size`` is given); its per-task losses go to the weighting's ``after_step`` (adaptive
    gradient blending) and the step record. At the epoch end ``val_loss`` becomes the epoch
    mean of these losses weighted by the loss weights in force at each step (the original's
    monitored value), and ``val_interleaved_<task>_loss`` their unweighted means.

    Parameters
    ----------
    batch_size : int or None
        Override ``N_val // n_train_batches``.
    seed : int or None
        Seed of the validation-batch order (``seed + 7919``).
    """

    def __init__(self, batch_size: int | None = None, seed: int | None = None) -> None:
        self.batch_size = batch_size
        self.seed = seed
        self.loader: Any = None

    def on_fit_begin(self, trainer: Trainer, train_loader: Any, val_loader: Any) -> None:
        if val_loader is None:
            raise ValueError(
                "interleaved_validation=True needs a val_loader (MixNet validates on one "
                "batch after every step)."
            )
        dataset = getattr(val_loader, "dataset", None)
        if dataset is None:
            raise ValueError(
                "interleaved_validation needs a validation loader with a .dataset "
                "(a MultiTaskLoader or a torch DataLoader)."
            )
        bs = self.batch_size or max(1, len(dataset) // max(1, len(train_loader)))
        if isinstance(val_loader, MultiTaskLoader):
            self.loader = MultiTaskLoader(dataset, bs, shuffle=True,
                                          seed=(self.seed or 0) + 7919)
        else:
            self.loader = torch.utils.data.DataLoader(
                dataset, batch_size=bs, shuffle=False, collate_fn=val_loader.collate_fn
            )

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)
        self._iter = iter(self.loader)
        self._sum: Tensor | None = None
        self._weighted = 0.0
        self._n = 0

    def _next_batch(self) -> Any:
        try:
            return next(self._iter)
        except StopIteration:  # cycle
            self._iter = iter(self.loader)
            return next(self._iter)

    def on_batch_end(self, trainer: Trainer, result: Any, record: dict[str, Any]) -> None:
        x, y = self._next_batch()
        model = trainer.model
        model.eval()
        try:
            with torch.inference_mode():
                out = model.decode(model.encode(to_device(x, trainer.device)))
                losses = compute_losses(out, to_device(y, trainer.device), trainer.tasks).clone()
        finally:
            model.train()
        self._sum = losses.double() if self._sum is None else self._sum + losses.double()
        *values, weighted = host_floats(losses, (result.weights * losses).sum())  # one read-back
        self._weighted += weighted
        self._n += 1
        trainer.step_context["val_losses"] = losses
        for i, name in enumerate(trainer.task_names):
            record[f"val_loss_{name}"] = values[i]

    def on_epoch_metrics(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        if self._n == 0 or self._sum is None:
            return
        record["val_loss"] = self._weighted / self._n
        for i, name in enumerate(trainer.task_names):
            record[f"val_interleaved_{name}_loss"] = float(self._sum[i] / self._n)


class WeightAveraging(Callback):
    r"""Exponential moving average (EMA) of the weights, validated and selected in their place.

    After every training step the averaged weights follow the trained ones,
    :math:`\bar\theta_t = \beta\,\bar\theta_{t-1} + (1-\beta)\,\theta_t` with
    :math:`\bar\theta_1 = \theta_1` (iterate averaging, Polyak & Juditsky, SIAM J. Control
    Optim. 1992, with exponential instead of equal weights, as the "mean teacher" of Tarvainen &
    Valpola, NeurIPS 2017, Sec. 2), parameters and buffers (BatchNorm statistics) alike, with
    :class:`torch.optim.swa_utils.AveragedModel` and
    :func:`~torch.optim.swa_utils.get_ema_multi_avg_fn`. Before the epoch's validation pass the
    model is given the averaged weights, so the validation keys, the monitored value, the best
    epoch's weights (:class:`ModelSelection`) and the learning-rate schedule all see them; after
    the epoch (before the checkpoint) the trained weights are put back and training continues
    from them. At the end of the fit the model holds the averaged weights (those of the best
    epoch when the trainer restores the best). The interleaved validation batches and the
    gradient steps use the trained weights, and so does the ``val_loss`` that
    :class:`InterleavedValidation` reports (MixNet's default monitor): monitor a full-pass key
    (e.g. ``"val_classification_loss"``) to select epochs on the average.

    Parameters
    ----------
    decay : float
        :math:`\beta \in (0, 1)`, per step; the average spans about ``1 / (1 - decay)`` steps.
    """

    def __init__(self, decay: float) -> None:
        decay = float(decay)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) (per step), got {decay}.")
        self.decay = decay
        self.averaged: Any = None
        self._trained: dict[str, Tensor] | None = None
        self._pending: Mapping[str, Any] | None = None

    def on_fit_begin(self, trainer: Trainer, train_loader: Any, val_loader: Any) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.averaged = AveragedModel(trainer.model, multi_avg_fn=get_ema_multi_avg_fn(
            self.decay), use_buffers=True)
        if self._pending is not None:
            self.averaged.load_state_dict(self._pending)
            self._pending = None
        self._trained = None

    def on_batch_end(self, trainer: Trainer, result: Any, record: dict[str, Any]) -> None:
        self.averaged.update_parameters(trainer.model)

    def _state(self, module: torch.nn.Module) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_steps_end(self, trainer: Trainer, epoch: int) -> None:
        self._trained = self._state(trainer.model)
        trainer.model.load_state_dict(self.averaged.module.state_dict())

    def on_epoch_saved(self, trainer: Trainer, epoch: int) -> None:
        if self._trained is not None:
            trainer.model.load_state_dict(self._trained)
            self._trained = None

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.averaged is not None and int(self.averaged.n_averaged) > 0:
            trainer.model.load_state_dict(self.averaged.module.state_dict())
        self._trained = None

    def state_dict(self) -> dict[str, Any]:
        return {} if self.averaged is None else {"averaged": self._state(self.averaged)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._pending = state.get("averaged")


class MeanMetric(Callback):
    """Adds ``name`` = mean of ``<task>_<metric>`` over the tasks that report ``metric`` to
    every validation result
    (e.g. ``MeanMetric("avg_accuracy", "accuracy")``, monitored as ``"val_avg_accuracy"``)."""

    def __init__(self, name: str, metric: str) -> None:
        self.name = name
        self.metric = metric

    def on_evaluate(self, trainer: Trainer, result: dict[str, float]) -> None:
        keys = [f"{n}_{self.metric}" for n in trainer.task_names if f"{n}_{self.metric}" in result]
        if not keys:
            raise KeyError(
                f"no task reports the metric {self.metric!r}; give the tasks a metrics="
                f"{{{self.metric!r}: fn}} or choose another metric."
            )
        result[self.name] = float(np.mean([result[k] for k in keys]))


class ModelSelection(Callback):
    """Tracks the best epoch of ``trainer.monitor`` (``trainer.mode``, ``trainer.min_delta``):
    ``trainer.best_score_``, ``best_epoch_``, ``best_state_`` (a copy of the weights),
    ``best_weights_`` (the loss weights in force) and the epochs since the last improvement
    ``trainer.wait_``; restores the best weights when the fit completes and
    ``trainer.restore_best``."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        if trainer.monitor not in record:
            raise KeyError(
                f"monitor key {trainer.monitor!r} is not in the epoch record; available: "
                f"{sorted(k for k in record if k not in ('epoch', 'lr'))}."
            )
        value = float(record[trainer.monitor])
        if trainer.improved(value):
            trainer.best_score_ = value
            trainer.best_epoch_ = epoch
            trainer.best_state_ = {
                k: v.detach().clone() for k, v in trainer.model.state_dict().items()
            }
            trainer.best_weights_ = [float(w) for w in trainer.last_result.weights]
            trainer.wait_ = 0
        else:
            trainer.wait_ += 1

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.fit_completed_ and trainer.restore_best and trainer.best_state_ is not None:
            trainer.model.load_state_dict(trainer.best_state_)


class LRSchedule(Callback):
    """Steps ``trainer.scheduler`` once per epoch: with the monitored value for
    ReduceLROnPlateau (MixNet: x0.5 after 5 stale epochs, down to 1e-4), without otherwise."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        scheduler = trainer.scheduler
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(float(record[trainer.monitor]))
        else:
            scheduler.step()


class EarlyStopping(Callback):
    """Stops after ``patience`` epochs without improvement of the monitored key (counted by
    :class:`ModelSelection` in ``trainer.wait_``)."""

    def __init__(self, patience: int) -> None:
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}.")
        self.patience = int(patience)

    def on_epoch_saved(self, trainer: Trainer, epoch: int) -> None:
        if trainer.wait_ >= self.patience:
            trainer.stopped_ = True


class Checkpoint(Callback):
    """Writes the whole training state atomically to ``path`` after an epoch
    (:meth:`Trainer.save_checkpoint`), after every epoch or, with ``every_s``, once at least
    that many seconds have passed since the last write; ``fit(..., resume=True)`` continues
    from it. The training loader's ``state_dict()``, when it has one (e.g. the random states
    of a loader that augments its batches), is saved with it and restored on resume."""

    def __init__(self, path: str | Path, every_s: float | None = None) -> None:
        self.path = Path(path)
        self.every_s = every_s
        self._loader: Any = None
        self._restore: Mapping[str, Any] | None = None
        self._last = 0.0

    def on_fit_begin(self, trainer: Trainer, train_loader: Any, val_loader: Any) -> None:
        self._loader, self._last = train_loader, time.monotonic()
        if self._restore is not None and hasattr(train_loader, "load_state_dict"):
            train_loader.load_state_dict(self._restore)
        self._restore = None

    def on_epoch_saved(self, trainer: Trainer, epoch: int) -> None:
        if self.every_s and time.monotonic() - self._last < self.every_s:
            return
        trainer.save_checkpoint(self.path)
        self._last = time.monotonic()

    def state_dict(self) -> dict[str, Any]:
        has = hasattr(self._loader, "state_dict")
        return {"train_loader": self._loader.state_dict()} if has else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._restore = state.get("train_loader")


class ProgressBar(Callback):
    """tqdm bar over the epochs, showing ``train_loss`` and ``val_loss``."""

    def on_fit_begin(self, trainer: Trainer, train_loader: Any, val_loader: Any) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.max_epochs, initial=trainer.epoch_, desc="epochs",
                        leave=False)

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        self.bar.set_postfix(
            {k: f"{record[k]:.4g}" for k in ("train_loss", "val_loss") if k in record}
        )

    def on_epoch_saved(self, trainer: Trainer, epoch: int) -> None:
        self.bar.update(1)

    def on_fit_end(self, trainer: Trainer) -> None:
        self.bar.close()


def default_callbacks(
    *, interleaved: bool, interleaved_batch_size: int | None, seed: int | None,
    patience: int | None, progress: bool, checkpoint_path: Path | None,
    extra: Sequence[Callback] = (), ema_decay: float | None = None,
    checkpoint_every_s: float | None = None,
) -> list[Callback]:
    """The trainer's callbacks in call order: user callbacks that add epoch keys first.

    :class:`WeightAveraging` (``ema_decay``) comes after the interleaved validation (which uses
    the trained weights) and before everything that reads the validation pass or saves the
    state (it puts the trained weights back before :class:`Checkpoint` writes them)."""
    cbs: list[Callback] = []
    if interleaved:
        cbs.append(InterleavedValidation(interleaved_batch_size, seed))
    if ema_decay is not None:
        cbs.append(WeightAveraging(ema_decay))
    cbs += list(extra)
    cbs += [ModelSelection(), LRSchedule()]
    if patience is not None:
        cbs.append(EarlyStopping(patience))
    if checkpoint_path is not None:
        cbs.append(Checkpoint(checkpoint_path, checkpoint_every_s))
    if progress:
        cbs.append(ProgressBar())
    return cbs
