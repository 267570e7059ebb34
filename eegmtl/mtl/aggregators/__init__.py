"""Gradient aggregators: maps from a (T, P) per-task gradient matrix to a (P,) update.

Each aggregator is a small object: ``aggregator(matrix)`` validates the (T, P) matrix (row t =
gradient of task t) and returns an :class:`Aggregation` ``(vector, weights)``. Build one by its
registry name with :func:`get_aggregator` (``AGGREGATORS`` maps every lowercase name to its
class) or import the class.

Every class carries

- ``name``: its registry name;
- ``linear``: True when the update is a constant-weight combination (``mean``, ``sum``), so
  the step can back-propagate the weighted loss sum instead of building the matrix;
- ``level``: ``"parameters"`` (the matrix holds gradients w.r.t. the shared parameters) or
  ``"representation"`` (gradients w.r.t. the shared representation: ``mgda_ub``,
  ``aligned_mtl_ub``, ``graddrop``), so the step knows which matrix to compute.

Methods: ``mean``, ``sum``, ``mgda``/``mgda_ub`` (Sener & Koltun 2018), ``pcgrad`` (Yu et al.
2020), ``graddrop`` (Chen et al. 2020), ``imtl_g`` (Liu et al. 2021), ``gradvac`` (Wang et al.
2021), ``cagrad`` (Liu et al. 2021), ``nash_mtl`` (Navon et al. 2022), ``rgw`` (Lin et al.
2022), ``aligned_mtl``/``aligned_mtl_ub`` (Senushkin et al. 2023), ``upgrad`` and ``dualproj``
(Quinton & Rey 2024), ``moco`` (Fernando et al. 2023), ``sdmgrad`` (Xiao et al. 2023),
``modo`` (Chen et al. 2023), ``config`` (Liu et al. 2025), ``db_mtl`` (Lin et al. 2023, gradient
balancing; method name ``db_mtl`` pairs it with the ``log`` weighting).

Not provided: **RotoGrad** (Javaloy & Valera, ICLR 2022). It is not a function of a gradient
matrix: it adds learnable per-task rotation matrices (and a feature scaling) between the shared
representation and the heads, trained by their own optimiser on a separate objective, so it is
an architecture change plus a second optimisation loop rather than an aggregator; it would need
hooks in the model and the trainer that this package does not have yet.
"""

from __future__ import annotations

from typing import Any

from eegmtl.mtl._registry import lookup
from eegmtl.mtl.aggregators.aligned_mtl import AlignedMTL, AlignedMTLUB
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator, check_matrix
from eegmtl.mtl.aggregators.cagrad import CAGrad
from eegmtl.mtl.aggregators.config_agg import ConFIG
from eegmtl.mtl.aggregators.db_mtl import DBMTL
from eegmtl.mtl.aggregators.dualproj import DualProj
from eegmtl.mtl.aggregators.excess_mtl import ExcessMTL
from eegmtl.mtl.aggregators.fairgrad import FairGrad
from eegmtl.mtl.aggregators.graddrop import GradDrop
from eegmtl.mtl.aggregators.gradvac import GradVac
from eegmtl.mtl.aggregators.imtl_g import IMTLG
from eegmtl.mtl.aggregators.mean import Mean, Sum
from eegmtl.mtl.aggregators.mgda import MGDA, MGDAUB
from eegmtl.mtl.aggregators.moco import MoCo
from eegmtl.mtl.aggregators.modo import MoDo
from eegmtl.mtl.aggregators.nash_mtl import NashMTL
from eegmtl.mtl.aggregators.pcgrad import PCGrad
from eegmtl.mtl.aggregators.rgw import RGW, sample_task_weights
from eegmtl.mtl.aggregators.sdmgrad import SDMGrad
from eegmtl.mtl.aggregators.upgrad import UPGrad

__all__ = [
    "AGGREGATORS",
    "MGDA",
    "MGDAUB",
    "RGW",
    "Aggregation",
    "Aggregator",
    "AlignedMTL",
    "AlignedMTLUB",
    "CAGrad",
    "ConFIG",
    "DBMTL",
    "DualProj",
    "ExcessMTL",
    "FairGrad",
    "GradDrop",
    "GradVac",
    "IMTLG",
    "Mean",
    "MoCo",
    "MoDo",
    "NashMTL",
    "PCGrad",
    "SDMGrad",
    "Sum",
    "UPGrad",
    "check_matrix",
    "get_aggregator",
    "sample_task_weights",
]

AGGREGATORS: dict[str, type[Aggregator]] = {
    cls.name: cls
    for cls in (
        Mean,
        Sum,
        MGDA,
        MGDAUB,
        PCGrad,
        GradDrop,
        IMTLG,
        GradVac,
        CAGrad,
        NashMTL,
        RGW,
        AlignedMTL,
        AlignedMTLUB,
        UPGrad,
        DualProj,
        FairGrad,
        ExcessMTL,
        MoCo,
        SDMGrad,
        MoDo,
        ConFIG,
        DBMTL,
    )
}


def get_aggregator(name: str | Aggregator, **kwargs: Any) -> Aggregator:
    """Return an aggregator instance from its registry name (or pass an instance through).

    Parameters
    ----------
    name
        A registry name (case-insensitive, ``-`` accepted for ``_``; see ``AGGREGATORS``) or an
        :class:`Aggregator` instance, returned unchanged (``kwargs`` must then be empty).
    **kwargs
        Hyper-parameters forwarded to the class constructor.

    Raises
    ------
    ValueError
        Unknown name, or an instance given together with keyword arguments.
    TypeError
        ``name`` is neither a string nor an Aggregator, or a keyword is not accepted.

    Examples
    --------
    >>> import torch
    >>> from eegmtl.mtl.aggregators import get_aggregator
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # two conflicting task gradients (T=2, P=2)
    >>> out = get_aggregator("pcgrad")(G)
    >>> out.vector
    tensor([0.5000, 1.5000])
    >>> G @ out.vector  # PCGrad's update no longer increases either loss
    tensor([0.5000, 1.0000])
    >>> get_aggregator("mean")(G).weights
    tensor([0.5000, 0.5000])
    """
    if isinstance(name, Aggregator):
        if kwargs:
            raise ValueError(
                f"got an Aggregator instance {name!r} together with keyword arguments "
                f"{sorted(kwargs)}; configure the instance directly instead."
            )
        return name
    if not isinstance(name, str):
        raise TypeError(f"expected an aggregator name or instance, got {type(name).__name__}.")
    return lookup(AGGREGATORS, name, "aggregator")(**kwargs)
