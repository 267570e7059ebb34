"""Batched inference of a trained MixNet on preprocessed input (no gradients, eval mode)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["PREDICT_BATCH", "run_network"]

#: Trials per forward pass at prediction.
PREDICT_BATCH = 512


def run_network(
    model: nn.Module, x: np.ndarray, fn: Callable[[nn.Module, Tensor], Tensor],
    batch_size: int = PREDICT_BATCH,
) -> np.ndarray:
    """``fn(model, batch)`` over ``x`` in batches of ``batch_size``, concatenated as float64."""
    device = next(model.parameters()).device
    if model.training:  # fit leaves it in eval mode; toggling costs ~1 ms per call
        model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[start : start + batch_size]).to(device)
            outs.append(fn(model, xb).detach().cpu().numpy())
    return np.concatenate(outs).astype(np.float64)
