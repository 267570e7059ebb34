"""The flat-minima (F-MTL) part of one training step, used by :class:`~eegmtl.mtl.step.MTLStep`.

Phan et al., "Beyond Losses Reweighting: Empowering Multi-Task Learning via the
Generalization Perspective", ICCV 2025, Algorithm 1 (algorithm, variants and defaults in
:mod:`eegmtl.mtl.flat`). Given the clean parameter-level gradients of a batch,
:class:`FlatUpdate` computes the per-task flat components ``g^{i,SAM} − g^{i,loss}`` and the
heads' SAM gradients in the way ``FlatConfig.mode`` says (perturbed passes in turn, vectorised,
on 1/T chunks of the batch, or reused LookSAM directions), aggregates the loss part and the flat
part with the step's aggregator and writes ``.grad``. It also knows from which epoch it is on
(``FlatConfig.start``; before it the step runs its plain path).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from eegmtl.mtl.flat import (
    FlatConfig,
    LookSAMState,
    sharpness_aware_gradients,
    task_perturbations,
)
from eegmtl.mtl.flat_batched import batched_sam_gradients
from eegmtl.mtl.gradients import unflatten_to_grads

if TYPE_CHECKING:  # pragma: no cover
    from eegmtl.mtl.step import MTLStep

__all__ = ["FlatUpdate", "flat_aggregate"]


class FlatUpdate:
    """Flat-minima update of an :class:`~eegmtl.mtl.step.MTLStep` (its ``flat=`` option).

    Parameters
    ----------
    config : FlatConfig
    aggregator : Aggregator or None
        The step's aggregator, to resolve ``config.aggregate=None`` (:func:`flat_aggregate`);
        ``None``: resolved at the first flat step.

    Attributes
    ----------
    aggregate : {"separate", "loss_weights"} or None
        The aggregation of the two parts in use (``None`` until resolved).
    looksam : LookSAMState
        What ``mode="looksam"`` keeps between its exact steps.
    active : bool
        Whether the step takes the flat path now: from construction when ``config.start`` is
        0, otherwise from the epoch :meth:`begin_epoch` finds at or after the start.
    coefficients_checked : bool
        ``aggregate="loss_weights"``: whether the aggregator's weights were checked to rebuild
        its update (once, at the first flat step: the check reads values to the host).
    """

    def __init__(self, config: FlatConfig, aggregator: Any = None) -> None:
        self.config = config
        self.looksam = LookSAMState()
        self.active = config.start == 0
        self.coefficients_checked = False
        self.aggregate = None if aggregator is None else flat_aggregate(config, aggregator)

    def begin_epoch(self, epoch: int, max_epochs: int) -> None:
        """Switch the flat update on from epoch ``config.start_epoch(max_epochs)``."""
        self.active = int(epoch) >= self.config.start_epoch(max_epochs)

    def apply(
        self, step: MTLStep, x: Any, targets: Mapping[str, Any], grads: Any, w: Tensor,
        diag: dict[str, Any],
    ) -> Tensor | None:
        """Write the flat update into ``.grad``; returns the loss part's aggregator weights.

        Shared parameters get ``AGG(w ⊙ g^loss) + AGG(w ⊙ g^flat)`` (``aggregate="separate"``)
        or ``α @ (w ⊙ (g^loss + g^flat))`` with α the weights of ``AGG(w ⊙ g^loss)``
        (``"loss_weights"``), each head its SAM gradient (scaled by ``w_t`` with
        ``weight_heads``).
        """
        flat_rows, sam_heads = self.rows(step, x, targets, grads, diag)
        loss_matrix = grads.matrix * w[:, None]
        loss_part = step.aggregator(loss_matrix)
        if self.aggregate is None:
            self.aggregate = flat_aggregate(self.config, step.aggregator)
        if self.aggregate == "loss_weights":
            alpha = loss_part.weights.to(loss_matrix.dtype)
            if not self.coefficients_checked:  # a property of the aggregator: once per fit
                _check_coefficients(step.aggregator, alpha, loss_matrix, loss_part.vector)
                self.coefficients_checked = True
            flat_vector, flat_weights = alpha @ (flat_rows * w[:, None]), loss_part.weights
        else:
            flat_part = step.aggregator(flat_rows * w[:, None])
            flat_vector, flat_weights = flat_part.vector, flat_part.weights
        unflatten_to_grads(loss_part.vector + flat_vector, step.shared)
        step._set_head_grads(sam_heads, w)
        diag["flat_norm"] = flat_vector.detach().norm()
        diag["loss_part_norm"] = loss_part.vector.detach().norm()
        diag["flat_aggregator_weights"] = flat_weights.detach()
        return loss_part.weights

    def rows(
        self, step: MTLStep, x: Any, targets: Mapping[str, Any], grads: Any,
        diag: dict[str, Any],
    ) -> tuple[Tensor, list[list[Tensor | None]]]:
        """Per-task flat components (T, P) and head SAM gradients for ``config.mode``."""
        cfg, state = self.config, self.looksam
        if cfg.mode == "looksam" and not state.due(cfg.every):
            state.count += 1
            diag["flat_refresh"] = False
            return state.reuse(grads.matrix, grads.heads, float(cfg.looksam_alpha))
        device = step._device()
        on_cpu = device.type == "cpu"
        if cfg.mode in ("batched", "subset"):
            perturbations = task_perturbations(
                step.shared, step.heads, grads.matrix, grads.heads, cfg
            )

            def task_losses(out: Mapping[str, Tensor], tg: Mapping[str, Any]) -> Tensor:
                return step._full_precision(
                    torch.stack([t.loss(out[t.name], tg[t.name]) for t in step.tasks])
                )

            with step._autocast(device):
                sam, sam_heads, row_losses = batched_sam_gradients(
                    step.model, task_losses, x, targets, step.shared, step.heads,
                    perturbations, subset=cfg.mode == "subset",
                )
            if on_cpu and not torch.isfinite(row_losses).all():
                raise ValueError(
                    f"non-finite loss at the SAM-perturbed points ({row_losses.tolist()}); "
                    "lower rho (FlatConfig(rho=...)) or the learning rate."
                )
        else:
            def forward_task(i: int) -> Tensor:
                with step._autocast(device):
                    out = step.model.decode(step.model.encode(x))
                    task = step.tasks[i]
                    return step._full_precision(task.loss(out[task.name], targets[task.name]))

            sam, sam_heads = sharpness_aware_gradients(
                step.model, forward_task, step.shared, step.heads, grads.matrix, grads.heads,
                cfg, check_finite=on_cpu,
            )
        flat_rows = sam - grads.matrix
        if cfg.mode == "looksam":
            state.store(grads.matrix, flat_rows, grads.heads, sam_heads)
            state.count += 1
            diag["flat_refresh"] = True
        return flat_rows, sam_heads


def flat_aggregate(config: FlatConfig, aggregator: Any) -> str:
    """How the loss and flat parts are aggregated for ``aggregator``: ``config.aggregate``
    when set, else ``"separate"`` (the paper's Algorithm 1) for aggregators whose update scales
    with the gradients and ``"loss_weights"`` for those whose update norm does not
    (``aggregator.scale_equivariant`` False: Nash-MTL, FairGrad). An explicit ``"separate"``
    with such an aggregator is kept, with a warning."""
    equivariant = bool(getattr(aggregator, "scale_equivariant", True))
    if config.aggregate is None:
        return "separate" if equivariant else "loss_weights"
    if config.aggregate == "separate" and not equivariant:
        name = getattr(aggregator, "name", type(aggregator).__name__)
        warnings.warn(
            f"FlatConfig(aggregate='separate') with {name}: its update norm does not scale "
            "with the gradients, so the flat part it returns on the flat rows alone is as long "
            "as the loss part whatever rho. aggregate='loss_weights' (the default for it) "
            "combines the flat rows with the loss part's weights.", UserWarning, stacklevel=3)
    return config.aggregate


def _check_coefficients(aggregator: Any, alpha: Tensor, matrix: Tensor, vector: Tensor) -> None:
    """Raise when ``vector`` is not ``alpha @ matrix`` (``FlatConfig(aggregate="loss_weights")``
    reuses the weights as the coefficients of the rows)."""
    rebuilt = alpha @ matrix
    scale = float(vector.norm()) + float(rebuilt.norm())
    if scale > 0.0 and float((rebuilt - vector).norm()) > 1e-3 * scale:
        name = getattr(aggregator, "name", type(aggregator).__name__)
        raise ValueError(
            f"FlatConfig(aggregate='loss_weights') needs an aggregator whose update is its "
            f"weights times the gradient matrix; {name}'s is not (its weights do not rebuild "
            "its update). Use aggregate='separate' with this aggregator."
        )
