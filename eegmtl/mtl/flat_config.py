"""Options of the flat-minima (F-MTL) step: :class:`FlatConfig` and the ``flat=`` argument.

The step itself, its variants (``mode``) and the defaults chosen here are described in
:mod:`eegmtl.mtl.flat` (Phan et al., "Beyond Losses Reweighting: Empowering Multi-Task Learning
via the Generalization Perspective", ICCV 2025, §3.4, Eq. 7 and 11). This module holds the
validated configuration, its record form (``as_record``, whose fields feed config hashes) and
:data:`FMTL_MULTIMNIST`, the official code's MultiMNIST setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["FLAT_AGGREGATES", "FLAT_MODES", "FMTL_MULTIMNIST", "FlatConfig", "make_flat_config"]

_NORMS = ("separate", "joint")
#: how the loss and flat components of the shared gradient are aggregated (``FlatConfig``)
FLAT_AGGREGATES = ("separate", "loss_weights")
#: FlatConfig's fields in the groups they were added in; the first group is always recorded,
#: a later one only when one of its fields is not at its default (records keep their hashes)
_RECORD_GROUPS = (
    ("rho", "adaptive", "rho_heads", "norm", "eps"),
    ("mode", "every", "looksam_alpha"),
    ("start",),
    ("aggregate",),
)
FLAT_MODES = ("exact", "batched", "looksam", "subset")


@dataclass(frozen=True, repr=False)
class FlatConfig:
    """Options of the flat-minima (F-MTL) step.

    Parameters
    ----------
    rho : float, default 0.05
        Perturbation radius ρ_sh for the shared parameters (≥ 0; 0 gives the plain step).
    adaptive : bool, default False
        ASAM scaling (``|θ| ⊙ g`` norm, ``θ² ⊙ g`` direction); the official code's default.
    rho_heads : float or None, default None
        Radius ρ_ns for the head parameters; ``None`` uses ``rho`` (as the official code).
    norm : {"separate", "joint"}, default "separate"
        ``"separate"``: ε_sh and ε_ns normalised on their own (paper, NYUv2 code); ``"joint"``:
        one norm over shared + head parameters with radius ``rho`` (MultiMNIST code).
    eps : float, default 1e-12
        Added to the norm.
    mode : {"exact", "batched", "looksam", "subset"}, default "exact"
        How the perturbed passes are run (:mod:`eegmtl.mtl.flat`): ``"exact"`` and ``"batched"``
        give the paper's update; ``"looksam"`` and ``"subset"`` are cheaper approximations.
    every : int, default 1
        ``mode="looksam"``: the exact update every ``every`` steps (LookSAM's k; 5 in the
        paper). Must be 1 for the other modes.
    looksam_alpha : float, default 0.7
        LookSAM's α (scale of the reused flat component relative to ``‖g_i‖``).
    start : int or float, default 0
        First flat epoch: an ``int`` is an epoch index (0-based), a ``float`` in [0, 1) a
        fraction of ``max_epochs`` (epoch ``⌊start · max_epochs⌋``, so at least the last
        ``1 − start`` of the epochs are flat). Before it the step is the plain step.
    aggregate : {"separate", "loss_weights"} or None, default None
        ``"separate"``: the shared update is ``AGG(g^loss) + AGG(g^flat)``, the aggregator run
        on each part (the paper's Algorithm 1). ``"loss_weights"``: the task weights α of
        ``AGG(g^loss)`` also combine the flat rows, ``α @ (g^loss + g^flat) = α @ g^SAM``
        (the same for linear aggregators; one aggregator call per step; needs an aggregator
        whose update is ``weights @ G``, checked at the first step). ``None``: ``"separate"``
        for aggregators whose update scales with the gradients (``A(cG) = c A(G)``, the
        paper's four and all others but two), ``"loss_weights"`` for Nash-MTL and FairGrad,
        whose update has a norm fixed by the equation they solve (``G Gᵀ α = 1/α`` gives
        ``‖αᵀ G‖² = T``), so that run on the flat rows alone they would return a flat part as
        long as the loss part whatever ρ (``Aggregator.scale_equivariant``). Aggregators that
        rescale by their input's geometry (Aligned-MTL: σ_min and a numerical rank of the
        matrix it gets; IMTL-G: the rows' directions) scale equivariantly but still scale the
        two parts of ``"separate"`` independently, so the flat part can outweigh the loss part
        by orders of magnitude when a task's flat row is degenerate; ``"loss_weights"`` keeps
        their ratio.
    """

    rho: float = 0.05
    adaptive: bool = False
    rho_heads: float | None = None
    norm: str = "separate"
    eps: float = 1e-12
    mode: str = "exact"
    every: int = 1
    looksam_alpha: float = 0.7
    start: int | float = 0
    aggregate: str | None = None

    def __post_init__(self) -> None:
        if self.aggregate is not None and self.aggregate not in FLAT_AGGREGATES:
            raise ValueError(f"aggregate must be one of {FLAT_AGGREGATES} or None, got "
                             f"{self.aggregate!r}.")
        if not (float(self.rho) >= 0.0):
            raise ValueError(f"rho must be >= 0, got {self.rho}.")
        if self.rho_heads is not None and not (float(self.rho_heads) >= 0.0):
            raise ValueError(f"rho_heads must be >= 0, got {self.rho_heads}.")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {self.norm!r}.")
        if self.mode not in FLAT_MODES:
            raise ValueError(f"mode must be one of {FLAT_MODES}, got {self.mode!r}.")
        if isinstance(self.every, bool) or int(self.every) != self.every or self.every < 1:
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}.")
        if self.every != 1 and self.mode != "looksam":
            raise ValueError(
                f"every={self.every} applies to mode='looksam' only (got mode={self.mode!r}); "
                "set FlatConfig(mode='looksam', every=k) or leave every=1."
            )
        if not (float(self.looksam_alpha) > 0.0):
            raise ValueError(f"looksam_alpha must be > 0, got {self.looksam_alpha}.")
        start = self.start
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not start >= 0:
            raise ValueError(
                f"start must be an epoch index (int >= 0) or a fraction of max_epochs (float "
                f"in [0, 1)), got {start!r}."
            )
        if isinstance(start, float) and start >= 1.0:
            raise ValueError(
                f"start={start} is a fraction of max_epochs and must be < 1; give an int for "
                f"an epoch index (start={int(start)})."
            )

    def start_epoch(self, max_epochs: int) -> int:
        """The first flat epoch (0-based) for a run of ``max_epochs`` epochs."""
        if isinstance(self.start, float):
            return int(math.floor(self.start * int(max_epochs)))
        return int(self.start)

    def __repr__(self) -> str:
        # fields of the first two groups always, later ones when set (checkpoint
        # fingerprints store this repr; it stays what it was before ``start`` existed)
        shown = _RECORD_GROUPS[0] + _RECORD_GROUPS[1]
        rec = self.as_record()
        items = [(f.name, getattr(self, f.name)) for f in fields(self)
                 if f.name in shown or f.name in rec]
        return "FlatConfig(" + ", ".join(f"{k}={v!r}" for k, v in items) + ")"

    def as_record(self) -> dict[str, Any]:
        """The configuration as a JSON dict for records and config hashes.

        The fields come in the groups they were added in: ``rho``, ``adaptive``,
        ``rho_heads``, ``norm``, ``eps`` always; ``mode``, ``every``, ``looksam_alpha``
        (all three) when one of them is not at its default; ``start`` when it is not 0;
        ``aggregate`` when it is set (not ``None``). A configuration at the defaults of a later
        group records (and hashes) exactly as before that group existed.
        ``FlatConfig(**cfg.as_record()) == cfg``.
        """
        defaults = {f.name: f.default for f in fields(self)}
        out: dict[str, Any] = {}
        for k, group in enumerate(_RECORD_GROUPS):
            if k == 0 or any(getattr(self, n) != defaults[n] for n in group):
                out.update({n: getattr(self, n) for n in group})
        return out


#: The official code's MultiMNIST setting (ASAM, rho 2, one joint norm over shared + head).
FMTL_MULTIMNIST = FlatConfig(rho=2.0, adaptive=True, norm="joint")


def make_flat_config(
    flat: FlatConfig | Mapping[str, Any] | bool | float | None,
) -> FlatConfig | None:
    """Normalise the ``flat=`` argument: None/False -> None, True -> defaults, float -> rho."""
    if flat is None or flat is False:
        return None
    if flat is True:
        return FlatConfig()
    if isinstance(flat, FlatConfig):
        return flat
    if isinstance(flat, Mapping):
        return FlatConfig(**flat)
    if isinstance(flat, (int, float)):
        return FlatConfig(rho=float(flat))
    raise TypeError(
        f"flat must be None, a bool, a float (rho), a dict of FlatConfig fields or a "
        f"FlatConfig; got {type(flat).__name__}."
    )
