"""Optimiser and LR-schedule construction of the trainer from names or callables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["make_optimizer", "make_scheduler"]


def make_optimizer(
    optimizer: str | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    params: list[nn.Parameter], lr: float, weight_decay: float,
    betas: tuple[float, float] | None = None,
) -> torch.optim.Optimizer:
    """``"adam"``, ``"adamw"``, ``"sgd"`` (momentum 0.9) or ``callable(params) -> Optimizer``.

    ``betas`` (Adam / AdamW only; ``None``: torch's (0.9, 0.999)) are the moment decay rates
    (Kingma & Ba 2015, Alg. 1).
    """
    if callable(optimizer) and not isinstance(optimizer, str):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError("the optimizer callable must return a torch.optim.Optimizer.")
        return opt
    name = str(optimizer).lower()
    adam_kwargs = {} if betas is None else {"betas": tuple(betas)}
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **adam_kwargs)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **adam_kwargs)
    if betas is not None and name == "sgd":
        raise ValueError(f"betas apply to 'adam' and 'adamw', not {optimizer!r}.")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(
        f"unknown optimizer {optimizer!r}; use 'adam', 'adamw', 'sgd' or a callable."
    )


def make_scheduler(
    scheduler: str | Callable[[torch.optim.Optimizer], Any] | None,
    optimizer: torch.optim.Optimizer, mode: str,
) -> Any:
    """``"plateau"``: ReduceLROnPlateau(factor 0.5, patience 5, min_lr 1e-4, absolute threshold
    1e-4; MixNet's Keras callback); a callable ``callable(optimizer)``; or None."""
    if scheduler is None:
        return None
    if isinstance(scheduler, str):
        if scheduler != "plateau":
            raise ValueError(
                f"unknown scheduler {scheduler!r}; use 'plateau', None or a callable."
            )
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=0.5, patience=5, threshold=1e-4,
            threshold_mode="abs", min_lr=1e-4,
        )
    return scheduler(optimizer)
