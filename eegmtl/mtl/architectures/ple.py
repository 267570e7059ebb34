"""Progressive Layered Extraction (Tang, Liu, Zhao & Gong, RecSys 2020, §4.3): stacked CGC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .base import ExpertFactory, MultiTaskArchitecture, _gate, _mix, _nonnegative, _positive

__all__ = ["PLE"]


class _Extraction(nn.Module):
    """One PLE extraction level: shared and per-task experts, task gates, optional shared gate.

    The shared experts and the shared gate read the shared input, task ``t``'s experts and gate
    read task ``t``'s input. Task ``t``'s gate mixes ``[shared experts, experts of t]``; the
    shared gate mixes ``[shared experts, experts of task 1, ..., experts of task T]``.
    """

    def __init__(
        self,
        expert: ExpertFactory,
        n_shared: int,
        n_specific: int,
        task_names: Sequence[str],
        in_features: int,
        shared_gate: bool,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.shared_experts = nn.ModuleList(expert() for _ in range(n_shared))
        self.specific_experts = nn.ModuleDict(
            {t: nn.ModuleList(expert() for _ in range(n_specific)) for t in task_names}
        )
        self.gates = nn.ModuleDict(
            {t: _gate(in_features, n_shared + n_specific) for t in task_names}
        )
        n_all = n_shared + len(task_names) * n_specific
        self.shared_gate = _gate(in_features, n_all) if shared_gate else None

    def forward(
        self, shared_in: Tensor, task_in: Sequence[Tensor]
    ) -> tuple[Tensor | None, list[Tensor], list[Tensor], Tensor | None]:
        """Returns (shared output or None, task outputs, task gates, shared gate or None)."""
        for h in (shared_in, *task_in):
            if h[0].numel() != self.in_features:
                raise ValueError(
                    f"a PLE level with in_features={self.in_features} got inputs of shape "
                    f"{tuple(h.shape[1:])} ({h[0].numel()} values per sample); give in_features "
                    "as the flattened size of every level's input (the model input for level 0, "
                    "the previous level's expert output after)."
                )
        shared = [e(shared_in) for e in self.shared_experts]
        specific = [[e(h) for e in self.specific_experts[t]] for t, h in zip(self.gates, task_in)]
        gates = [self.gates[t](h) for t, h in zip(self.gates, task_in)]
        outs = [_mix(torch.stack(shared + sp), g) for sp, g in zip(specific, gates)]
        if self.shared_gate is None:
            return None, outs, gates, None
        sgate = self.shared_gate(shared_in)
        every = shared + [e for sp in specific for e in sp]
        return _mix(torch.stack(every), sgate), outs, gates, sgate


class PLE(MultiTaskArchitecture):
    r"""Progressive Layered Extraction (Tang, Liu, Zhao & Gong, *Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations*, RecSys
    2020, §4.3, Eq. 5): :class:`CGC` extraction levels stacked.

    Level :math:`k` has ``n_shared`` shared experts :math:`E^{k,s}` and ``n_specific`` experts
    :math:`E^{k,t}` per task, all fresh ``experts[k]()`` modules (independent weights at every
    level and position). With :math:`g^{0,t} = g^{0,s} = x`,

    .. math::
        g^{k,t} = w^{k,t}(g^{k-1,t})\,[E^{k,s}(g^{k-1,s}),\, E^{k,t}(g^{k-1,t})],\qquad
        g^{k,s} = w^{k,s}(g^{k-1,s})\,[E^{k,s}(g^{k-1,s}),\, E^{k,1}(g^{k-1,1}), \ldots,
        E^{k,T}(g^{k-1,T})],

    gates :math:`w(h) = \mathrm{softmax}(W\,\mathrm{vec}(h))` as in :class:`CGC`. Task
    :math:`t`'s feature is :math:`g^{L,t}` of the last level, which has task gates only (no
    shared output). One level is exactly :class:`CGC` (same parameter names under
    ``levels[0]``). LibMTL's ``PLE`` differs: it has no shared gate (each level's shared
    experts read each task's own representation, once per task) and only slices ResNets into
    levels.

    Parameters
    ----------
    experts : sequence of callables
        One expert factory per level, ``experts[k]() -> nn.Module`` (the feature shape changes
        between levels, e.g. a conv block then a fully connected layer); its length is the
        number of levels.
    n_shared, n_specific : int
        Shared experts (>= 1) and experts per task (>= 0) at every level.
    heads : mapping of str to nn.Module
        One head per task, applied to its last-level feature.
    in_features : int or sequence of int
        Flattened size of each level's input (the gates' input): the model input for ``levels[0]``,
        the previous level's expert output after; an int is used for every level.
    """

    def __init__(
        self,
        experts: Sequence[ExpertFactory],
        n_shared: int,
        n_specific: int,
        heads: Mapping[str, nn.Module],
        in_features: int | Sequence[int],
    ) -> None:
        super().__init__(heads)
        if callable(experts) or not experts or not all(callable(f) for f in experts):
            raise ValueError(
                "experts must be a non-empty list of expert factories, one per level "
                f"(e.g. [expert] for a single level), got {experts!r}."
            )
        _positive("n_shared", n_shared)
        _nonnegative("n_specific", n_specific)
        n_levels = len(experts)
        sizes = [in_features] * n_levels if isinstance(in_features, int) else list(in_features)
        if len(sizes) != n_levels:
            raise ValueError(
                f"in_features has {len(sizes)} entries but there are {n_levels} levels; give one "
                "flattened input size per level."
            )
        for size in sizes:
            _positive("in_features", size)
        self.levels = nn.ModuleList(
            _Extraction(f, n_shared, n_specific, self.task_names, size, k < n_levels - 1)
            for k, (f, size) in enumerate(zip(experts, sizes))
        )

    def _run(self, x: Tensor) -> tuple[list[Tensor], list[list[Tensor]], list[Tensor]]:
        shared, tasks = x, [x] * self.n_tasks
        task_gates, shared_gates = [], []
        for level in self.levels:
            shared, tasks, gates, sgate = level(shared, tasks)
            task_gates.append(gates)
            if sgate is not None:
                shared_gates.append(sgate)
        return tasks, task_gates, shared_gates

    def gate_weights(self, x: Tensor) -> list[dict[str, Tensor]]:
        """Per level, the (B, n_shared + n_specific) softmax gate of every task."""
        return [dict(zip(self.task_names, g)) for g in self._run(x)[1]]

    def shared_gate_weights(self, x: Tensor) -> list[Tensor]:
        """Per level but the last, the (B, n_shared + T n_specific) shared softmax gate."""
        return self._run(x)[2]

    def task_features(self, x: Tensor) -> list[Tensor]:
        return self._run(x)[0]
