"""Random loss weighting (RLW), Lin et al., TMLR 2022."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["RandomLossWeighting"]

_SAMPLERS = ("normal", "uniform", "dirichlet", "bernoulli", "constrained_bernoulli")
_SCALES = ("sum_one", "n_tasks")


class RandomLossWeighting(Weighting):
    r"""Random loss weighting (RLW), registry name ``"rlw"``.

    Lin, Ye, Xu, Shi, Zhang & Kwok, "Reasonable Effectiveness of Random Weighting: A Litmus
    Test for Multi-Task Learning", TMLR 2022 (arXiv 2111.10603), Eq. (3):
    :math:`\lambda = f(\tilde\lambda)` drawn afresh at every step and
    :math:`L = \sum_t \lambda_t L_t`. Samplers (paper §3.2 / App. C):

    - ``"normal"`` (default, as the paper and LibMTL): :math:`\tilde\lambda \sim N(0, I)`,
      :math:`\lambda = \mathrm{softmax}(\tilde\lambda)`;
    - ``"uniform"``: :math:`\tilde\lambda \sim U(0, 1)^T`, then softmax;
    - ``"dirichlet"``: :math:`\lambda \sim \mathrm{Dir}(\alpha \mathbf 1)`, ``alpha=1``;
    - ``"bernoulli"``: :math:`\tilde\lambda_t \sim \mathrm{Bernoulli}(p)`, ``p=0.5``,
      :math:`\lambda = \tilde\lambda / \sum_t \tilde\lambda_t`. An all-zero draw is
      **resampled** (up to 100 times, then :math:`1/T` each), i.e. the weights are drawn from
      the Bernoulli law conditioned on at least one task being selected;
    - ``"constrained_bernoulli"``: exactly one task, chosen uniformly, gets weight 1 per step.

    Every sampler is exchangeable, so :math:`E[\lambda_t] = 1/T`.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    sampler : str, default "normal"
        One of ``"normal"``, ``"uniform"``, ``"dirichlet"``, ``"bernoulli"``,
        ``"constrained_bernoulli"``.
    scale : {"sum_one", "n_tasks"}, default "sum_one"
        ``"sum_one"``: weights sum to 1 as in the paper; ``"n_tasks"``: multiplied by ``T`` so
        they sum to ``T`` like EW's (same loss scale as EW, mean weight 1).
    alpha : float, default 1.0
        Dirichlet concentration.
    p : float, default 0.5
        Bernoulli probability.
    generator : torch.Generator, optional
        Source of randomness (CPU generator). Overrides ``seed``.
    seed : int, optional
        Seed of a private generator; if neither is given the global torch RNG is used.

    Notes
    -----
    The weights multiply the *losses*, so the task heads see them too (the paper's RLW; the
    gradient-level variant RGW, where heads stay unweighted, is an aggregator). No learnable
    parameters. ``state_dict`` holds the generator state so a resumed run draws the same
    sequence.
    """

    name = "rlw"

    def __init__(
        self,
        n_tasks: int,
        sampler: str = "normal",
        scale: str = "sum_one",
        alpha: float = 1.0,
        p: float = 0.5,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_tasks)
        if sampler not in _SAMPLERS:
            raise ValueError(f"unknown RLW sampler {sampler!r}; choose one of {_SAMPLERS}.")
        if scale not in _SCALES:
            raise ValueError(f"unknown RLW scale {scale!r}; choose one of {_SCALES}.")
        if not alpha > 0:
            raise ValueError(f"the Dirichlet concentration alpha must be > 0, got {alpha}.")
        if not 0.0 < p <= 1.0:
            raise ValueError(f"the Bernoulli probability p must be in (0, 1], got {p}.")
        self.sampler = sampler
        self.scale = scale
        self.alpha = float(alpha)
        self.p = float(p)
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        self._generator = generator
        self._last_weights: Tensor | None = None

    @property
    def last_weights(self) -> Tensor | None:
        """The last weights returned (CPU), for logging."""
        return self._last_weights

    def sample(self) -> Tensor:
        """Draw one (T,) float32 weight vector on the CPU (without the ``scale`` factor)."""
        t, g = self.n_tasks, self._generator
        if self.sampler == "normal":
            lam = torch.softmax(torch.randn(t, generator=g), dim=0)
        elif self.sampler == "uniform":
            lam = torch.softmax(torch.rand(t, generator=g), dim=0)
        elif self.sampler == "dirichlet":
            # Dir(alpha) = normalised independent Gamma(alpha, 1) draws. torch.distributions
            # takes no generator, so use -log(U) (= Gamma(1, 1)) for alpha = 1 and
            # torch._standard_gamma (which accepts one) otherwise.
            if self.alpha == 1.0:
                u = torch.rand(t, generator=g).clamp_min(torch.finfo(torch.float32).tiny)
                gam = -torch.log(u)
            else:
                gam = torch._standard_gamma(torch.full((t,), self.alpha), generator=g)
            lam = gam / gam.sum()
        elif self.sampler == "bernoulli":
            lam = torch.full((t,), 1.0 / t)
            for _ in range(100):
                draw = (torch.rand(t, generator=g) < self.p).float()
                if draw.sum() > 0:
                    lam = draw / draw.sum()
                    break
        else:  # constrained_bernoulli
            lam = torch.zeros(t)
            lam[torch.randint(t, (1,), generator=g)] = 1.0
        return lam

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        lam = self.sample()
        if self.scale == "n_tasks":
            lam = lam * self.n_tasks
        self._last_weights = lam
        return lam.to(device=losses.device, dtype=losses.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"generator_state": None}
        if self._generator is not None:
            state["generator_state"] = self._generator.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        gs = state.get("generator_state")
        if gs is not None:
            if self._generator is None:
                self._generator = torch.Generator()
            self._generator.set_state(gs)
