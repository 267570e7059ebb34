"""Inference passes of the trainer: per-task outputs, and per-task losses with task metrics.

``forward_batch_size`` splits a loader batch into near-equal chunks for the forward pass only
(the losses are still computed on the whole loader batch, so batch-level losses such as a
triplet loss with in-batch mining keep their values): a large inference batch runs several
times slower per sample on a CPU (its activations leave the caches) than chunks of a training
batch's size. In eval mode a per-sample model gives the same outputs up to float rounding
(bit for bit where its kernels do not depend on the batch size).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.mtl.batches import batch_len, split_batch
from eegmtl.mtl.data import to_device
from eegmtl.mtl.step import compute_losses
from eegmtl.mtl.tasks import Task

__all__ = ["evaluate_tasks", "predict_tasks"]


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``ceil(n / size)`` contiguous near-equal ``(start, stop)`` ranges covering ``0..n``."""
    k = -(-n // size)
    q, r = divmod(n, k)
    bounds = [0]
    for i in range(k):
        bounds.append(bounds[-1] + q + (1 if i < r else 0))
    return list(zip(bounds[:-1], bounds[1:]))


def _forward(model: nn.Module, x: Any, forward_batch_size: int | None = None) -> Any:
    if forward_batch_size is None or not isinstance(x, Tensor) or x.shape[0] <= forward_batch_size:
        return model.decode(model.encode(x))
    outs = [model.decode(model.encode(x[a:b])) for a, b in _chunks(x.shape[0], forward_batch_size)]
    if not isinstance(outs[0], dict):
        raise TypeError("forward_batch_size needs a model whose decode() returns {task: output}.")
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def _check_chunk(forward_batch_size: int | None) -> int | None:
    if forward_batch_size is None:
        return None
    if int(forward_batch_size) != forward_batch_size or forward_batch_size < 1:
        raise ValueError(f"forward_batch_size must be a positive integer or None; got "
                         f"{forward_batch_size!r}.")
    return int(forward_batch_size)


def predict_tasks(
    model: nn.Module, loader: Iterable[Any], task_names: Sequence[str], device: torch.device,
    *, forward_batch_size: int | None = None,
) -> dict[str, Tensor]:
    """Concatenated outputs per task (eval mode, inference mode, on the CPU); the model's
    training flag is restored afterwards. ``forward_batch_size``: see the module docstring."""
    chunk = _check_chunk(forward_batch_size)
    was_training = model.training
    model.eval()
    outs: dict[str, list[Tensor]] = {n: [] for n in task_names}
    try:
        with torch.inference_mode():
            for batch in loader:
                x, _ = split_batch(batch)
                out = _forward(model, to_device(x, device), chunk)
                for n in task_names:
                    outs[n].append(out[n].detach().cpu())
    finally:
        model.train(was_training)
    return {n: torch.cat(v) if v else torch.empty(0) for n, v in outs.items()}


def evaluate_tasks(
    model: nn.Module, loader: Iterable[Any], tasks: Sequence[Task], device: torch.device,
    *, forward_batch_size: int | None = None,
) -> dict[str, float]:
    """Per-task losses (batch-size weighted means), their sum and the task metrics.

    Keys: ``"<task>_loss"``, ``"loss"`` (unweighted sum over tasks) and ``"<task>_<metric>"``
    (metrics computed on the concatenated outputs). ``forward_batch_size`` chunks the forward
    pass of a loader batch, not its losses (module docstring).
    """
    chunk = _check_chunk(forward_batch_size)
    was_training = model.training
    model.eval()
    sums = torch.zeros(len(tasks), dtype=torch.float64)
    count = 0
    outs: dict[str, list[Tensor]] = {t.name: [] for t in tasks}
    tgts: dict[str, list[Tensor]] = {t.name: [] for t in tasks}
    needs_outputs = any(t.metrics for t in tasks)
    try:
        with torch.inference_mode():
            for batch in loader:
                x, y = split_batch(batch)
                if y is None:
                    raise ValueError("evaluate() needs batches of (x, {task: target}).")
                x, y = to_device(x, device), to_device(y, device)
                out = _forward(model, x, chunk)
                losses = compute_losses(out, y, tasks).double().cpu()
                n = batch_len(x)
                sums += losses * n
                count += n
                if needs_outputs:
                    for t in tasks:
                        if t.metrics:
                            outs[t.name].append(out[t.name].detach().cpu())
                            tgts[t.name].append(torch.as_tensor(y[t.name]).detach().cpu())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the evaluation loader yielded no batch.")
    means = (sums / count).tolist()
    result: dict[str, float] = {f"{t.name}_loss": v for t, v in zip(tasks, means)}
    result["loss"] = float(sum(means))
    for t in tasks:
        if t.metrics:
            o, g = torch.cat(outs[t.name]), torch.cat(tgts[t.name])
            for mname, fn in t.metrics.items():
                result[f"{t.name}_{mname}"] = float(fn(o, g))
    return result
