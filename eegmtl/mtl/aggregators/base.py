"""Base class of gradient aggregators: pure maps from a (T, P) gradient matrix to an update.

An aggregator receives the matrix ``G`` whose row ``t`` is the gradient of task ``t``'s
(already weighted) loss with respect to the shared parameters -- or, for the
representation-level ("-UB") variants, with respect to the shared representation -- and
returns an :class:`Aggregation`: the (P,) update direction (to be used as ``.grad``, i.e. the
optimiser *descends* along it) and the (T,) task weights it used.

Conventions (every aggregator follows them):

- ``__call__`` validates the input (2-D, at least one row, finite) and raises ``ValueError``
  with a clear message otherwise; ``_aggregate`` does the work.
- No autograd graph is built (``torch.no_grad``).
- ``weights`` are the coefficients ``w`` such that ``vector == w @ G`` whenever the method's
  update lies in the row space of ``G`` (MGDA, PCGrad, IMTL-G, CAGrad, Aligned-MTL, ...); for
  methods whose update is not a linear combination of the rows (GradDrop), ``weights`` documents
  the mean fraction of each row that was kept.
- Randomness comes from an explicit ``torch.Generator`` (``generator=`` argument) so runs are
  reproducible.
- Stateful aggregators (GradVac, Nash-MTL) implement ``reset()`` and ``state_dict()`` /
  ``load_state_dict()`` so checkpoints can restore them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["Aggregation", "Aggregator", "check_matrix"]


class Aggregation(NamedTuple):
    """Result of an aggregation: the (P,) update vector and the (T,) task weights."""

    vector: Tensor
    weights: Tensor


def check_matrix(matrix: Tensor, n_tasks: int | None = None) -> Tensor:
    """Validate a gradient matrix and return it.

    Raises
    ------
    TypeError
        If ``matrix`` is not a tensor.
    ValueError
        If it is not 2-D, has no rows or columns, has a row count different from ``n_tasks``,
        or contains NaN/Inf.
    """
    if not isinstance(matrix, Tensor):
        raise TypeError(f"expected a torch.Tensor of shape (T, P), got {type(matrix).__name__}.")
    if matrix.ndim != 2:
        raise ValueError(
            f"expected a 2-D gradient matrix of shape (n_tasks, n_params), got shape "
            f"{tuple(matrix.shape)}; stack one flattened gradient per task as a row."
        )
    if matrix.shape[0] == 0:
        raise ValueError("the gradient matrix has no rows: there must be at least one task.")
    if matrix.shape[1] == 0:
        raise ValueError("the gradient matrix has no columns: no shared parameters?")
    if n_tasks is not None and matrix.shape[0] != n_tasks:
        raise ValueError(
            f"the aggregator was configured for {n_tasks} tasks but got a matrix with "
            f"{matrix.shape[0]} rows."
        )
    # a finite sum proves every entry finite (cheap); only scan when it might not be
    if not torch.isfinite(matrix.sum()) and not torch.isfinite(matrix).all():
        bad = (~torch.isfinite(matrix)).any(dim=1).nonzero().flatten().tolist()
        raise ValueError(
            f"the gradient matrix contains NaN or Inf in the rows of tasks {bad}; a task loss "
            "has diverged (lower the learning rate, check the inputs for NaN, or clip the loss)."
        )
    return matrix


class Aggregator(ABC):
    """Abstract gradient aggregator. Subclasses implement :meth:`_aggregate`."""

    #: short registry name, e.g. ``"pcgrad"``
    name: str = "aggregator"
    #: True when the update is linear in G with constant weights (enables the fast path of
    #: the step: one backward of the weighted loss sum, no per-task gradients needed).
    linear: bool = False
    #: which gradient matrix the step must compute: ``"parameters"`` (rows = gradients on the
    #: shared parameters) or ``"representation"`` (rows = gradients on the shared
    #: representation; the "-UB" variants, GradDrop).
    level: str = "parameters"

    def __call__(self, matrix: Tensor) -> Aggregation:
        check_matrix(matrix)
        with torch.no_grad():
            out = self._aggregate(matrix)
        return out

    @abstractmethod
    def _aggregate(self, matrix: Tensor) -> Aggregation:
        """Aggregate a validated (T, P) matrix."""

    def reset(self) -> None:  # noqa: B027
        """Forget any state (stateful aggregators override)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        pass

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
