"""K copies of one network trained as one: parameters stacked, one vmapped step for all.

Small networks on a GPU are bound by kernel launches, not arithmetic: K independent fits of the
same architecture (different initialisations, data and dropout masks) can share the launches of
one by stacking their parameters and buffers along a new leading dimension
(:func:`torch.func.stack_module_state`) and mapping one functional forward / gradient over it
(:func:`torch.func.vmap` of :func:`torch.func.grad_and_value`). Each fit still gets exactly its
own gradient, its own batch-norm statistics (stacked buffers) and, with an elementwise
optimiser such as Adam / AdamW over the stacked tensors, its own optimiser state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["StackedModels"]


class StackedModels:
    """``K`` modules of one architecture stacked into one functional model.

    Parameters
    ----------
    modules : sequence of torch.nn.Module
        The K networks (same class and shapes); their current weights are copied in.
    loss : callable, default cross-entropy
        ``loss(outputs, targets) -> scalar`` of one fit's batch.

    Attributes
    ----------
    params, buffers : dict of str -> Tensor
        Stacked parameters (leaf tensors that require grad; give them to an optimiser) and
        buffers, each ``(K, *shape)``.
    """

    def __init__(self, modules: Sequence[Any], loss: Callable[[Any, Any], Any] | None = None
                 ) -> None:
        import torch.nn.functional as F
        from torch.func import grad_and_value, stack_module_state, vmap

        if not modules:
            raise ValueError("StackedModels needs at least one module.")
        if len({type(m) for m in modules}) != 1:
            raise ValueError("StackedModels stacks copies of one architecture; got "
                             f"{sorted({type(m).__name__ for m in modules})}.")
        self.k = len(modules)
        self.params, self.buffers = stack_module_state(list(modules))
        self.base = copy.deepcopy(modules[0]).to("meta")
        self.loss = loss or F.cross_entropy
        self._grad = vmap(grad_and_value(self._loss), in_dims=(0, 0, 0, 0),
                          randomness="different")

    def _call(self, params: dict, buffers: dict, x: Any) -> Any:
        from torch.func import functional_call

        return functional_call(self.base, (params, buffers), (x,))

    def _loss(self, params: dict, buffers: dict, x: Any, y: Any) -> Any:
        return self.loss(self._call(params, buffers, x), y)

    def forward(self, x: Any, *, train: bool = False) -> Any:
        """Outputs ``(K, B, ...)`` of the K networks on their batches ``x (K, B, ...)``
        (``train=False``: evaluation mode, e.g. no dropout, running batch-norm statistics)."""
        from torch.func import vmap

        self.base.train(train)
        try:
            return vmap(self._call, randomness="different")(self.params, self.buffers, x)
        finally:
            self.base.train(True)

    def gradients(self, x: Any, y: Any) -> Any:
        """Set each stacked parameter's ``.grad`` to the K fits' gradients of their own
        losses on ``x (K, B, ...)``, ``y (K, B, ...)`` (training mode); returns the K losses."""
        self.base.train(True)
        grads, losses = self._grad(self.params, self.buffers, x, y)
        for key, p in self.params.items():
            p.grad = grads[key]
        return losses

    def state_dict(self, i: int) -> dict[str, Any]:
        """Fit ``i``'s weights and buffers as a ``state_dict`` of the original module
        (detached copies)."""
        return {key: t[i].detach().clone()
                for key, t in (*self.params.items(), *self.buffers.items())}

    def load_state(self, i: int, state: dict[str, Any]) -> None:
        """Write a ``state_dict`` (e.g. from :meth:`state_dict`) into fit ``i``'s slice."""
        import torch

        with torch.no_grad():
            for key, t in (*self.params.items(), *self.buffers.items()):
                t[i].copy_(state[key])
