"""The T perturbed passes of the flat-minima step in one vectorised call.

For F-MTL (:mod:`eegmtl.mtl.flat`) task ``i`` needs the gradient of ``L_i`` at its own
perturbed point ``θ + ε^i``. Instead of T forward/backward passes in turn, the model is run
once under ``torch.vmap`` over T stacked parameter sets (``torch.func.functional_call``): row
``i`` holds the shared parameters plus ``ε_sh^i`` and task ``i``'s head plus ``ε_ns^i`` (the
other heads unperturbed). Row ``i`` computes all task losses and keeps ``L_i`` (a one-hot
dot product), so one backward of the sum of the T row losses gives every task's SAM gradient.
BatchNorm running statistics are given to every row as a private copy and thrown away, so the
perturbed passes leave no trace (batch statistics are still used, as in the exact loop).

With ``subset=True`` row ``i`` runs on the ``i``-th of T equal chunks of the batch
(m-sharpness, see :mod:`eegmtl.mtl.flat`): the T rows together see the batch once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["batched_sam_gradients"]


class _EncodeDecode(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Mapping[str, Tensor]:
        return self.model.decode(self.model.encode(x))


def _chunks(value: Any, n_rows: int, batch: int) -> tuple[Any, int | None]:
    """(T, ⌊B/T⌋, ...) view of a batch-sized tensor, or the value unchanged (not batched)."""
    if isinstance(value, Tensor) and value.ndim >= 1 and value.shape[0] == batch:
        n = batch // n_rows
        return value[: n * n_rows].reshape(n_rows, n, *value.shape[1:]), 0
    return value, None


def batched_sam_gradients(
    model: nn.Module,
    task_losses: Callable[[Mapping[str, Tensor], Mapping[str, Any]], Tensor],
    x: Tensor,
    targets: Mapping[str, Any],
    shared: Sequence[nn.Parameter],
    heads: Sequence[Sequence[nn.Parameter]],
    perturbations: Sequence[tuple[Sequence[Tensor], Sequence[Tensor]]],
    *,
    subset: bool = False,
) -> tuple[Tensor, list[list[Tensor | None]], Tensor]:
    """SAM gradients of the T tasks from one ``vmap`` over T perturbed parameter sets.

    Parameters
    ----------
    model : nn.Module
        Multi-task model (``encode``/``decode``); its parameters and buffers are not modified.
    task_losses : callable
        ``task_losses(outputs, targets)`` -> (T,) losses in task order (no host-side checks:
        it runs under ``vmap``).
    x : Tensor
        Input batch (B, ...).
    targets : mapping
        Per task, its target; tensors with B rows are chunked when ``subset=True``.
    shared, heads : parameters
        Shared parameters and, per task, its head parameters.
    perturbations : sequence of (ε_sh, ε_ns)
        Per task, the perturbation of the shared parameters and of its head
        (:func:`eegmtl.mtl.flat.task_perturbations`).
    subset : bool, default False
        Row ``i`` sees only chunk ``i`` of the batch (``⌊B/T⌋`` samples).

    Returns
    -------
    sam_matrix : Tensor
        (T, P) SAM gradients on the shared parameters.
    sam_heads : list of list of Tensor
        Per task, the SAM gradient of its head parameters.
    row_losses : Tensor
        (T,) the perturbed losses ``L_i(θ + ε^i)`` (detached).
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"the batched flat modes need the input batch as one tensor, got "
            f"{type(x).__name__}; use FlatConfig(mode='exact') for other inputs."
        )
    cumulative = [
        n for n, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
        and m.track_running_stats and m.momentum is None
    ]
    if cumulative:
        raise ValueError(
            f"BatchNorm layer(s) {cumulative} use momentum=None (cumulative average), which "
            "cannot run under vmap; use FlatConfig(mode='exact') or give them a momentum."
        )
    n_rows = len(perturbations)
    if subset and x.shape[0] < n_rows:
        raise ValueError(
            f"mode='subset' splits the batch into {n_rows} chunks (one per task) but the batch "
            f"has {x.shape[0]} samples; use a batch of at least {n_rows} or mode='exact'."
        )
    wrapper = _EncodeDecode(model)
    name_of = {id(p): "model." + n for n, p in model.named_parameters()}
    stacked: dict[str, Tensor] = {}
    with torch.no_grad():
        for j, p in enumerate(shared):
            stacked[name_of[id(p)]] = torch.stack([p + e_sh[j] for e_sh, _ in perturbations])
        for i, params in enumerate(heads):
            for k, p in enumerate(params):
                rows = p.detach().unsqueeze(0).repeat(n_rows, *([1] * p.ndim))
                rows[i] += perturbations[i][1][k]
                stacked[name_of[id(p)]] = rows
    leaves = {k: v.requires_grad_(True) for k, v in stacked.items()}
    fixed = {
        "model." + n: p.detach() for n, p in model.named_parameters()
        if "model." + n not in leaves
    }
    buffers = {
        "model." + n: b.unsqueeze(0).repeat(n_rows, *([1] * b.ndim))
        for n, b in model.named_buffers()
    }
    onehot = torch.eye(n_rows, dtype=x.dtype if x.is_floating_point() else torch.float32,
                       device=x.device)

    batch = x.shape[0]
    if subset:
        xs, x_dim = _chunks(x, n_rows, batch)
        split = {k: _chunks(v, n_rows, batch) for k, v in targets.items()}
    else:
        xs, x_dim = x, None
        split = {k: (v, None) for k, v in targets.items()}
    t_batched = {k: v for k, (v, d) in split.items() if d == 0}
    t_fixed = {k: v for k, (v, d) in split.items() if d is None}

    def row_loss(params: dict, bufs: dict, sel: Tensor, xr: Tensor, tb: dict) -> Tensor:
        out = torch.func.functional_call(wrapper, (params, fixed, bufs), (xr,), strict=False)
        losses = task_losses(out, {**t_fixed, **tb})
        return (losses * sel.to(losses.dtype)).sum()

    row_losses = torch.vmap(
        row_loss, in_dims=(0, 0, 0, x_dim, 0), randomness="different"
    )(leaves, buffers, onehot, xs, t_batched)
    names = list(leaves)
    grads = torch.autograd.grad(row_losses.sum(), [leaves[k] for k in names], allow_unused=True)
    by_name = dict(zip(names, grads))

    def grad_of(p: Tensor) -> Tensor:
        g = by_name[name_of[id(p)]]
        return torch.zeros((n_rows, *p.shape), dtype=p.dtype, device=p.device) if g is None else g

    sam_matrix = torch.cat([grad_of(p).reshape(n_rows, -1) for p in shared], dim=1)
    sam_heads = [
        [None if by_name[name_of[id(p)]] is None else by_name[name_of[id(p)]][i] for p in params]
        for i, params in enumerate(heads)
    ]
    return sam_matrix, sam_heads, row_losses.detach()
