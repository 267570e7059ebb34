"""Flat-minima multi-task training (F-MTL): a sharpness-aware step around any aggregator.

Phan, Tran, Le, Ho, Bui & Nguyen, "Beyond Losses Reweighting: Empowering Multi-Task Learning
via the Generalization Perspective", ICCV 2025 (arXiv 2211.13723), §3.4 and Algorithm 1;
official code VietHoang1512/FS-MTL (mtl-reference §4.1). For each task ``i``:

1. clean gradients ``g_sh^{i,loss}`` (shared) and ``g_ns^i`` (task ``i``'s head) of ``L_i(θ)``;
2. per-task perturbation (paper Eq. 7, 11) ``ε_sh^i = ρ g_sh^{i,loss} / ‖g_sh^{i,loss}‖`` and
   ``ε_ns^i = ρ_ns g_ns^i / ‖g_ns^i‖``; with ``adaptive=True`` (ASAM, Kwon et al. 2021) the
   norm is taken of ``|θ| ⊙ g`` and ``ε = ρ θ² ⊙ g / ‖|θ| ⊙ g‖``;
3. SAM gradients ``g^{i,SAM}`` of ``L_i`` at ``θ + ε^i`` (BatchNorm running statistics are
   *not* updated by this pass; the batch statistics are still used, as ``bypass_bn.py``);
4. flat component ``g_sh^{i,flat} = g_sh^{i,SAM} − g_sh^{i,loss}``;
5. shared update ``AGG(g_sh^{·,loss}) + AGG(g_sh^{·,flat})`` (the same aggregator instance run
   twice, as the official code); every head is updated with its own ``g_ns^{i,SAM}``.

Loss-level weightings (EW, RLW, UW, ...) scale both rows of task ``i`` by ``w_i`` before
aggregation ("F-EW", "F-RLW"). Cost: the per-task clean gradients plus one extra forward and
backward per task.

Defaults (chosen here, documented because the paper and the code differ): ``rho=0.05`` with
plain SAM (``adaptive=False``) and **separate** norms for the shared and head parts (paper
Eq. 7/11 and the official NYUv2/Cityscapes code). The official code's vision default is
``adaptive=True, rho=2`` (ASAM; its run.sh) and its MultiMNIST code normalises shared + head
jointly (``norm="joint"``); :data:`FMTL_MULTIMNIST` (``FlatConfig(rho=2.0, adaptive=True,
norm="joint")``) reproduces the MultiMNIST runs. We default to plain SAM with a small ρ
because our EEG models (MixNet, max-norm constrained, ~40k parameters) have small weights for
which the ASAM radius ρ = 2 is not calibrated; ρ = 0 reproduces the non-flat step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.mtl.gradients import flatten

__all__ = [
    "FMTL_MULTIMNIST",
    "FlatConfig",
    "frozen_batchnorm",
    "make_flat_config",
    "sharpness_aware_gradients",
]

_NORMS = ("separate", "joint")


@dataclass(frozen=True)
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
    """

    rho: float = 0.05
    adaptive: bool = False
    rho_heads: float | None = None
    norm: str = "separate"
    eps: float = 1e-12

    def __post_init__(self) -> None:
        if not (float(self.rho) >= 0.0):
            raise ValueError(f"rho must be >= 0, got {self.rho}.")
        if self.rho_heads is not None and not (float(self.rho_heads) >= 0.0):
            raise ValueError(f"rho_heads must be >= 0, got {self.rho_heads}.")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {self.norm!r}.")


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


class frozen_batchnorm:  # noqa: N801 - used as a context manager
    """Context manager: BatchNorm running statistics are restored on exit.

    The forward pass still normalises with batch statistics in train mode (as F-MTL's
    ``bypass_bn``); only ``running_mean``, ``running_var`` and ``num_batches_tracked`` are
    saved and written back, so the perturbed pass leaves no trace.
    """

    def __init__(self, model: nn.Module) -> None:
        self.modules = [
            m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats
        ]
        self._saved: list[list[Tensor | None]] = []

    def __enter__(self) -> frozen_batchnorm:
        self._saved = [
            [None if b is None else b.detach().clone()
             for b in (m.running_mean, m.running_var, m.num_batches_tracked)]
            for m in self.modules
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for m, saved in zip(self.modules, self._saved):
                for buf, old in zip((m.running_mean, m.running_var, m.num_batches_tracked), saved):
                    if buf is not None and old is not None:
                        buf.copy_(old)


def _perturbation(
    params: Sequence[Tensor], grads: Sequence[Tensor], rho: float, adaptive: bool, eps: float
) -> list[Tensor]:
    if rho == 0.0:
        return [torch.zeros_like(p) for p in params]
    scaled = [(p.detach().abs() * g if adaptive else g) for p, g in zip(params, grads)]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled]))
    scale = rho / (norm + eps)
    return [((p.detach() ** 2) * g if adaptive else g) * scale for p, g in zip(params, grads)]


def sharpness_aware_gradients(
    model: nn.Module,
    forward_task: Callable[[int], Tensor],
    shared: Sequence[nn.Parameter],
    heads: Sequence[Sequence[nn.Parameter]],
    clean_matrix: Tensor,
    clean_heads: Sequence[Sequence[Tensor | None]],
    config: FlatConfig,
) -> tuple[Tensor, list[list[Tensor | None]]]:
    """SAM gradients of every task at its own perturbed point.

    Parameters
    ----------
    model : nn.Module
        The model (its BatchNorm statistics are frozen during the perturbed passes).
    forward_task : callable
        ``forward_task(i)`` runs a full forward (encode + decode) and returns task ``i``'s
        scalar loss at the *current* parameters.
    shared, heads : parameters
        Shared parameters and, per task, its head parameters.
    clean_matrix : Tensor
        (T, P) clean per-task gradients on the shared parameters.
    clean_heads : list of list of Tensor
        Clean per-task head gradients.
    config : FlatConfig

    Returns
    -------
    sam_matrix : Tensor
        (T, P) SAM gradients on the shared parameters (flat component = ``sam − clean``).
    sam_heads : list of list of Tensor
        Per task, the SAM gradient of its head parameters.
    """
    n_tasks = clean_matrix.shape[0]
    rho_h = config.rho if config.rho_heads is None else float(config.rho_heads)
    shared_backup = [p.detach().clone() for p in shared]
    sizes = [p.numel() for p in shared]
    rows: list[Tensor] = []
    sam_heads: list[list[Tensor | None]] = []
    with frozen_batchnorm(model):
        for i in range(n_tasks):
            g_sh = [c.view_as(p) for c, p in zip(clean_matrix[i].split(sizes), shared)]
            head_params = list(heads[i])
            g_ns = [
                torch.zeros_like(p) if g is None else g for g, p in zip(clean_heads[i], head_params)
            ]
            if config.norm == "joint":
                eps_all = _perturbation(
                    [*shared, *head_params], [*g_sh, *g_ns], config.rho, config.adaptive,
                    config.eps,
                )
                e_sh, e_ns = eps_all[: len(shared)], eps_all[len(shared):]
            else:
                e_sh = _perturbation(shared, g_sh, config.rho, config.adaptive, config.eps)
                e_ns = (
                    _perturbation(head_params, g_ns, rho_h, config.adaptive, config.eps)
                    if head_params else []
                )
            head_backup = [p.detach().clone() for p in head_params]
            with torch.no_grad():
                for p, e in zip([*shared, *head_params], [*e_sh, *e_ns]):
                    p.add_(e)
            try:
                loss = forward_task(i)
                if not torch.isfinite(loss):
                    raise ValueError(
                        f"the loss of task {i} is {loss.item()} at the SAM-perturbed point; "
                        "lower rho (FlatConfig(rho=...)) or the learning rate."
                    )
                grads = torch.autograd.grad(
                    loss, [*shared, *head_params], allow_unused=True
                ) if loss.requires_grad else [None] * (len(shared) + len(head_params))
            finally:
                with torch.no_grad():
                    for p, b in zip([*shared, *head_params], [*shared_backup, *head_backup]):
                        p.copy_(b)
            rows.append(flatten(grads[: len(shared)], shared))
            sam_heads.append(list(grads[len(shared):]))
    return torch.stack(rows), sam_heads
