"""Base of the multi-task architecture wrappers: per-task features stacked, one head per task.

:class:`MultiTaskArchitecture` implements the :class:`~eegmtl.mtl.tasks.MultiTaskModel`
protocol for every wrapper of :mod:`eegmtl.mtl.architectures`; the softmax gate and the
gate-weighted expert mix here are shared by MMoE, CGC and PLE (Ma et al., KDD 2018, Eq. 5-6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch
from torch import Tensor, nn

__all__ = ["ExpertFactory", "MultiTaskArchitecture"]

ExpertFactory = Callable[[], nn.Module]


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def _nonnegative(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    return value


class TaskHeadsMixin:
    """``forward = decode(encode(x))`` and the shared/task parameter split of a module whose
    task heads are ``self.heads`` (an ``nn.ModuleDict``) named by ``self.task_names``:
    everything outside ``heads`` is shared (hard sharing, MTAN, MMoE, CGC, PLE, cross-stitch).
    """

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for name, p in self.named_parameters():
            if not name.startswith("heads."):
                yield p

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.heads:
            raise KeyError(f"unknown task {task!r}; the model has {self.task_names}.")
        return self.heads[task].parameters()


class MultiTaskArchitecture(TaskHeadsMixin, nn.Module):
    """Base of the wrappers: task heads on per-task features stacked along dim 1.

    Subclasses implement :meth:`task_features` (list of T tensors of equal shape).
    """

    def __init__(self, heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not heads:
            raise ValueError("give at least one task head (a mapping task name -> nn.Module).")
        self.heads = nn.ModuleDict(dict(heads))
        self.task_names: list[str] = list(heads)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def task_features(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        return torch.stack(self.task_features(x), dim=1)

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        if rep.ndim < 2 or rep.shape[1] != self.n_tasks:
            raise ValueError(
                f"expected per-task features of shape (B, {self.n_tasks}, ...) as returned by "
                f"encode(), got {tuple(rep.shape)}."
            )
        return {t: self.heads[t](rep[:, i]) for i, t in enumerate(self.task_names)}



def _gate(in_features: int, n_experts: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, n_experts), nn.Softmax(dim=-1))


def _mix(experts: Tensor, gate: Tensor) -> Tensor:
    """Gate-weighted sum of expert outputs: experts (E, B, ...), gate (B, E) -> (B, ...)."""
    g = gate.transpose(0, 1).reshape(gate.shape[1], gate.shape[0], *([1] * (experts.ndim - 2)))
    return (experts * g).sum(dim=0)
