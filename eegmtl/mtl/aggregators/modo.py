"""MoDo: multi-objective gradient with double sampling, single-batch form (stateful)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import check_nonnegative, check_task_count, combine, gramian
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["MoDo", "project_to_simplex"]


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    r"""Euclidean projection of ``v`` onto the probability simplex
    :math:`\{\lambda \ge 0, \sum_t \lambda_t = 1\}` (sort-based, Held et al. 1974; the
    ``_projection2simplex`` of the MGDA/MoCo/MoDo reference code computes the same point)."""
    v = np.asarray(v, dtype=np.float64)
    v = v - v.max()  # the projection is shift invariant; this keeps huge inputs exact
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, v.shape[0] + 1)
    k = int(np.nonzero(u - css / idx > 0)[0][-1])
    return np.maximum(v - css[k] / (k + 1), 0.0)


def load_vector(state: dict[str, Any], key: str) -> np.ndarray | None:
    """Read an optional float64 vector saved by ``get_extra_state`` (``None`` stays ``None``)."""
    value = state.get(key)
    if value is None:
        return None
    return torch.as_tensor(value, dtype=torch.float64).cpu().numpy().copy()


class MoDo(Aggregator):
    r"""MoDo (Chen, Fernando, Ying & Chen, *Three-Way Trade-Off in Multi-Objective Learning:
    Optimization, Generalization and Conflict-Avoidance*, NeurIPS 2023 / JMLR 2024, Algorithm 1,
    Eq. 2.9).

    Keeps task weights :math:`\lambda` on the simplex and updates them by one projected gradient
    step on :math:`\tfrac12\|G^\top\lambda\|^2 + \tfrac\rho2\|\lambda\|^2` per call, then
    descends along the weighted gradient with the *new* weights:

    .. math::
        \lambda_{k+1} = \Pi_\Delta\bigl(\lambda_k - \gamma\,(G G^\top + \rho I)\lambda_k\bigr),
        \qquad d = G^\top \lambda_{k+1},

    starting from :math:`\lambda_0 = 1/T`. Defaults ``gamma = 0.1``, ``rho = 0.1`` (the
    official code's and TorchJD's ``MoDoWeighting``; LibMTL 1.1.5 uses ``gamma = 1e-3``).
    Computed from the T x T Gramian only; touches the shared parameters only.

    Deviation (single batch): the paper's stochastic algorithm uses *three* independent
    mini-batches per step -- :math:`\nabla F(x; z_1)^\top \nabla F(x; z_2)` in the
    :math:`\lambda` step (an unbiased estimate of :math:`G G^\top`) and a third batch for the
    update (LibMTL; the official code uses the sum of the first two). Here, as a pure function of
    one batch's (T, P) matrix, the same batch's Gramian is used for both, i.e. TorchJD's
    ``MoDoWeighting`` applied to :math:`J J^\top`, which TorchJD warns loses the convergence
    guarantee. ``weights`` are :math:`\lambda_{k+1}` (``vector == weights @ G``).

    Stateful: ``reset()`` restarts from uniform weights; ``state_dict()``/``load_state_dict()``
    (torch, through ``get_extra_state()``/``set_extra_state()``) save/restore :math:`\lambda`.
    In flat (F-) steps the aggregator is called twice per step, so
    :math:`\lambda` takes two steps per batch.

    Parameters
    ----------
    gamma
        Step size of the :math:`\lambda` update (> 0, default 0.1).
    rho
        :math:`\ell_2` regularisation of the :math:`\lambda` sub-problem (>= 0, default 0.1).
    n_tasks
        Expected number of tasks (``None``: fixed by the first matrix).
    """

    name = "modo"
    linear = False
    level = "parameters"

    def __init__(self, gamma: float = 0.1, rho: float = 0.1, n_tasks: int | None = None) -> None:
        super().__init__()
        self.gamma = check_nonnegative("gamma", gamma)
        if self.gamma == 0.0:
            raise ValueError("gamma must be positive (the step size of the task weights).")
        self.rho = check_nonnegative("rho", rho)
        self.n_tasks = n_tasks
        self._lambda: np.ndarray | None = None

    def reset(self) -> None:
        self._lambda = None

    def get_extra_state(self) -> dict[str, Any]:
        return {"lambda": None if self._lambda is None else torch.tensor(self._lambda)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._lambda = load_vector(state, "lambda")

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        check_task_count(matrix, self.n_tasks)
        lam = _state_or_uniform(self._lambda, t_count, "MoDo")
        g = gramian(matrix)
        lam = project_to_simplex(lam - self.gamma * (g @ lam + self.rho * lam))
        self._lambda = lam
        return combine(lam, matrix)


def _state_or_uniform(lam: np.ndarray | None, t_count: int, who: str) -> np.ndarray:
    """The stored task weights, or uniform ones on the first call (clear error on a T change)."""
    if lam is None:
        return np.full(t_count, 1.0 / t_count)
    if lam.shape[0] != t_count:
        raise ValueError(
            f"{who} holds weights for {lam.shape[0]} tasks but got {t_count}; call reset() when "
            "the number of tasks changes."
        )
    return lam
