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

Variants (``FlatConfig(mode=...)``); ``"exact"`` is the default and the paper's update:

- ``"exact"``: the T perturbed passes one after the other (:func:`sharpness_aware_gradients`).
- ``"batched"``: the same update with the T perturbed passes in one vectorised call
  (``torch.func.functional_call`` under ``torch.vmap`` over the T perturbed parameter sets,
  :mod:`eegmtl.mtl.flat_batched`); equals ``"exact"`` to float rounding (every head is also
  evaluated in every row, multiplied by zero). With dropout, masks are drawn per row, so the
  two agree in distribution only.
- ``"looksam"`` (deviation; Liu, Mai, Chen, Hsieh & You, "Towards Efficient and Scalable
  Sharpness-Aware Minimization", CVPR 2022, LookSAM): the exact update every ``every`` = k
  steps; there, per task, the part of the flat component orthogonal to the clean gradient,
  ``v_i = g_i^flat − (⟨g_i^flat, g_i⟩/‖g_i‖²) g_i``, and the heads' flat components are
  stored. In the k − 1 steps between, no perturbed pass: ``g_i^flat ≈ α ‖g_i‖/‖v_i‖ v_i``
  (LookSAM Eq. 6, ``looksam_alpha`` = α = 0.7, the paper's value) on the current clean
  ``g_i``, and each head gets its clean gradient plus its stored flat component. ``every=1``
  is the exact update.
- ``"subset"`` (deviation; m-sharpness: Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware
  Minimization for Efficiently Improving Generalization", ICLR 2021, §4.1; Andriushchenko &
  Flammarion, "Towards Understanding Sharpness-Aware Minimization", ICML 2022): the perturbed
  pass of task ``i`` runs on the ``i``-th of T equal chunks of the batch (chunk size
  ``⌊B/T⌋``; the last ``B mod T`` samples take no perturbed pass), all T chunks in one
  vectorised call, so the T passes together cost one pass over the batch. The perturbation
  ``ε^i`` still comes from the full-batch clean gradient, and the flat component is
  ``g^{i,SAM}(chunk_i) − g^{i,loss}(batch)``: for F-EW the shared update is then exactly
  the m-sharpness SAM gradient of the chunks; for other aggregators the flat rows carry the
  chunk's sampling noise. BatchNorm uses chunk statistics in the perturbed pass.

``FlatConfig(start=...)`` (any mode; the remedy named in the F-MTL paper's discussion of its
cost): flat training only in the last epochs. Before epoch ``start`` (an epoch index, or a
fraction of the trainer's ``max_epochs``) the step is the plain step of the same weighting and
aggregator; :class:`~eegmtl.mtl.trainer.Trainer` switches at that epoch
(:meth:`~eegmtl.mtl.step.MTLStep.begin_epoch`). ``start=0`` (the default) is the paper's
update from the first step.

Accuracy at one budget (``python pipelines/flat_variants.py --seeds 0 1 --threads 1``:
MultiMNIST, LeNet, first 15 000 training pairs, 2 epochs, Adam, F-PCGrad with the official
MultiMNIST flat setting, test average accuracy, mean of 2 seeds): exact 79.09 %, LookSAM
(k = 5) 75.89 %, subset 78.25 % (plain PCGrad 85.07 %: at this short budget the ρ = 2 ASAM
perturbation slows training, so these numbers compare the variants with each other, not flat
with non-flat training).

Defaults (chosen here, documented because the paper and the code differ): ``rho=0.05`` with
plain SAM (``adaptive=False``) and **separate** norms for the shared and head parts (paper
Eq. 7/11 and the official NYUv2/Cityscapes code). The official code's vision default is
``adaptive=True, rho=2`` (ASAM; its run.sh) and its MultiMNIST code normalises shared + head
jointly (``norm="joint"``); :data:`FMTL_MULTIMNIST` (``FlatConfig(rho=2.0, adaptive=True,
norm="joint")``) reproduces the MultiMNIST runs. We default to plain SAM with a small ρ
because our EEG models (MixNet, max-norm constrained, ~40k parameters) have small weights for
which the ASAM radius ρ = 2 is not calibrated; ρ = 0 reproduces the non-flat step.

:class:`FlatConfig`, :func:`make_flat_config` and :data:`FMTL_MULTIMNIST` live in
:mod:`eegmtl.mtl.flat_config` and are re-exported here; this module holds the perturbation
maths and the perturbed passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.mtl.flat_config import FLAT_MODES as FLAT_MODES
from eegmtl.mtl.flat_config import FMTL_MULTIMNIST, FlatConfig, make_flat_config
from eegmtl.mtl.gradients import flatten

__all__ = [
    "FMTL_MULTIMNIST",
    "FlatConfig",
    "frozen_batchnorm",
    "make_flat_config",
    "LookSAMState",
    "sharpness_aware_gradients",
    "task_perturbations",
]


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


def task_perturbations(
    shared: Sequence[Tensor],
    heads: Sequence[Sequence[Tensor]],
    clean_matrix: Tensor,
    clean_heads: Sequence[Sequence[Tensor | None]],
    config: FlatConfig,
) -> list[tuple[list[Tensor], list[Tensor]]]:
    """Per task ``i``, ``(ε_sh^i, ε_ns^i)`` (paper Eq. 7, 11; ASAM and joint norm per config)."""
    rho_h = config.rho if config.rho_heads is None else float(config.rho_heads)
    sizes = [p.numel() for p in shared]
    out = []
    for i in range(clean_matrix.shape[0]):
        g_sh = [c.view_as(p) for c, p in zip(clean_matrix[i].split(sizes), shared)]
        head_params = list(heads[i])
        g_ns = [
            torch.zeros_like(p) if g is None else g for g, p in zip(clean_heads[i], head_params)
        ]
        if config.norm == "joint":
            eps_all = _perturbation(
                [*shared, *head_params], [*g_sh, *g_ns], config.rho, config.adaptive, config.eps,
            )
            e_sh, e_ns = eps_all[: len(shared)], eps_all[len(shared):]
        else:
            e_sh = _perturbation(shared, g_sh, config.rho, config.adaptive, config.eps)
            e_ns = (
                _perturbation(head_params, g_ns, rho_h, config.adaptive, config.eps)
                if head_params else []
            )
        out.append((e_sh, e_ns))
    return out


def sharpness_aware_gradients(
    model: nn.Module,
    forward_task: Callable[[int], Tensor],
    shared: Sequence[nn.Parameter],
    heads: Sequence[Sequence[nn.Parameter]],
    clean_matrix: Tensor,
    clean_heads: Sequence[Sequence[Tensor | None]],
    config: FlatConfig,
    *,
    check_finite: bool = True,
) -> tuple[Tensor, list[list[Tensor | None]]]:
    """SAM gradients of every task at its own perturbed point (the T passes in turn).

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
    check_finite : bool, default True
        Raise when a perturbed loss is not finite (reads the loss on the host; the step turns
        it off on accelerators to keep the step free of host syncs).

    Returns
    -------
    sam_matrix : Tensor
        (T, P) SAM gradients on the shared parameters (flat component = ``sam − clean``).
    sam_heads : list of list of Tensor
        Per task, the SAM gradient of its head parameters.
    """
    perturbations = task_perturbations(shared, heads, clean_matrix, clean_heads, config)
    shared_backup = [p.detach().clone() for p in shared]
    rows: list[Tensor] = []
    sam_heads: list[list[Tensor | None]] = []
    with frozen_batchnorm(model):
        for i, (e_sh, e_ns) in enumerate(perturbations):
            head_params = list(heads[i])
            head_backup = [p.detach().clone() for p in head_params]
            with torch.no_grad():
                for p, e in zip([*shared, *head_params], [*e_sh, *e_ns]):
                    p.add_(e)
            try:
                loss = forward_task(i)
                if check_finite and not torch.isfinite(loss):
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


class LookSAMState:
    """What ``mode="looksam"`` keeps between its exact steps (see the module docstring).

    Attributes
    ----------
    count : int
        Flat steps taken so far (the exact update runs when ``count % every == 0``).
    ortho : Tensor or None
        (T, P) per-task flat components orthogonal to the clean gradients, ``v_i``.
    head_flat : list of list of Tensor or None
        Per task, ``g_ns^{i,SAM} − g_ns^i`` of the last exact step.
    """

    def __init__(self) -> None:
        self.count = 0
        self.ortho: Tensor | None = None
        self.head_flat: list[list[Tensor | None]] | None = None

    def due(self, every: int) -> bool:
        """True when this step must run the exact update."""
        return self.ortho is None or self.count % int(every) == 0

    def store(
        self,
        clean: Tensor,
        flat_rows: Tensor,
        clean_heads: Sequence[Sequence[Tensor | None]],
        sam_heads: Sequence[Sequence[Tensor | None]],
    ) -> None:
        """Keep ``v_i`` (LookSAM's ``g_v``) and the heads' flat components."""
        g2 = (clean * clean).sum(1, keepdim=True).clamp_min(1e-30)
        self.ortho = (flat_rows - (flat_rows * clean).sum(1, keepdim=True) / g2 * clean).detach()
        self.head_flat = [
            [None if s is None else (s - (0 if c is None else c)).detach()
             for c, s in zip(ch, sh)]
            for ch, sh in zip(clean_heads, sam_heads)
        ]

    def reuse(
        self, clean: Tensor, clean_heads: Sequence[Sequence[Tensor | None]], alpha: float
    ) -> tuple[Tensor, list[list[Tensor | None]]]:
        """Approximate flat rows ``α ‖g_i‖/‖v_i‖ v_i`` and head SAM gradients (clean + stored)."""
        assert self.ortho is not None and self.head_flat is not None
        scale = alpha * clean.norm(dim=1, keepdim=True) / self.ortho.norm(
            dim=1, keepdim=True
        ).clamp_min(1e-30)
        heads = [
            [c if f is None else (f if c is None else c + f) for c, f in zip(ch, fh)]
            for ch, fh in zip(clean_heads, self.head_flat)
        ]
        return scale * self.ortho, heads

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "ortho": self.ortho, "head_flat": self.head_flat}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.count = int(state.get("count", 0))
        self.ortho = state.get("ortho")
        self.head_flat = state.get("head_flat")
