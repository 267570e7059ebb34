"""Loss weightings: small stateful objects mapping per-task losses to per-task weights.

Use :func:`get_weighting` to build one by registry name (see :data:`WEIGHTINGS`).
"""

from __future__ import annotations

from typing import Any

from eegmtl.mtl._registry import lookup
from eegmtl.mtl.weightings.base import Weighting, check_losses
from eegmtl.mtl.weightings.blending import GradientBlending
from eegmtl.mtl.weightings.dwa import DynamicWeightAverage
from eegmtl.mtl.weightings.equal import EqualWeighting
from eegmtl.mtl.weightings.famo import FAMOWeighting
from eegmtl.mtl.weightings.fixed import FixedWeighting
from eegmtl.mtl.weightings.gls import GeometricLossWeighting
from eegmtl.mtl.weightings.gradnorm import GradNormWeighting
from eegmtl.mtl.weightings.imtl_l import IMTLLWeighting
from eegmtl.mtl.weightings.log import LogLossWeighting
from eegmtl.mtl.weightings.rlw import RandomLossWeighting
from eegmtl.mtl.weightings.stch import STCHWeighting
from eegmtl.mtl.weightings.uncertainty import UncertaintyWeighting

__all__ = [
    "WEIGHTINGS",
    "DynamicWeightAverage",
    "EqualWeighting",
    "FAMOWeighting",
    "FixedWeighting",
    "GeometricLossWeighting",
    "GradNormWeighting",
    "GradientBlending",
    "IMTLLWeighting",
    "LogLossWeighting",
    "RandomLossWeighting",
    "STCHWeighting",
    "UncertaintyWeighting",
    "Weighting",
    "check_losses",
    "get_weighting",
]

#: Registry name -> class. Every class takes ``n_tasks`` as its first argument.
WEIGHTINGS: dict[str, type[Weighting]] = {
    "ew": EqualWeighting,
    "rlw": RandomLossWeighting,
    "uw": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "imtl_l": IMTLLWeighting,
    "gradnorm": GradNormWeighting,
    "gls": GeometricLossWeighting,
    "blending": GradientBlending,
    "fixed": FixedWeighting,
    "famo": FAMOWeighting,
    "stch": STCHWeighting,
    "log": LogLossWeighting,
}


def get_weighting(name: str | Weighting, n_tasks: int, **kwargs: Any) -> Weighting:
    """Build a weighting from its registry name (or pass an instance through).

    Parameters
    ----------
    name : str or Weighting
        A key of :data:`WEIGHTINGS` (case-insensitive, ``-`` and ``_`` equivalent) or an
        already-built :class:`Weighting` (returned as is after checking its task count).
    n_tasks : int
        Number of tasks ``T``.
    **kwargs
        Forwarded to the class constructor.

    Examples
    --------
    >>> import torch
    >>> from eegmtl.mtl.weightings import get_weighting
    >>> losses = torch.tensor([0.7, 0.1, 2.0])
    >>> ew = get_weighting("ew", n_tasks=3)
    >>> ew.weights(losses)
    tensor([1., 1., 1.])
    >>> (ew.weights(losses) * losses).sum()  # the weighted loss the step back-propagates
    tensor(2.8000)
    >>> rlw = get_weighting("rlw", n_tasks=3)  # random loss weighting: new weights every step
    >>> _ = torch.manual_seed(0)
    >>> w = rlw.weights(losses)
    >>> w.shape, round(float(w.sum()), 4)
    (torch.Size([3]), 1.0)
    """
    if isinstance(name, Weighting):
        if kwargs:
            raise ValueError("keyword arguments cannot be applied to an already-built weighting.")
        if name.n_tasks != int(n_tasks):
            raise ValueError(
                f"the weighting {name!r} was built for {name.n_tasks} tasks, but the model "
                f"has {n_tasks}; build it with n_tasks={n_tasks}."
            )
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or a Weighting, got {type(name).__name__}.")
    cls = lookup(WEIGHTINGS, name, "weighting", hint=" or pass a Weighting instance")
    return cls(n_tasks, **kwargs)
