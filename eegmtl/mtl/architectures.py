"""Multi-task architectures beyond hard sharing: MMoE, CGC (one-level PLE), Cross-stitch.

Each wrapper builds its shared part from a user-given factory (any torch module: a LeNet trunk,
a ResNet, an EEG network) and follows the :class:`~eegmtl.mtl.tasks.MultiTaskModel` protocol
like the hard-sharing and MTAN models, so the step and the trainer accept it unchanged:

- ``encode(x)`` returns the per-task features stacked as ``(B, T, *feature_shape)``
  (``rep[:, t]`` feeds head ``t``, as for MTAN);
- ``decode(rep)`` applies head ``t`` to ``rep[:, t]``;
- ``shared_parameters()`` are all parameters except the heads (experts, gates, cross-stitch
  units), ``task_parameters(t)`` the parameters of head ``t``.

What is "shared": the gates of MMoE/CGC, CGC's task-specific experts and the columns of a
cross-stitch network are used by one task's features only, yet they sit inside ``encode``; as
for MTAN's attention modules (and LibMTL, whose encoder holds experts and gates), they are
counted as shared, so gradient aggregators see them with zero gradient from the other tasks.
Representation-level ("-UB") gradients of these models have a block structure (one block per
task).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["CGC", "MMoE", "CrossStitch", "CrossStitchUnit", "MultiTaskArchitecture"]

ExpertFactory = Callable[[], nn.Module]


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
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
    PLE's stacking of several extraction levels (with a shared gate between levels) is not
    provided.

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
        if isinstance(n_specific, bool) or not isinstance(n_specific, int) or n_specific < 0:
            raise ValueError(f"n_specific must be a non-negative integer, got {n_specific!r}.")
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
