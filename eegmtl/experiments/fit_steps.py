"""K fits of one recipe network, stepped as the harness steps them (``eager``) or stacked
into one vmapped model (``batched``): the steps that ``eegmtl bench fits`` times
(:mod:`eegmtl.experiments.bench_fits`).

Each network is built as the harness builds it (:func:`eegmtl.eeg.batched_fit.recipe_network`:
the recipe's rate, window and ``model_kwargs``) and trained with its recipe's optimiser
(:func:`eegmtl.eeg.batched_fit.recipe_optimizer`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BatchedFits", "EagerFits", "batch", "build_model", "optimizer"]


def _cfg(name: str) -> dict[str, Any]:
    from eegmtl.eeg.deep_baselines import make_deep_baseline

    return make_deep_baseline(name).resolved_config()


def _n_times(name: str) -> int:
    from eegmtl.eeg.recipes import get_recipe

    r = get_recipe(name)
    return int(round(r.sfreq * r.window_s))


def build_model(name: str, *, n_chans: int = 3, n_outputs: int = 2) -> Any:
    """The braindecode network of recipe ``name`` as the harness builds it (recipe rate and
    window, its ``model_kwargs``)."""
    from eegmtl.eeg.batched_fit import recipe_network

    cfg = _cfg(name)
    return recipe_network(cfg, n_chans=n_chans, n_outputs=n_outputs, n_times=_n_times(name),
                          sfreq=cfg["sfreq"])


def optimizer(name: str, params: Any) -> Any:
    """The recipe's optimiser over ``params``."""
    from eegmtl.eeg.batched_fit import recipe_optimizer

    return recipe_optimizer(_cfg(name), params)


class EagerFits:
    """K independent fits of network ``name``, stepped one after another."""

    def __init__(self, name: str, k: int, device: Any, seed: int = 0) -> None:
        import torch

        self.models = []
        for i in range(k):
            torch.manual_seed(seed + i)
            self.models.append(build_model(name).to(device).train())
        self.optimizers = [optimizer(name, m.parameters()) for m in self.models]

    def step(self, x: Any, y: Any, amp_dtype: Any = None) -> None:
        """One training step of every fit; ``x (K, B, C, T)``, ``y (K, B)``; ``amp_dtype``
        (e.g. ``torch.bfloat16``): forward and loss under autocast to that type."""
        import contextlib

        import torch
        import torch.nn.functional as F

        for i, (m, opt) in enumerate(zip(self.models, self.optimizers, strict=True)):
            opt.zero_grad(set_to_none=True)
            with (torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None
                  else contextlib.nullcontext()):
                loss = F.cross_entropy(m(x[i]), y[i])
            loss.backward()
            opt.step()


class BatchedFits:
    """The K models of ``models`` stacked into one
    (:class:`~eegmtl.models.stacked.StackedModels`) with the recipe's optimiser over the
    stacked tensors: one vmapped step trains every fit."""

    def __init__(self, name: str, models: list[Any]) -> None:
        from eegmtl.models.stacked import StackedModels

        self.stacked = StackedModels(models)
        self.params, self.buffers = self.stacked.params, self.stacked.buffers
        self.optimizer = optimizer(name, list(self.params.values()))

    def forward(self, x: Any, *, train: bool) -> Any:
        """Outputs ``(K, B, n_outputs)`` of the K models on their batches ``x (K, B, C, T)``."""
        return self.stacked.forward(x, train=train)

    def step(self, x: Any, y: Any) -> Any:
        """One training step of every fit; returns the K losses."""
        losses = self.stacked.gradients(x, y)
        self.optimizer.step()
        return losses


def batch(name: str, k: int, batch: int, device: Any, seed: int) -> tuple[Any, Any]:
    """Random trials ``(K, B, 3, T)`` at the recipe's rate and labels ``(K, B)`` on ``device``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(k, batch, 3, _n_times(name), generator=g)
    y = torch.randint(0, 2, (k, batch), generator=g)
    return x.to(device), y.to(device)
