"""Per-task gradients for hard-parameter-sharing models.

Two levels, as in LibMTL (``rep_grad``) and TorchJD (``mtl_backward``):

- **parameter level** -- the (T, P) matrix whose row ``t`` is the gradient of task ``t``'s loss
  with respect to the (flattened, concatenated) shared parameters;
- **representation level** ("-UB" variants: MGDA-UB, Aligned-MTL-UB, RGW, GradDrop) -- the
  (T, B*d) matrix of gradients with respect to the shared representation ``z = encode(x)``,
  taken on a *detached copy* of ``z`` (Sener & Koltun 2018, §3.3; Senushkin et al. 2023,
  Aligned-MTL-UB, full flattened representation, not summed over the batch). The update is
  then pushed through the trunk with one ``z.backward(update)``.

How the parameter-level matrix is computed (the TorchJD ``mtl_backward`` idea, mtl-reference
§2.2): the heads are evaluated on a detached leaf copy ``z_d`` of the representation; per task
one small ``autograd.grad`` w.r.t. ``(z_d, head params)`` through that task's head only gives
``J_z`` (T, *z.shape) and the head's own gradient; then **one** batched (vmapped) vector-Jacobian
product through the shared trunk (``torch.vmap`` of ``autograd.grad(z, shared,
grad_outputs=v)`` over the T rows of ``J_z``; equivalent to ``is_grads_batched=True`` but on the
faster functorch batching rules) gives all T rows at once. ``mode="loop"`` does T sequential VJPs
instead (needed where ``vmap`` has no batching rule). ``mode="auto"`` resolves by a fixed rule
on the model's layers (:func:`resolve_gradient_mode`), never by timing: the two backends differ
in float rounding, so a timing-based choice would let a loaded machine change the records of a
run with an unchanged configuration.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "TaskGradients",
    "GradientEngine",
    "resolve_gradient_mode",
    "head_gradients",
    "trunk_jacobian",
    "representation_matrix",
    "flatten",
    "unflatten_to_grads",
]

_MODES = ("auto", "vmap", "loop")


@dataclass
class TaskGradients:
    """Per-task gradients of one step.

    Attributes
    ----------
    matrix : Tensor
        (T, P) gradients w.r.t. the shared parameters (parameter level) or (T, B*d) w.r.t. the
        shared representation (representation level).
    heads : list of list of Tensor or None
        ``heads[t][k]`` is the gradient of task ``t``'s (unweighted) loss w.r.t. its ``k``-th
        head parameter (``None`` where the parameter is unused).
    rep_grads : Tensor
        (T, *z.shape) gradients w.r.t. the shared representation.
    """

    matrix: Tensor
    heads: list[list[Tensor | None]]
    rep_grads: Tensor


def flatten(tensors: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    """Concatenate flattened tensors (``None`` -> zeros of the parameter's size)."""
    parts = [
        (torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(tensors, params)
    ]
    return torch.cat(parts)


def unflatten_to_grads(vector: Tensor, params: Sequence[Tensor], *, accumulate: bool = False):
    """Write a (P,) vector into ``p.grad`` of ``params`` (views of one buffer, no copy)."""
    offset = 0
    for p in params:
        n = p.numel()
        chunk = vector[offset : offset + n].view_as(p)
        offset += n
        if accumulate and p.grad is not None:
            p.grad.add_(chunk)
        else:
            p.grad = chunk.to(p.dtype) if chunk.dtype != p.dtype else chunk
    if offset != vector.numel():
        raise ValueError(
            f"update vector has {vector.numel()} entries but the parameters hold {offset}."
        )


def head_gradients(
    losses: Tensor, rep: Tensor, heads: Sequence[Sequence[Tensor]]
) -> tuple[Tensor, list[list[Tensor | None]]]:
    """Per task, one ``autograd.grad`` of ``losses[t]`` w.r.t. ``(rep, heads[t])``.

    ``rep`` must be the (detached, ``requires_grad``) copy of the representation the heads read,
    so that nothing flows into the trunk. Returns the stacked (T, *rep.shape) representation
    gradients and the per-task head gradients. The graph is retained.
    """
    rows: list[Tensor] = []
    head_out: list[list[Tensor | None]] = []
    for t in range(losses.shape[0]):
        inputs = [rep, *heads[t]]
        if not losses[t].requires_grad:
            rows.append(torch.zeros_like(rep))
            head_out.append([None] * len(heads[t]))
            continue
        grads = torch.autograd.grad(losses[t], inputs, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(rep) if grads[0] is None else grads[0])
        head_out.append(list(grads[1:]))
    return torch.stack(rows), head_out


def _trunk_vmap(rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor) -> Tensor:
    # ``torch.vmap`` over ``autograd.grad`` (as TorchJD) rather than
    # ``autograd.grad(..., is_grads_batched=True)``: the latter uses the legacy batching
    # machinery, which falls back to slow per-row loops for convolution backward (measured
    # ~1.8x slower on the EEG net of perf-anchors §1b).
    def vjp(v: Tensor) -> tuple[Tensor, ...]:
        return torch.autograd.grad(
            rep, shared, grad_outputs=v, retain_graph=True, materialize_grads=True
        )

    grads = torch.vmap(vjp)(rep_grads)
    t = rep_grads.shape[0]
    return torch.cat([g.reshape(t, -1) for g in grads], dim=1)


def _trunk_loop(rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor) -> Tensor:
    rows = []
    for t in range(rep_grads.shape[0]):
        g = torch.autograd.grad(
            rep, shared, grad_outputs=rep_grads[t], retain_graph=True, allow_unused=True
        )
        rows.append(flatten(g, shared))
    return torch.stack(rows)


def trunk_jacobian(
    rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor, mode: str = "vmap"
) -> Tensor:
    """(T, P) Jacobian of the shared parameters: VJPs of ``rep`` with the T rows of ``rep_grads``.

    ``mode="vmap"``: one batched VJP (``torch.vmap``); ``mode="loop"``: T sequential
    VJPs. The graph of ``rep`` is retained (it is freed when ``rep`` goes out of scope).
    """
    if mode == "vmap":
        return _trunk_vmap(rep, shared, rep_grads)
    if mode == "loop":
        return _trunk_loop(rep, shared, rep_grads)
    raise ValueError(f"mode must be 'vmap' or 'loop', got {mode!r}.")


def representation_matrix(rep_grads: Tensor) -> Tensor:
    """(T, B*d) representation-level matrix from (T, *z.shape) gradients (full flattening)."""
    return rep_grads.reshape(rep_grads.shape[0], -1)


#: Layers whose vmapped backward is slower than T sequential VJPs on the CPU (measured: LeNet's
#: Conv2d + MaxPool2d trunk 1.8-2.1x EW with vmap vs 1.5x with the loop; Conv1d/AvgPool1d
#: trunks 1.5x with vmap vs 2.0x with the loop).
_LOOP_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
)


def resolve_gradient_mode(
    mode: str, model: nn.Module | None = None, *, mixed_precision: bool = False
) -> str:
    """Resolve ``"auto"`` to ``"vmap"`` or ``"loop"`` by a fixed rule on the model's layers.

    ``"loop"`` when the model holds a 2-d/3-d convolution or a max-pooling layer (their
    batched backward falls back to slow per-row kernels), or a BatchNorm layer under
    ``mixed_precision`` (bf16 autocast: torch's batched BatchNorm backward rejects the mixed
    dtypes); ``"vmap"`` otherwise (and when no model is given). The rule depends on the
    architecture only -- never on timing or machine load -- so one configuration always
    takes one code path. ``"vmap"``/``"loop"`` are returned unchanged.
    """
    if mode not in _MODES:
        raise ValueError(f"gradient mode must be one of {_MODES}, got {mode!r}.")
    if mode != "auto":
        return mode
    if model is None:
        return "vmap"
    loop_layers = _LOOP_LAYERS + ((nn.modules.batchnorm._NormBase,) if mixed_precision else ())
    if any(isinstance(m, loop_layers) for m in model.modules()):
        return "loop"
    return "vmap"


class GradientEngine:
    """Computes per-task gradients with a fixed trunk backend.

    Parameters
    ----------
    mode : {"auto", "vmap", "loop"}, default "auto"
        ``"vmap"``: one batched VJP through the trunk; ``"loop"``: T sequential VJPs;
        ``"auto"``: :func:`resolve_gradient_mode` on ``model`` (a fixed rule on its layers).
        A vmap failure (a layer without batching rule; always the same for one model) switches
        to ``"loop"`` for good, with a warning; out-of-memory errors are raised.
    model : nn.Module or None
        The model whose layers decide ``"auto"``.
    mixed_precision : bool, default False
        The forward runs under bf16 autocast (part of the ``"auto"`` rule).
    probe : int
        Ignored; kept so that old call sites keep working (``"auto"`` no longer times).

    Attributes
    ----------
    chosen : {"vmap", "loop"}
        The resolved backend (record it with the configuration: it changes float rounding).
    """

    def __init__(
        self,
        mode: str = "auto",
        probe: int = 3,
        *,
        model: nn.Module | None = None,
        mixed_precision: bool = False,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        self.mode = mode
        self.chosen: str = resolve_gradient_mode(mode, model, mixed_precision=mixed_precision)

    def _vmap_or_fallback(self, rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*performance drop.*")
                return _trunk_vmap(rep, shared, rep_grads)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:
            warnings.warn(
                f"vmapped backward failed ({str(err).splitlines()[0][:120]}); using the "
                "sequential per-task backward for this model from now on "
                "(pass gradient_mode='loop' to choose it up front).",
                RuntimeWarning,
                stacklevel=3,
            )
            self.chosen = "loop"
            return None

    def trunk(self, rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor) -> Tensor:
        """Shared-parameter Jacobian (T, P) with the chosen backend."""
        if rep_grads.shape[0] == 1:
            return _trunk_loop(rep, shared, rep_grads)
        if self.chosen == "vmap":
            out = self._vmap_or_fallback(rep, shared, rep_grads)
            if out is not None:
                return out
        return _trunk_loop(rep, shared, rep_grads)

    def compute(
        self,
        losses: Tensor,
        rep: Tensor,
        rep_detached: Tensor,
        shared: Sequence[Tensor],
        heads: Sequence[Sequence[Tensor]],
        level: str = "parameters",
    ) -> TaskGradients:
        """Per-task gradients of ``losses`` (T,) at the requested level.

        Parameters
        ----------
        losses : Tensor
            (T,) unweighted task losses computed from ``decode(rep_detached)``.
        rep, rep_detached : Tensor
            The representation ``encode(x)`` (with its trunk graph) and the detached leaf copy
            the heads were evaluated on.
        shared : sequence of Tensor
            Shared parameters (those of ``encode``) that require grad.
        heads : sequence of sequence of Tensor
            Per task, the parameters of its head.
        level : {"parameters", "representation"}
            Which matrix to return.
        """
        rep_grads, head_grads = head_gradients(losses, rep_detached, heads)
        if level == "representation":
            return TaskGradients(representation_matrix(rep_grads), head_grads, rep_grads)
        if level != "parameters":
            raise ValueError(f"level must be 'parameters' or 'representation', got {level!r}.")
        return TaskGradients(self.trunk(rep, shared, rep_grads), head_grads, rep_grads)

    def state_dict(self) -> dict:
        return {"mode": self.mode, "chosen": self.chosen}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore: the backend follows from ``mode`` and the model alone."""


def parameters_requiring_grad(params) -> list[nn.Parameter]:
    """List of the parameters that require grad, without duplicates (order kept)."""
    seen: set[int] = set()
    out = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out
