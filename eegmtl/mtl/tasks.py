"""Tasks and the multi-task model protocol used by the step and the trainer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["Task", "MultiTaskModel", "check_tasks"]

Metric = Callable[[Tensor, Tensor], float]


@dataclass
class Task:
    """One task of a multi-task problem.

    Parameters
    ----------
    name : str
        Key of the task in the model's output dict and in the batch's target dict.
    loss : callable
        ``loss(output, target) -> scalar tensor`` (mean over the batch).
    metrics : dict of str to callable, optional
        ``metric(output, target) -> float`` evaluated on validation/test data.
    higher_is_better : bool
        Direction of the task's *main* metric (the first of ``metrics``), used by Δp / Δm.
    """

    name: str
    loss: Callable[[Tensor, Tensor], Tensor]
    metrics: dict[str, Metric] = field(default_factory=dict)
    higher_is_better: bool = True


@runtime_checkable
class MultiTaskModel(Protocol):
    """What the MTL step needs from a model (hard parameter sharing).

    ``forward(x) == decode(encode(x))``. ``encode`` returns the *shared representation*
    (used by representation-level aggregators, "-UB" variants); ``decode`` maps it to a dict
    ``{task name: output}``. ``shared_parameters()`` are the parameters of ``encode``;
    ``task_parameters(name)`` those used only by that task's head (may be empty, e.g. a
    metric-learning task that reads the representation directly).
    """

    task_names: Sequence[str]

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, rep: Tensor) -> Mapping[str, Tensor]: ...

    def shared_parameters(self) -> Iterable[nn.Parameter]: ...

    def task_parameters(self, task: str) -> Iterable[nn.Parameter]: ...


def check_tasks(tasks: Sequence[Task], model: MultiTaskModel | None = None) -> list[Task]:
    """Validate a task list (non-empty, unique names, matching the model's task names)."""
    tasks = list(tasks)
    if not tasks:
        raise ValueError("empty task list: give at least one Task(name, loss).")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}.")
    if model is not None:
        model_names = list(model.task_names)
        if sorted(model_names) != sorted(names):
            raise ValueError(
                f"tasks {names} do not match the model's task_names {model_names}: "
                "give one Task per model head, with the same names."
            )
    return tasks


def stack_losses(losses: Mapping[str, Tensor], tasks: Sequence[Task]) -> Tensor:
    """Stack per-task scalar losses in task order into a (T,) tensor."""
    return torch.stack([losses[t.name] for t in tasks])
