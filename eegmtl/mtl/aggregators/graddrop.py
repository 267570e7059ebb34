"""GradDrop: per-coordinate gradient sign dropout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    check_generator,
    generator_state,
    load_generator_state,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["GradDrop"]


class GradDrop(Aggregator):
    r"""Gradient sign dropout (Chen et al., *Just Pick a Sign: Optimizing Deep Multitask Models
    with Gradient Sign Dropout*, NeurIPS 2020, Algorithm 1, lines 10-15).

    Per coordinate k (column of the matrix) the gradient positive sign purity
    :math:`P_k = \tfrac12 (1 + \sum_t g_{tk} / \sum_t |g_{tk}|)` is compared to a uniform draw
    :math:`U_k`; task t keeps its coordinate when its sign is the one selected
    (:math:`M_{tk} = [P_k > U_k][g_{tk} > 0] + [P_k < U_k][g_{tk} < 0]`), and with leak
    :math:`\ell_t` the update is :math:`\sum_t (\ell_t + (1-\ell_t) M_{tk}) g_{tk}`. Defaults
    from the paper/LibMTL: leak 0 for every task, identity purity transform.

    **Meant for representation-level matrices** (``level = "representation"``): the paper
    applies it to the gradients with respect to the activations of a layer (summed over the
    batch dimension first, as LibMTL's ``rep_grad``), and LibMTL only allows it with
    ``rep_grad=True``; the step therefore passes the per-task gradients of the shared
    representation, and back-propagates the returned vector through the encoder. Applying it
    to a parameter-level matrix also works (per-parameter sign purity), but that is not the
    paper's method.

    Columns where every task gradient is zero get purity 1/2 (their contribution is zero
    anyway; the original code would produce 0/0). The update is *not* a linear combination of
    the rows: ``weights[t]`` is the mean over columns of the kept fraction
    :math:`\ell_t + (1-\ell_t) M_{tk}`.

    Parameters
    ----------
    leak
        Per-task leak values in [0, 1] (``None``: zero for every task).
    generator
        ``torch.Generator`` for the uniform draws (``None``: torch's global RNG). A generator
        on another device than the matrix is supported (draws are moved). Saved by
        :meth:`state_dict`.
    """

    name = "graddrop"
    linear = False
    level = "representation"

    def __init__(
        self,
        leak: Sequence[float] | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if leak is not None:
            lk = torch.as_tensor(leak, dtype=torch.float64)
            if lk.ndim != 1 or not torch.isfinite(lk).all() or (lk < 0).any() or (lk > 1).any():
                raise ValueError(f"leak must be a 1-D sequence of values in [0, 1], got {leak!r}.")
            leak = lk
        self.leak = leak
        self.generator = check_generator(generator)

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        if self.leak is None:
            leak = torch.zeros(t_count, dtype=matrix.dtype, device=matrix.device)
        else:
            if self.leak.shape[0] != t_count:
                raise ValueError(
                    f"leak has {self.leak.shape[0]} entries but the matrix has {t_count} rows."
                )
            leak = self.leak.to(device=matrix.device, dtype=matrix.dtype)
        p_count = matrix.shape[1]
        keep_w = 1.0 - leak
        total = keep_w @ matrix  # sum_t (1 - l_t) g_t
        abs_total = keep_w @ matrix.abs()  # sum_t (1 - l_t) |g_t|
        if self.leak is None:
            purity_num, purity_den = total, abs_total
        else:
            purity_num, purity_den = matrix.sum(dim=0), matrix.abs().sum(dim=0)
        tiny = torch.finfo(matrix.dtype).tiny
        purity = 0.5 * (1.0 + purity_num / purity_den.clamp_min(tiny))
        gen = self.generator
        gen_device = gen.device if gen is not None else matrix.device
        u = torch.rand(p_count, generator=gen, dtype=matrix.dtype, device=gen_device)
        u = u.to(matrix.device)
        pos = (purity > u).to(matrix.dtype)  # columns keeping the positive parts
        neg = (purity < u).to(matrix.dtype)  # columns keeping the negative parts
        # sum_t (1 - l_t) M_t g_t without T x P masks: positive part = (total + abs_total) / 2,
        # negative part = (total - abs_total) / 2
        vector = 0.5 * (pos * (total + abs_total) + neg * (total - abs_total))
        if self.leak is not None:
            vector = vector + leak @ matrix
        # kept fraction per task: mean_k [g_tk > 0] pos_k + [g_tk < 0] neg_k, via sign(G)
        sign = torch.sign(matrix)
        mask_mean = 0.5 * (sign @ (pos - neg) + sign.abs() @ (pos + neg)) / p_count
        return Aggregation(vector, leak + keep_w * mask_mean)

    def get_extra_state(self) -> dict[str, Any]:
        return generator_state(self.generator)

    def set_extra_state(self, state: dict[str, Any]) -> None:
        load_generator_state(self.generator, state)
