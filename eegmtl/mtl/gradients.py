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
instead (needed where ``vmap`` has no batching rule); ``mode="auto"`` times both once per
engine and keeps the faster (vmap wins on Conv1d nets, the loop on LeNet-type Conv2d+MaxPool
nets, perf-anchors §6), and falls back to the loop when vmap raises.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "TaskGradients",
    "GradientEngine",
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


class GradientEngine:
    """Computes per-task gradients and remembers which trunk backend is faster for a model.

    Parameters
    ----------
    mode : {"auto", "vmap", "loop"}, default "auto"
        ``"vmap"``: one batched VJP through the trunk; ``"loop"``: T sequential VJPs;
        ``"auto"``: on the first call, both backends are timed back to back on the same graph
        (``probe`` times each, alternating, minimum kept -- robust to load spikes from other
        processes) and the faster is kept for good. A vmap failure (a layer without batching
        rule) switches to ``"loop"`` for good, with a warning.
    probe : int, default 3
        Timed runs per backend in ``"auto"`` mode.
    """

    def __init__(self, mode: str = "auto", probe: int = 3) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        self.mode = mode
        self.probe = max(1, int(probe))
        self.timings: dict[str, float] = {}
        self.chosen: str | None = None if mode == "auto" else mode

    def _vmap_or_fallback(self, rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*performance drop.*")
                return _trunk_vmap(rep, shared, rep_grads)
        except RuntimeError as err:
            warnings.warn(
                f"vmapped backward failed ({str(err).splitlines()[0][:120]}); using the "
                "sequential per-task backward for this model from now on.",
                RuntimeWarning,
                stacklevel=3,
            )
            self.chosen = "loop"
            return None

    def _probe(self, rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor) -> Tensor:
        best = {"vmap": float("inf"), "loop": float("inf")}
        out = None
        for k in range(self.probe):
            for mode in (("vmap", "loop") if k % 2 == 0 else ("loop", "vmap")):
                t0 = time.perf_counter()
                if mode == "vmap":
                    res = self._vmap_or_fallback(rep, shared, rep_grads)
                    if res is None:
                        return _trunk_loop(rep, shared, rep_grads)
                else:
                    res = _trunk_loop(rep, shared, rep_grads)
                best[mode] = min(best[mode], time.perf_counter() - t0)
                out = res
        self.timings = best
        self.chosen = "vmap" if best["vmap"] <= best["loop"] else "loop"
        return out

    def trunk(self, rep: Tensor, shared: Sequence[Tensor], rep_grads: Tensor) -> Tensor:
        """Shared-parameter Jacobian (T, P) with the chosen backend."""
        if rep_grads.shape[0] == 1:
            return _trunk_loop(rep, shared, rep_grads)
        if self.chosen is None:
            return self._probe(rep, shared, rep_grads)
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
        return {"mode": self.mode, "chosen": self.chosen, "timings": dict(self.timings)}

    def load_state_dict(self, state: dict) -> None:
        self.chosen = state.get("chosen", self.chosen)


def parameters_requiring_grad(params) -> list[nn.Parameter]:
    """List of the parameters that require grad, without duplicates (order kept)."""
    seen: set[int] = set()
    out = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out
