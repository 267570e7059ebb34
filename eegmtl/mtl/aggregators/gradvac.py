"""GradVac: gradient vaccine, adaptive gradient-similarity targets (stateful)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    check_generator,
    check_task_count,
    combine,
    generator_state,
    gramian,
    load_generator_state,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["GradVac"]


class GradVac(Aggregator):
    r"""Gradient Vaccine (Wang et al., *Gradient Vaccine: Investigating and Improving Multi-task
    Optimization in Massively Multilingual Models*, ICLR 2021, Algorithm 1 / Eq. 4-5).

    For each task i and the other tasks j in a random order, with
    :math:`\phi_{ij} = \cos(g_i^{PC}, g_j)` and the EMA target :math:`\hat\phi_{ij}`: if
    :math:`\phi_{ij} < \hat\phi_{ij}`,

    .. math::
        g_i^{PC} \leftarrow g_i^{PC} + \frac{\|g_i^{PC}\|\,(\hat\phi_{ij}\sqrt{1-\phi_{ij}^2}
        - \phi_{ij}\sqrt{1-\hat\phi_{ij}^2})}{\|g_j\|\sqrt{1-\hat\phi_{ij}^2}}\, g_j ,

    and always :math:`\hat\phi_{ij} \leftarrow (1-\beta)\hat\phi_{ij} + \beta\phi_{ij}`
    (targets start at 0, so the first call equals PCGrad). The update is
    :math:`\sum_i g_i^{PC}` (sum, as LibMTL and TorchJD). Defaults: ``beta = 0.5`` (LibMTL;
    the paper tunes β per setting, e.g. 1e-2), ``group_type`` whole-model (LibMTL's 0): one
    target per task pair. The layer/matrix groupings of the paper (LibMTL 1/2) need the
    parameter partition and are not offered here. Computed from the Gramian only.

    Touches the shared parameters only. Stateful: ``reset()`` clears the targets,
    ``state_dict()``/``load_state_dict()`` (torch) save/restore them (and the generator state). The
    number of tasks is fixed by the first call (or ``n_tasks``).

    Parameters
    ----------
    beta
        EMA rate of the targets, in [0, 1] (default 0.5).
    n_tasks
        Expected number of tasks (``None``: taken from the first matrix).
    generator
        CPU ``torch.Generator`` for the random task orders (``None``: global RNG).

    Notes
    -----
    Pairs involving an all-zero gradient are skipped (neither corrected nor used to update the
    target; the original code divides by zero there).
    """

    name = "gradvac"
    linear = False
    level = "parameters"

    def __init__(
        self,
        beta: float = 0.5,
        n_tasks: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not (isinstance(beta, (int, float)) and 0.0 <= beta <= 1.0):
            raise ValueError(f"beta must be in [0, 1], got {beta!r}.")
        self.beta = float(beta)
        self.n_tasks = n_tasks
        self.generator = check_generator(generator)
        self._phi: np.ndarray | None = None

    def reset(self) -> None:
        self._phi = None

    def get_extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"phi": None if self._phi is None else torch.tensor(self._phi)}
        state.update(generator_state(self.generator))
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        phi = state.get("phi")
        self._phi = (
            None if phi is None else torch.as_tensor(phi, dtype=torch.float64).cpu().numpy().copy()
        )
        load_generator_state(self.generator, state)

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        if self._phi is not None and self._phi.shape[0] != t_count:
            raise ValueError(
                f"GradVac holds targets for {self._phi.shape[0]} tasks but got {t_count}; "
                "call reset() when the number of tasks changes."
            )
        check_task_count(matrix, self.n_tasks)
        if self._phi is None:
            self._phi = np.zeros((t_count, t_count))
        g = gramian(matrix)
        phi_hat = self._phi
        beta = self.beta
        norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
        coefs = np.eye(t_count)
        for i in range(t_count):
            coef = coefs[i]
            cg = g @ coef  # (g_i^PC . g_k)_k
            order = torch.randperm(t_count, generator=self.generator).tolist()
            for j in order:
                if j == i:
                    continue
                norm_i = math.sqrt(max(float(coef @ cg), 0.0))
                if norm_i == 0.0 or norms[j] == 0.0:
                    continue
                phi = max(-1.0, min(1.0, float(cg[j]) / (norm_i * norms[j])))
                target = phi_hat[i, j]
                if phi < target:
                    s_phi = math.sqrt(max(1.0 - phi * phi, 0.0))
                    s_target = max(math.sqrt(max(1.0 - target * target, 0.0)), 1e-8)
                    w = norm_i * (target * s_phi - phi * s_target) / (norms[j] * s_target)
                    coef[j] += w
                    cg = cg + w * g[:, j]
                phi_hat[i, j] = (1.0 - beta) * target + beta * phi
        return combine(coefs.sum(axis=0), matrix)
