"""Small helpers shared by the aggregators (private).

Most aggregators only need the T x T Gramian ``G G^T`` of the (T, P) matrix: it is computed once
on the input device (one matmul, no Python loop over P) from the float64 matrix the base class
hands over, then moved to the CPU for the tiny T-dimensional solve. The update is formed back on
the input device as ``weights @ matrix``; the base class casts it to the input dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators.base import Aggregation

__all__ = [
    "combine",
    "gramian",
    "check_choice",
    "check_nonnegative",
    "check_positive_int",
    "check_task_count",
    "check_generator",
    "generator_state",
    "load_generator_state",
    "as_pref",
]


def gramian(matrix: Tensor) -> np.ndarray:
    """Return ``matrix @ matrix.T`` as a float64 numpy array on the CPU (symmetrised)."""
    g = (matrix @ matrix.T).to(device="cpu", dtype=torch.float64).numpy()
    return 0.5 * (g + g.T)


def combine(weights: np.ndarray | Tensor, matrix: Tensor) -> Aggregation:
    """Form ``Aggregation(weights @ matrix, weights)`` in the dtype/device of ``matrix``."""
    w = torch.as_tensor(weights).to(device=matrix.device, dtype=matrix.dtype)
    return Aggregation(w @ matrix, w)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value


def check_nonnegative(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}.")
    return float(value)


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_generator(generator: torch.Generator | None) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            "create one with torch.Generator().manual_seed(seed)."
        )
    return generator


def generator_state(generator: torch.Generator | None) -> dict[str, Any]:
    return {} if generator is None else {"generator": generator.get_state()}


def load_generator_state(generator: torch.Generator | None, state: dict[str, Any]) -> None:
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def as_pref(pref: Tensor | Sequence[float] | None, n_tasks: int, default: float) -> np.ndarray:
    """Preference vector as float64 numpy (``default`` repeated when ``pref`` is None)."""
    if pref is None:
        return np.full(n_tasks, default, dtype=np.float64)
    arr = np.asarray(torch.as_tensor(pref, dtype=torch.float64).cpu(), dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n_tasks:
        raise ValueError(
            f"pref must be a vector with one entry per task ({n_tasks}), got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError("pref contains NaN or Inf.")
    return arr


def check_task_count(matrix: Tensor, n_tasks: int | None) -> None:
    """Raise ``ValueError`` when ``matrix`` does not have ``n_tasks`` rows (cheap: no scan)."""
    if n_tasks is not None and matrix.shape[0] != n_tasks:
        raise ValueError(
            f"the aggregator was configured for {n_tasks} tasks but got a matrix with "
            f"{matrix.shape[0]} rows."
        )
