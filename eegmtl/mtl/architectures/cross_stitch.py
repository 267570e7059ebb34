"""Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016): one column per task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .base import MultiTaskArchitecture, _positive

__all__ = ["CrossStitch", "CrossStitchUnit"]


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
