"""RGW: random gradient weighting."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    check_choice,
    check_generator,
    generator_state,
    load_generator_state,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator

__all__ = ["RGW", "SAMPLERS", "sample_task_weights"]

SAMPLERS = ("normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli")


def sample_task_weights(
    n_tasks: int,
    sampler: str = "normal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Draw random task weights summing to 1 (Lin et al., RLW, TMLR 2022, Sec. 3 and 6.3).

    - ``"normal"`` (default): :math:`\mathrm{softmax}(\tilde\lambda)`,
      :math:`\tilde\lambda \sim N(0, I)`;
    - ``"uniform"``: softmax of :math:`U(0, 1)` draws;
    - ``"dirichlet"``: :math:`\mathrm{Dir}(1, \dots, 1)` (normalised Exp(1) draws);
    - ``"bernoulli"``: Bernoulli(1/2) draws normalised to sum 1 (redrawn while all zero);
    - ``"constrained_bernoulli"``: one task chosen uniformly gets weight 1 (one task per step).

    Draws happen on the generator's device (CPU when ``generator`` is None) and are moved.
    """
    check_choice("sampler", sampler, SAMPLERS)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    kw: dict[str, Any] = {"generator": generator, "device": gen_device, "dtype": torch.float64}
    if sampler == "normal":
        w = torch.softmax(torch.randn(n_tasks, **kw), dim=0)
    elif sampler == "uniform":
        w = torch.softmax(torch.rand(n_tasks, **kw), dim=0)
    elif sampler == "dirichlet":
        e = -torch.log1p(-torch.rand(n_tasks, **kw))  # Exp(1); Dir(1) = normalised Exp(1)
        w = e / e.sum()
    elif sampler == "bernoulli":
        while True:
            b = (torch.rand(n_tasks, **kw) < 0.5).to(torch.float64)
            if b.sum() > 0:
                break
        w = b / b.sum()
    else:
        k = int(torch.randint(n_tasks, (1,), generator=generator, device=gen_device))
        w = torch.zeros(n_tasks, dtype=torch.float64, device=gen_device)
        w[k] = 1.0
    return w.to(device=device, dtype=dtype)


class RGW(Aggregator):
    r"""Random gradient weighting (Lin et al., *Reasonable Effectiveness of Random Weighting: A
    Litmus Test for Multi-Task Learning*, TMLR 2022, Sec. 3, "RGW").

    Each call draws task weights :math:`\lambda = f(\tilde\lambda)` (default
    :math:`\mathrm{softmax}` of :math:`N(0, I)`, so :math:`E[\lambda_t] = 1/T`) and returns
    :math:`\lambda^\top G`. Unlike RLW (a loss weighting), the weights act on the per-task
    gradients of the shared part only: the heads get their unweighted gradient (LibMTL branch
    v1.1.6 ``RGW``, where it works on parameter- or representation-level gradients; the paper
    uses the representation z). Samplers of the paper's Sec. 6.3: see
    :func:`sample_task_weights`.

    Parameters
    ----------
    sampler
        ``"normal"`` (default), ``"uniform"``, ``"dirichlet"``, ``"bernoulli"`` or
        ``"constrained_bernoulli"``.
    generator
        ``torch.Generator`` for the draws (``None``: torch's global CPU RNG). Saved by
        :meth:`state_dict`.
    """

    name = "rgw"
    linear = False
    level = "parameters"

    def __init__(self, sampler: str = "normal", generator: torch.Generator | None = None) -> None:
        self.sampler = check_choice("sampler", sampler, SAMPLERS)
        self.generator = check_generator(generator)

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        w = sample_task_weights(
            matrix.shape[0], self.sampler, self.generator, matrix.dtype, matrix.device
        )
        return Aggregation(w @ matrix, w)

    def get_extra_state(self) -> dict[str, Any]:
        return generator_state(self.generator)

    def set_extra_state(self, state: dict[str, Any]) -> None:
        load_generator_state(self.generator, state)
