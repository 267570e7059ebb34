"""Gated mixtures of experts: MMoE (Ma et al., KDD 2018, Eq. 5-6) and CGC (Tang et al. 2020).

CGC is PLE's customised gate control, one extraction level (RecSys 2020, §4.2); stacked
levels are :class:`~eegmtl.mtl.architectures.ple.PLE`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import ExpertFactory, MultiTaskArchitecture, _gate, _mix, _nonnegative, _positive

__all__ = ["CGC", "MMoE"]


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
