"""Multi-task architectures beyond hard sharing: MMoE, CGC (one-level PLE), PLE, Cross-stitch.

Each wrapper builds its shared part from a user-given factory (any torch module: a LeNet trunk,
a ResNet, an EEG network) and follows the :class:`~eegmtl.mtl.tasks.MultiTaskModel` protocol
like the hard-sharing and MTAN models, so the step and the trainer accept it unchanged:

- ``encode(x)`` returns the per-task features stacked as ``(B, T, *feature_shape)``
  (``rep[:, t]`` feeds head ``t``, as for MTAN);
- ``decode(rep)`` applies head ``t`` to ``rep[:, t]``;
- ``shared_parameters()`` are all parameters except the heads (experts, gates, cross-stitch
  units), ``task_parameters(t)`` the parameters of head ``t``.

What is "shared": the gates of MMoE/CGC/PLE, the task-specific experts of CGC/PLE and the
columns of a cross-stitch network are used by one task's features only (PLE's lower-level
task experts also feed the shared gate), yet they sit inside ``encode``; as
for MTAN's attention modules (and LibMTL, whose encoder holds experts and gates), they are
counted as shared, so gradient aggregators see them with zero gradient from the other tasks.
Representation-level ("-UB") gradients of these models have a block structure (one block per
task).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["CGC", "PLE", "MMoE", "CrossStitch", "CrossStitchUnit", "MultiTaskArchitecture"]

ExpertFactory = Callable[[], nn.Module]


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def _nonnegative(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    return value


class MultiTaskArchitecture(nn.Module):
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


def _gate(in_features: int, n_experts: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, n_experts), nn.Softmax(dim=-1))


def _mix(experts: Tensor, gate: Tensor) -> Tensor:
    """Gate-weighted sum of expert outputs: experts (E, B, ...), gate (B, E) -> (B, ...)."""
    g = gate.transpose(0, 1).reshape(gate.shape[1], gate.shape[0], *([1] * (experts.ndim - 2)))
    return (experts * g).sum(dim=0)


class MMoE(MultiTaskArchitecture):
    r"""Multi-gate Mixture-of-Experts (Ma et al., *Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts*, KDD 2018, Eq. 5-6).

    ``n_experts`` experts built by ``expert()`` all read the input; task ``t``'s feature is
    :math:`f_t(x) = \sum_e g_t(x)_e\, f_e(x)` with the gate
    :math:`g_t(x) = \mathrm{softmax}(W_t\, \mathrm{vec}(x))` (a linear map of the flattened
    input, as the paper and LibMTL), so every gate's weights are non-negative and sum to 1.

    Parameters
    ----------
    expert : callable
        ``expert() -> nn.Module`` mapping the input to a feature; called ``n_experts`` times
        (independent initialisations).
    n_experts : int
        Number of experts.
    heads : mapping of str to nn.Module
        One head per task, applied to its mixed feature.
    in_features : int
        Size of the flattened input (the gates' input), e.g. ``36 * 36`` for MultiMNIST.
    """

    def __init__(
        self,
        expert: ExpertFactory,
        n_experts: int,
        heads: Mapping[str, nn.Module],
        in_features: int,
    ) -> None:
        super().__init__(heads)
        n = _positive("n_experts", n_experts)
        _positive("in_features", in_features)
        self.experts = nn.ModuleList(expert() for _ in range(n))
        self.gates = nn.ModuleDict({t: _gate(in_features, n) for t in self.task_names})

    def gate_weights(self, x: Tensor) -> dict[str, Tensor]:
        """The (B, n_experts) softmax gate of every task."""
        return {t: self.gates[t](x) for t in self.task_names}

    def task_features(self, x: Tensor) -> list[Tensor]:
        experts = torch.stack([e(x) for e in self.experts])
        return [_mix(experts, self.gates[t](x)) for t in self.task_names]


class CGC(MultiTaskArchitecture):
    r"""Customized Gate Control, the one-level Progressive Layered Extraction (Tang et al.,
    *Progressive Layered Extraction (PLE)*, RecSys 2020, §4.2, Eq. 1-3).

    ``n_shared`` shared experts and ``n_specific`` experts per task; task ``t``'s gate mixes the
    shared experts and *its own* experts only:
    :math:`f_t(x) = \sum_e g_t(x)_e\, S_t(x)_e`, :math:`S_t = [E_{\mathrm{shared}}, E_t]`,
    :math:`g_t(x) = \mathrm{softmax}(W_t\,\mathrm{vec}(x))`. Every expert is a fresh
    ``expert()`` (LibMTL 1.1.5 repeats one module instance, so its experts share weights).
    :class:`PLE` stacks several such levels.

    Parameters
    ----------
    expert : callable
        ``expert() -> nn.Module``.
    n_shared, n_specific : int
        Shared experts (>= 1) and experts per task (>= 0).
    heads : mapping of str to nn.Module
    in_features : int
        Size of the flattened input (the gates' input).
    """

    def __init__(
        self,
        expert: ExpertFactory,
        n_shared: int,
        n_specific: int,
        heads: Mapping[str, nn.Module],
        in_features: int,
    ) -> None:
        super().__init__(heads)
        _positive("n_shared", n_shared)
        _nonnegative("n_specific", n_specific)
        _positive("in_features", in_features)
        self.shared_experts = nn.ModuleList(expert() for _ in range(n_shared))
        self.specific_experts = nn.ModuleDict(
            {t: nn.ModuleList(expert() for _ in range(n_specific)) for t in self.task_names}
        )
        n = n_shared + n_specific
        self.gates = nn.ModuleDict({t: _gate(in_features, n) for t in self.task_names})

    def gate_weights(self, x: Tensor) -> dict[str, Tensor]:
        """The (B, n_shared + n_specific) softmax gate of every task."""
        return {t: self.gates[t](x) for t in self.task_names}

    def task_features(self, x: Tensor) -> list[Tensor]:
        shared = [e(x) for e in self.shared_experts]
        out = []
        for t in self.task_names:
            experts = torch.stack(shared + [e(x) for e in self.specific_experts[t]])
            out.append(_mix(experts, self.gates[t](x)))
        return out


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


class CrossStitchUnit(nn.Module):
    r"""Linear mixing of T task activations (Misra et al. 2016, Eq. 1):
    :math:`\tilde x_t = \sum_j \alpha_{tj} x_j`.

    Initialised to :math:`\alpha_{tt} = \alpha_S`, :math:`\alpha_{tj} = (1-\alpha_S)/(T-1)`
    (rows sum to 1; the paper's best initialisation for two tasks is
    :math:`(\alpha_S, \alpha_D) = (0.9, 0.1)`, §4.2).
    """

    def __init__(self, n_tasks: int, self_weight: float = 0.9) -> None:
        super().__init__()
        t = _positive("n_tasks", n_tasks)
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"self_weight must be in [0, 1], got {self_weight!r}.")
        other = (1.0 - self_weight) / (t - 1) if t > 1 else 0.0
        alpha = torch.full((t, t), other)
        alpha.fill_diagonal_(self_weight if t > 1 else 1.0)
        self.alpha = nn.Parameter(alpha)

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        stacked = torch.stack(list(xs))  # (T, B, ...)
        mixed = torch.einsum("tj,jb...->tb...", self.alpha, stacked)
        return list(mixed.unbind(0))


class CrossStitch(MultiTaskArchitecture):
    r"""Cross-stitch network (Misra, Shrivastava, Gupta & Hebert, *Cross-stitch Networks for
    Multi-task Learning*, CVPR 2016, §3).

    One column per task, each a fresh copy of ``stages()`` (a sequence of modules applied in
    order); after every stage but the last, a :class:`CrossStitchUnit` mixes the T columns'
    activations. Task ``t``'s feature is column ``t``'s output. The units use one scalar per
    task pair and layer (the paper also discusses per-channel units) and the normal learning
    rate (the paper scales the units' learning rate up by 10^2-10^3; put
    ``model.stitches.parameters()`` in their own optimiser group to do that). Initialised near
    the identity (:class:`CrossStitchUnit`, ``self_weight=0.9``), so training starts close to
    T separate networks.

    Parameters
    ----------
    stages : callable
        ``stages() -> sequence of nn.Module``: the stages of one column (e.g. LeNet's two conv
        blocks and its fully connected layer).
    heads : mapping of str to nn.Module
    self_weight : float, default 0.9
        Initial :math:`\alpha_S`.
    """

    def __init__(
        self,
        stages: Callable[[], Sequence[nn.Module]],
        heads: Mapping[str, nn.Module],
        self_weight: float = 0.9,
    ) -> None:
        super().__init__(heads)
        self.columns = nn.ModuleList(nn.ModuleList(stages()) for _ in self.task_names)
        n_stages = len(self.columns[0])
        if n_stages < 1:
            raise ValueError("stages() must return at least one module.")
        self.stitches = nn.ModuleList(
            CrossStitchUnit(self.n_tasks, self_weight) for _ in range(n_stages - 1)
        )

    def task_features(self, x: Tensor) -> list[Tensor]:
        xs = [x] * self.n_tasks
        for i in range(len(self.columns[0])):
            xs = [col[i](h) for col, h in zip(self.columns, xs)]
            if i < len(self.stitches):
                xs = self.stitches[i](xs)
        return xs
