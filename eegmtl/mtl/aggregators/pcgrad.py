"""PCGrad: project each task gradient onto the normal plane of the conflicting ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    check_choice,
    check_generator,
    combine,
    generator_state,
    gramian,
    load_generator_state,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["PCGrad", "pcgrad_weights"]


def pcgrad_weights(g: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
    """Weights ``w`` with ``sum_i g_i^PC = w @ G``, computed from the Gramian ``g`` only.

    Row ``i`` of the surgery is kept as coefficients ``c_i`` (``g_i^PC = c_i @ G``), so
    ``g_i^PC . g_j = c_i @ g[:, j]`` and a projection only changes ``c_i[j]``.
    """
    t_count = g.shape[0]
    weights = np.zeros(t_count)
    for i in range(t_count):
        order = torch.randperm(t_count, generator=generator).tolist()
        coef = np.zeros(t_count)
        coef[i] = 1.0
        for j in order:
            if j == i or g[j, j] <= 0.0:
                continue
            inner = float(coef @ g[:, j])
            if inner < 0.0:
                coef[j] -= inner / g[j, j]
        weights += coef
    return weights


class PCGrad(Aggregator):
    r"""PCGrad, "gradient surgery" (Yu et al., *Gradient Surgery for Multi-Task Learning*,
    NeurIPS 2020, Algorithm 1).

    For each task i, visit the other tasks j in a random order; whenever the current
    :math:`g_i^{PC}` conflicts with :math:`g_j` (:math:`g_i^{PC}\cdot g_j < 0`), project it onto
    the normal plane of :math:`g_j`: :math:`g_i^{PC} \leftarrow g_i^{PC} -
    \frac{g_i^{PC}\cdot g_j}{\|g_j\|^2} g_j`. The update is :math:`\sum_i g_i^{PC}` (sum, as the
    official TF code, LibMTL and TorchJD; ``reduction="mean"`` divides by T as the popular
    ``Pytorch-PCGrad`` port). Computed from the T x T Gramian only (T^2 scalar operations,
    nothing of size P in the loop); the update is ``weights @ G``.

    Touches the shared parameters only. Original PCGrad has no hyper-parameters.

    Parameters
    ----------
    reduction
        ``"sum"`` (default) or ``"mean"`` of the projected gradients.
    generator
        CPU ``torch.Generator`` for the random task orders (``None``: torch's global RNG).
        Its state is saved by :meth:`state_dict`.

    Notes
    -----
    Random, hence not permutation invariant in general; deterministic for T = 2 (the order of
    a single other task does not matter) or when no pair conflicts. Positively homogeneous.
    """

    name = "pcgrad"
    linear = False
    level = "parameters"

    def __init__(self, reduction: str = "sum", generator: torch.Generator | None = None) -> None:
        self.reduction = check_choice("reduction", reduction, ("sum", "mean"))
        self.generator = check_generator(generator)

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        w = pcgrad_weights(gramian(matrix), self.generator)
        if self.reduction == "mean":
            w = w / matrix.shape[0]
        return combine(w, matrix)

    def get_extra_state(self) -> dict[str, Any]:
        return generator_state(self.generator)

    def set_extra_state(self, state: dict[str, Any]) -> None:
        load_generator_state(self.generator, state)
