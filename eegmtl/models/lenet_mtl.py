"""LeNet-sized MMoE, CGC, PLE and Cross-stitch models for the MultiMNIST family.

Experts / columns are the ParetoMTL LeNet trunk (:class:`~eegmtl.models.vision.LeNetEncoder`,
30,890 parameters, 50-d output); heads are ``Linear(50, n_classes)`` as in
:func:`~eegmtl.models.vision.lenet_multimnist`. The wrappers live in
:mod:`eegmtl.mtl.architectures`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from eegmtl.models.vision import LeNetEncoder
from eegmtl.mtl.architectures import CGC, PLE, CrossStitch, MMoE, MultiTaskArchitecture

__all__ = ["LENET_ARCHITECTURES", "lenet_cgc", "lenet_cross_stitch", "lenet_mmoe", "lenet_ple"]

_INPUT = 36 * 36


def _heads(task_names: Sequence[str], n_classes: int) -> dict[str, nn.Module]:
    return {t: nn.Linear(50, n_classes) for t in task_names}


def lenet_mmoe(
    task_names: Sequence[str] = ("left", "right"), n_classes: int = 10, n_experts: int = 3
) -> MMoE:
    """MMoE with ``n_experts`` LeNet experts and one softmax gate per task on the 36x36 image."""
    return MMoE(LeNetEncoder, n_experts, _heads(task_names, n_classes), _INPUT)


def lenet_cgc(
    task_names: Sequence[str] = ("left", "right"),
    n_classes: int = 10,
    n_shared: int = 1,
    n_specific: int = 1,
) -> CGC:
    """CGC with ``n_shared`` shared and ``n_specific`` per-task LeNet experts."""
    return CGC(LeNetEncoder, n_shared, n_specific, _heads(task_names, n_classes), _INPUT)


def _lenet_convs() -> nn.Module:
    return nn.Sequential(*list(LeNetEncoder().children())[:6])  # (B, 20, 5, 5)


def _lenet_fc() -> nn.Module:
    return nn.Sequential(*list(LeNetEncoder().children())[6:])  # (B, 500) -> (B, 50)


def lenet_ple(
    task_names: Sequence[str] = ("left", "right"),
    n_classes: int = 10,
    n_shared: int = 1,
    n_specific: int = 1,
) -> PLE:
    """Two-level PLE: level-0 experts are LeNet's two conv blocks (gates on the 36x36 image),
    level-1 experts its fully connected layer (gates on the 500 conv features)."""
    heads = _heads(task_names, n_classes)
    return PLE([_lenet_convs, _lenet_fc], n_shared, n_specific, heads, [_INPUT, 500])


def _lenet_stages() -> list[nn.Module]:
    trunk = list(LeNetEncoder().children())
    return [nn.Sequential(*trunk[:3]), nn.Sequential(*trunk[3:7]), nn.Sequential(*trunk[7:])]


def lenet_cross_stitch(
    task_names: Sequence[str] = ("left", "right"), n_classes: int = 10
) -> CrossStitch:
    """One LeNet column per task, cross-stitch units after the two conv blocks."""
    return CrossStitch(_lenet_stages, _heads(task_names, n_classes))


#: model name -> factory(task_names), for the vision runner
LENET_ARCHITECTURES: dict[str, Callable[[Sequence[str]], MultiTaskArchitecture]] = {
    "mmoe": lenet_mmoe,
    "cgc": lenet_cgc,
    "ple": lenet_ple,
    "cross_stitch": lenet_cross_stitch,
}
