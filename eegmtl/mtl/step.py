"""One multi-task training step: losses -> weighting -> per-task gradients -> aggregator -> .grad.

The three concerns stay apart (DESIGN.md): the weighting maps losses to weights, the gradient
engine (:mod:`eegmtl.mtl.gradients`) produces per-task gradients, the aggregator maps the
weighted (T, P) matrix to one update. :class:`MTLStep` composes them for a model following the
:class:`~eegmtl.mtl.tasks.MultiTaskModel` protocol.

Paths
-----
- **fast path** (linear aggregator such as ``Sum``/``Mean``, weighting without
  ``needs_gradients``, no flat option): one backward of ``Σ_t c_t w_t L_t`` where ``c`` are the
  aggregator's constant weights -- exactly the cost of equal weighting. The heads then see the
  loss weights ``w_t`` (their gradients are divided by ``c_t`` afterwards, so ``Mean`` and
  ``Sum`` give the heads the same gradient), as in RLW, where the random weights also reach
  the heads. This equals the explicit path with ``weight_heads=True``.
- **parameter level**: the (T, P) matrix of the shared parameters (one batched VJP through the
  trunk), rows scaled by ``w``, aggregated, written into the shared ``.grad``.
- **representation level** (aggregators with ``level = "representation"``: MGDA-UB,
  Aligned-MTL-UB, RGW, GradDrop): the (T, B·d) matrix on a detached copy of ``z``; the
  aggregated update is pushed through the trunk with one ``z.backward(update)``.
- **flat** (:mod:`eegmtl.mtl.flat`, F-MTL; :class:`~eegmtl.mtl.flat_step.FlatUpdate`):
  parameter-level matrix (also for representation-level aggregators) + per-task SAM
  gradients, the aggregator applied to the loss part and to the flat part, the two summed;
  ``FlatConfig.mode`` says how the perturbed passes run, ``FlatConfig.start`` from which
  epoch (:meth:`MTLStep.begin_epoch`; before it, the plain path of the same method).

Arithmetic choices are explicit and recorded by :meth:`MTLStep.config`: the trunk backend
(``gradient_mode``, ``"auto"`` resolved by a fixed rule on the model's layers), the flat
mode and ``autocast`` (``"bf16"``: forward passes under ``torch.autocast`` with bfloat16,
gradients and the aggregation in the parameters' dtype).

Host syncs: on the CPU the step checks every loss for NaN/Inf and raises at once; on an
accelerator it reads nothing back to the host (no ``.item()``/``float()``): the check is left
to the caller, which finds the losses in :class:`StepResult` (the :class:`Trainer` reads them
every step anyway).

In the non-fast paths the task heads get their own *unweighted* gradient (LibMTL, Aligned-MTL,
RGW); ``weight_heads=True`` multiplies task ``t``'s head gradient by ``w_t``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.mtl.aggregators import Aggregator, get_aggregator
from eegmtl.mtl.flat import FlatConfig, LookSAMState, make_flat_config
from eegmtl.mtl.flat_step import FlatUpdate
from eegmtl.mtl.gradients import GradientEngine, parameters_requiring_grad, unflatten_to_grads
from eegmtl.mtl.losses import compute_losses
from eegmtl.mtl.methods import COMBINED_METHODS, resolve_method
from eegmtl.mtl.step_result import StepResult, _diagnostics
from eegmtl.mtl.tasks import Task, check_tasks
from eegmtl.mtl.weightings import Weighting, get_weighting

# compute_losses, resolve_method, COMBINED_METHODS and StepResult live in eegmtl.mtl.losses,
# eegmtl.mtl.methods and eegmtl.mtl.step_result; re-exported here, where they were first defined
__all__ = ["COMBINED_METHODS", "MTLStep", "StepResult", "compute_losses", "resolve_method"]

_LEVELS = ("auto", "parameters", "representation")
_AUTOCAST = {None: None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


class MTLStep:
    """One training step of a hard-parameter-sharing multi-task model.

    Parameters
    ----------
    model : nn.Module
        Implements ``encode``, ``decode``, ``shared_parameters``, ``task_parameters``,
        ``task_names`` (:class:`~eegmtl.mtl.tasks.MultiTaskModel`); ``apply_constraints()`` is
        called after every optimiser step when present (MixNet's max-norm).
    tasks : sequence of Task
        One per model head, same names as ``model.task_names``.
    weighting : str or Weighting, default "ew"
        Loss weighting (registry name or instance).
    aggregator : str or Aggregator, default "sum"
        Gradient aggregator (registry name or instance).
    optimizer : torch.optim.Optimizer or None
        Must hold the model's parameters and ``weighting.parameters()``. ``None``: the step
        only writes ``.grad`` (no update, no constraints).
    grad_level : {"auto", "parameters", "representation"}, default "auto"
        ``"auto"`` uses ``aggregator.level`` (``"parameters"`` when absent).
    weight_heads : bool, default False
        Multiply task ``t``'s head gradient by ``w_t`` in the non-fast paths.
    flat : FlatConfig, dict, bool, float or None, default None
        Flat-minima (F-MTL) option, see :class:`~eegmtl.mtl.flat.FlatConfig`.
    gradient_mode : {"auto", "vmap", "loop"}, default "auto"
        Trunk backend of the per-task Jacobian (:class:`~eegmtl.mtl.gradients.GradientEngine`);
        ``"auto"`` resolves by a fixed rule on the model's layers
        (:func:`~eegmtl.mtl.gradients.resolve_gradient_mode`), never by timing.
    autocast : {None, "bf16"}, default None
        ``"bf16"``: run the forward passes under ``torch.autocast`` (bfloat16) on the model's
        device; parameters, gradients and the aggregation stay in the parameters' dtype.
    fast_path : bool, default True
        Allow the one-backward path for linear aggregators (set False to force the explicit
        per-task path, e.g. to test that both agree).
    diagnostics : bool, default False
        Add per-task gradient norms and the minimum pairwise cosine to the result.
    """

    def __init__(
        self,
        model: nn.Module,
        tasks: Sequence[Task],
        weighting: str | Weighting = "ew",
        aggregator: str | Aggregator = "sum",
        optimizer: torch.optim.Optimizer | None = None,
        *,
        grad_level: str = "auto",
        weight_heads: bool = False,
        flat: FlatConfig | Mapping[str, Any] | bool | float | None = None,
        gradient_mode: str = "auto",
        fast_path: bool = True,
        diagnostics: bool = False,
        autocast: str | None = None,
    ) -> None:
        for attr in ("encode", "decode", "shared_parameters", "task_parameters", "task_names"):
            if not hasattr(model, attr):
                raise TypeError(
                    f"the model must implement the MultiTaskModel protocol (encode, decode, "
                    f"shared_parameters, task_parameters, task_names); {type(model).__name__} "
                    f"has no {attr!r}."
                )
        self.model = model
        self.tasks = check_tasks(tasks, model)
        self.n_tasks = len(self.tasks)
        self.weighting = get_weighting(weighting, self.n_tasks)
        self.aggregator = get_aggregator(aggregator)
        if grad_level not in _LEVELS:
            raise ValueError(f"grad_level must be one of {_LEVELS}, got {grad_level!r}.")
        self.grad_level = grad_level
        self.level = (
            getattr(self.aggregator, "level", "parameters") if grad_level == "auto" else grad_level
        )
        self.weight_heads = bool(weight_heads)
        self.flat = make_flat_config(flat)
        self._flat = None if self.flat is None else FlatUpdate(self.flat, self.aggregator)
        if autocast not in _AUTOCAST:
            raise ValueError(f"autocast must be None or 'bf16', got {autocast!r}.")
        self.autocast = None if autocast is None else "bf16"
        self.engine = GradientEngine(
            gradient_mode, model=model, mixed_precision=self.autocast is not None
        )
        self.fast_path = bool(fast_path)
        self.diagnostics = bool(diagnostics)
        self.optimizer = optimizer

        self.shared = parameters_requiring_grad(model.shared_parameters())
        if not self.shared:
            raise ValueError("the model has no shared parameters requiring grad.")
        shared_ids = {id(p) for p in self.shared}
        self.heads: list[list[nn.Parameter]] = []
        for task in self.tasks:
            params = parameters_requiring_grad(model.task_parameters(task.name))
            overlap = [i for i, p in enumerate(params) if id(p) in shared_ids]
            if overlap:
                raise ValueError(
                    f"task_parameters({task.name!r}) overlaps shared_parameters(); a parameter "
                    "must be either shared or task-specific."
                )
            self.heads.append(params)
        self._wparams = list(self.weighting.parameters())
        if optimizer is not None and self._wparams:
            in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
            if any(id(p) not in in_opt for p in self._wparams):
                raise ValueError(
                    f"the weighting {self.weighting!r} has learnable parameters that are not in "
                    "the optimizer; add weighting.parameters() to it (the Trainer does this)."
                )
        self._linear_coef: Tensor | None = None
        self._linear_coef_list: list[float] | None = None

    def config(self) -> dict[str, Any]:
        """Every option of the step that changes the arithmetic, resolved (for records)."""
        return {
            "weighting": type(self.weighting).__name__,
            "aggregator": type(self.aggregator).__name__,
            "level": self.level,
            "weight_heads": self.weight_heads,
            "gradient_mode": self.engine.chosen,
            "fast_path": self.uses_fast_path,
            "flat": None if self.flat is None else self.flat.as_record(),
            "autocast": self.autocast,
        }

    # ------------------------------------------------------------------ helpers
    @property
    def looksam(self) -> LookSAMState | None:
        """State of ``FlatConfig(mode="looksam")`` (``None`` without the flat option)."""
        return None if self._flat is None else self._flat.looksam

    @property
    def flat_active(self) -> bool:
        """Whether the next step takes the flat path (``FlatConfig.start`` reached)."""
        return self._flat is not None and self._flat.active

    def begin_epoch(self, epoch: int, max_epochs: int) -> None:
        """Called by the trainer before each epoch: switches the flat update on from epoch
        ``FlatConfig.start`` (an index or a fraction of ``max_epochs``); no-op otherwise."""
        if self._flat is not None:
            self._flat.begin_epoch(epoch, max_epochs)

    @property
    def uses_fast_path(self) -> bool:
        """True when the step does one backward of the weighted loss sum."""
        return (
            self.fast_path
            and not self.flat_active
            and bool(getattr(self.aggregator, "linear", False))
            and not self.weighting.needs_gradients
        )

    def _coef(self, like: Tensor) -> Tensor:
        # computed once on the CPU (the host copy serves the head rescaling without syncs)
        if self._linear_coef_list is None:
            eye = torch.eye(self.n_tasks, dtype=torch.float64)
            self._linear_coef_list = [float(c) for c in self.aggregator(eye).vector.detach()]
        if (
            self._linear_coef is None
            or self._linear_coef.device != like.device
            or self._linear_coef.dtype != like.dtype
        ):
            self._linear_coef = torch.tensor(
                self._linear_coef_list, dtype=like.dtype, device=like.device
            )
        return self._linear_coef

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def _device(self) -> torch.device:
        return self.shared[0].device

    def _losses(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Any]) -> Tensor:
        losses = compute_losses(
            outputs, targets, self.tasks, check_finite=self._device().type == "cpu"
        )
        return self._full_precision(losses)

    def _full_precision(self, t: Tensor) -> Tensor:
        """Losses computed under bf16 autocast, back in float32 (unchanged otherwise)."""
        return t.float() if self.autocast is not None and t.dtype == torch.bfloat16 else t

    def _zero_grad(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        for p in self.model.parameters():
            p.grad = None
        for p in self._wparams:
            p.grad = None

    def _weights(self, losses: Tensor, matrix: Tensor | None) -> Tensor:
        w = self.weighting.weights(losses.detach(), matrix)
        w = torch.as_tensor(w, dtype=losses.dtype, device=losses.device).detach()
        if w.shape != (self.n_tasks,):
            raise ValueError(
                f"the weighting {self.weighting!r} returned weights of shape {tuple(w.shape)}; "
                f"expected ({self.n_tasks},)."
            )
        return w

    def _weighting_grads(self, losses: Tensor) -> None:
        if not self._wparams:
            return
        wl = self.weighting.loss(losses.detach())
        if isinstance(wl, Tensor) and wl.requires_grad:
            grads = torch.autograd.grad(wl, self._wparams, allow_unused=True)
            for p, g in zip(self._wparams, grads):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g

    def _set_head_grads(self, head_grads: Sequence[Sequence[Tensor | None]], w: Tensor) -> None:
        for t, (params, grads) in enumerate(zip(self.heads, head_grads)):
            scale = w[t] if self.weight_heads else None
            for p, g in zip(params, grads):
                if g is None:
                    continue
                g = g * scale if scale is not None else g
                p.grad = g if p.grad is None else p.grad + g

    def _finish(self) -> None:
        if self.optimizer is not None:
            self.optimizer.step()
            constrain = getattr(self.model, "apply_constraints", None)
            if callable(constrain):
                constrain()

    # ------------------------------------------------------------------ step
    def __call__(self, x: Any, targets: Mapping[str, Any]) -> StepResult:
        """Run one step on a batch and return its :class:`StepResult`."""
        return self.step(x, targets)

    def step(self, x: Any, targets: Mapping[str, Any]) -> StepResult:
        """Run one step on a batch ``(x, {task: target})``."""
        self._zero_grad()
        if self.uses_fast_path:
            return self._fast_step(x, targets)
        return self._explicit_step(x, targets)

    def _fast_step(self, x: Any, targets: Mapping[str, Any]) -> StepResult:
        with self._autocast(self._device()):
            outputs = self.model.decode(self.model.encode(x))
            losses = self._losses(outputs, targets)
        w = self._weights(losses, None)
        coef = self._coef(losses)
        (losses @ (coef * w)).backward()
        assert self._linear_coef_list is not None
        for params, c in zip(self.heads, self._linear_coef_list):  # heads see w_t, not c_t w_t
            if c not in (0.0, 1.0):
                for p in params:
                    if p.grad is not None:
                        p.grad.div_(c)
        self._weighting_grads(losses)
        self._finish()
        return StepResult(losses.detach(), w, coef, {"path": "fast"})

    def _explicit_step(self, x: Any, targets: Mapping[str, Any]) -> StepResult:
        with self._autocast(self._device()):
            rep = self.model.encode(x)
            if not isinstance(rep, Tensor):
                raise TypeError(
                    f"encode() must return one tensor (the shared representation), got "
                    f"{type(rep).__name__}."
                )
            rep_d = rep.detach().requires_grad_(True)
            outputs = self.model.decode(rep_d)
            losses = self._losses(outputs, targets)
        flat_on = self.flat_active
        level = "parameters" if flat_on else self.level
        grads = self.engine.compute(losses, rep, rep_d, self.shared, self.heads, level)
        w = self._weights(losses, grads.matrix if self.weighting.needs_gradients else None)
        diag: dict[str, Any] = {"path": "flat" if flat_on else level}
        if self.diagnostics:
            diag.update(_diagnostics(grads.matrix))

        if flat_on:
            assert self._flat is not None
            agg_w = self._flat.apply(self, x, targets, grads, w, diag)
        else:
            agg = self.aggregator(grads.matrix * w[:, None])
            if level == "parameters":
                unflatten_to_grads(agg.vector, self.shared)
            else:
                torch.autograd.backward(
                    rep, grad_tensors=agg.vector.view_as(rep).to(rep.dtype), inputs=self.shared
                )
            self._set_head_grads(grads.heads, w)
            agg_w = agg.weights
        self._weighting_grads(losses)
        self._finish()
        return StepResult(
            losses.detach(), w, None if agg_w is None else agg_w.detach(), diag
        )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Weighting, aggregator and gradient-engine state (for checkpoints)."""
        return {
            "weighting": self.weighting.state_dict(),
            "weighting_params": [p.detach().clone() for p in self._wparams],
            "aggregator": self.aggregator.state_dict(),
            "engine": self.engine.state_dict(),
            "looksam": None if self._flat is None else self._flat.looksam.state_dict(),
            "flat_active": None if self._flat is None else self._flat.active,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.weighting.load_state_dict(state.get("weighting", {}))
        with torch.no_grad():
            for p, v in zip(self._wparams, state.get("weighting_params", [])):
                p.copy_(v)
        self.aggregator.load_state_dict(state.get("aggregator", {}))
        self.engine.load_state_dict(state.get("engine", {}))
        if self._flat is not None and state.get("looksam") is not None:
            self._flat.looksam.load_state_dict(state["looksam"])
        if self._flat is not None and state.get("flat_active") is not None:
            self._flat.active = bool(state["flat_active"])
