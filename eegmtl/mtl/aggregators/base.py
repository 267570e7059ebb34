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
- Every aggregator is a :class:`torch.nn.Module` (no ``super().__init__()`` call needed: the
  module machinery is set up in ``__new__``), so ``.to()``, ``state_dict()`` and
  ``load_state_dict()`` come from torch. Stateful aggregators (GradVac, Nash-MTL, ExcessMTL,
  DB-MTL, ...) keep tensor state in buffers and other state (numpy arrays, counters, generator
  states) in ``get_extra_state()`` / ``set_extra_state()``; ``reset()`` forgets it.
- Whatever the input dtype, the work is done in float64 (:meth:`Aggregator.__call__` casts the
  matrix once; the Gramian of float32 rows of norm 1e20 or 1e-30 would over/underflow) and the
  result is returned in the input dtype. This costs one float64 copy of the (T, P) matrix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["Aggregation", "Aggregator", "check_matrix", "in_float64"]


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
        or (a CPU tensor only: on an accelerator the scan would sync with the host at every
        step) contains NaN/Inf.
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
    # a finite sum proves every entry finite (cheap); only scan when it might not be. CPU
    # tensors only: on an accelerator the scan would read back to the host at every step
    if (matrix.device.type == "cpu" and not torch.isfinite(matrix.sum())
            and not torch.isfinite(matrix).all()):
        bad = (~torch.isfinite(matrix)).any(dim=1).nonzero().flatten().tolist()
        raise ValueError(
            f"the gradient matrix contains NaN or Inf in the rows of tasks {bad}; a task loss "
            "has diverged (lower the learning rate, check the inputs for NaN, or clip the loss)."
        )
    return matrix


def in_float64(
    fn: Callable[..., Aggregation], matrix: Tensor, *args: Any, **kwargs: Any
) -> Aggregation:
    """Run ``fn(matrix64, *args, **kwargs)`` without autograd on a float64 copy of ``matrix``.

    The returned vector and weights are cast back to the dtype of ``matrix`` (same device).
    """
    work = matrix if matrix.dtype == torch.float64 else matrix.detach().to(torch.float64)
    with torch.no_grad():
        out = fn(work, *args, **kwargs)
    if matrix.dtype == torch.float64:
        return out
    weights = None if out.weights is None else out.weights.to(matrix.dtype)
    return Aggregation(out.vector.to(matrix.dtype), weights)


class Aggregator(nn.Module, ABC):
    """Abstract gradient aggregator (a :class:`torch.nn.Module`). Subclasses implement
    :meth:`_aggregate`, which receives a validated float64 matrix."""

    #: short registry name, e.g. ``"pcgrad"``
    name: str = "aggregator"
    #: True when the update is linear in G with constant weights (enables the fast path of
    #: the step: one backward of the weighted loss sum, no per-task gradients needed).
    linear: bool = False
    #: which gradient matrix the step must compute: ``"parameters"`` (rows = gradients on the
    #: shared parameters) or ``"representation"`` (rows = gradients on the shared
    #: representation; the "-UB" variants, GradDrop).
    level: str = "parameters"
    #: True when the update scales with the gradients, ``A(cG) = c A(G)`` for ``c > 0``
    #: (False: Nash-MTL and FairGrad, whose update norm the equation they solve fixes); the
    #: flat-minima step's default aggregation (:class:`~eegmtl.mtl.flat.FlatConfig`) reads it.
    scale_equivariant: bool = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Aggregator:
        self = super().__new__(cls)
        nn.Module.__init__(self)  # subclasses need not call super().__init__()
        return self

    def __init__(self) -> None:  # the module was initialised in __new__
        pass

    def __call__(self, matrix: Tensor) -> Aggregation:
        check_matrix(matrix)
        return in_float64(self._aggregate, matrix)

    def forward(self, matrix: Tensor) -> Aggregation:
        """Same as calling the aggregator."""
        return self(matrix)

    @abstractmethod
    def _aggregate(self, matrix: Tensor) -> Aggregation:
        """Aggregate a validated float64 (T, P) matrix."""

    def reset(self) -> None:  # noqa: B027
        """Forget any state (stateful aggregators override)."""

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "training"
        )
        return f"{type(self).__name__}({params})"
