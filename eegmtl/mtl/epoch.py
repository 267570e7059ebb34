"""One training epoch of :class:`~eegmtl.mtl.trainer.Trainer`: the steps, then the epoch record.

Every batch: moved to the trainer's device, the callbacks' ``on_batch_begin``, one
:class:`~eegmtl.mtl.step.MTLStep`, a step record (``loss_<task>``, ``weight_<task>``) given to
``on_batch_end`` and ``weighting.after_step(train losses, interleaved val losses)``. Then the
callbacks' ``on_steps_end`` and the epoch record: ``train_<task>_loss`` (mean over steps),
``train_loss`` (mean of the weighted sums), the full validation pass (``val_<key>``,
``val_loss_unweighted`` and ``val_loss``, the validation task losses weighted by the last
step's weights), ``weighting.after_epoch``, ``lr``, the last weights and the epoch's wall
time, appended to ``trainer.history["epochs"]``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from eegmtl.mtl.batches import split_batch
from eegmtl.mtl.data import host_floats, to_device
from eegmtl.mtl.step_result import StepResult

if TYPE_CHECKING:  # pragma: no cover
    from eegmtl.mtl.trainer import Trainer

__all__ = ["run_epoch"]


def run_epoch(trainer: Trainer, epoch: int, train_loader: Any, val_loader: Any) -> None:
    """Train ``trainer`` for epoch ``epoch`` on ``train_loader``, validate on ``val_loader``
    (or not, when ``None``) and append the epoch record to its history."""
    t0 = time.perf_counter()
    names = trainer.task_names
    if hasattr(train_loader, "set_epoch"):
        train_loader.set_epoch(epoch)
    trainer.step.begin_epoch(epoch, trainer.max_epochs)  # FlatConfig.start: flat from there on
    for cb in trainer.callbacks:
        cb.on_epoch_begin(trainer, epoch)
    trainer.model.train()
    train_sum = None
    weighted_train = 0.0
    n_steps = 0
    res: StepResult | None = None
    for batch_idx, batch in enumerate(train_loader):
        x, y = split_batch(batch)
        if y is None:
            raise ValueError("training batches must be (x, {task name: target}).")
        x, y = to_device(x, trainer.device), to_device(y, trainer.device)
        trainer.step_context = {}
        for cb in trainer.callbacks:
            cb.on_batch_begin(trainer, x, y)
        res = trainer.step(x, y)
        trainer.last_result = res
        rec: dict[str, Any] = {"epoch": epoch, "step": trainer.global_step_, "batch": batch_idx}
        # one read-back of the step's numbers, not 2T + 1
        *values, weighted = host_floats(res.losses, res.weights, (res.weights * res.losses).sum())
        for i, n in enumerate(names):
            rec[f"loss_{n}"] = values[i]
        for i, n in enumerate(names):
            rec[f"weight_{n}"] = values[len(names) + i]
        for cb in trainer.callbacks:
            cb.on_batch_end(trainer, res, rec)
        trainer.step.weighting.after_step(res.losses, trainer.step_context.get("val_losses"))
        tl = res.losses.double()
        train_sum = tl if train_sum is None else train_sum + tl
        weighted_train += weighted
        n_steps += 1
        if trainer.log_steps:
            trainer.history["steps"].append(rec)
        trainer.global_step_ += 1
    if n_steps == 0 or res is None:
        raise ValueError("the training loader yielded no batch.")

    for cb in trainer.callbacks:
        cb.on_steps_end(trainer, epoch)
    train_mean = (train_sum / n_steps).float()
    record: dict[str, Any] = {"epoch": epoch}
    for i, n in enumerate(names):
        record[f"train_{n}_loss"] = float(train_mean[i])
    record["train_loss"] = weighted_train / n_steps
    val_mean = None
    if val_loader is not None:
        ev = trainer.evaluate(val_loader)
        for key, v in ev.items():
            record[f"val_{key}"] = v
        record["val_loss_unweighted"] = ev["loss"]
        val_mean = torch.tensor([ev[f"{n}_loss"] for n in names])
        record["val_loss"] = float((res.weights.cpu().double() * val_mean.double()).sum())
    for cb in trainer.callbacks:
        cb.on_epoch_metrics(trainer, epoch, record)
    trainer.step.weighting.after_epoch(
        epoch, train_mean.to(trainer.device),
        None if val_mean is None else val_mean.to(trainer.device),
    )
    record["lr"] = float(trainer.optimizer.param_groups[0]["lr"])
    for i, n in enumerate(names):
        record[f"weight_{n}"] = float(res.weights[i])
    for cb in trainer.callbacks:
        cb.on_epoch_end(trainer, epoch, record)
    record["time"] = time.perf_counter() - t0
    trainer.history["epochs"].append(record)
