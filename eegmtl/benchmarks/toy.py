"""The two-task synthetic landscape of CAGrad / Nash-MTL / Aligned-MTL.

Objective (Liu et al., CAGrad, NeurIPS 2021, ``Cranial-XIX/CAGrad: toy.py``; reused by
Navon et al., Nash-MTL, ICML 2022, ``experiments/toy`` and Senushkin et al., Aligned-MTL,
CVPR 2023, §6.1 / ``code/utils/toy.py``), for :math:`x = (x_1, x_2) \\in \\mathbb{R}^2`:

.. math::

    l_1 &= \\log\\max(|0.5(-x_1-7) - \\tanh(-x_2)|,\\ 5\\cdot10^{-6}) + 6 \\\\
    l_2 &= \\log\\max(|0.5(-x_1+3) + \\tanh(-x_2) + 2|,\\ 5\\cdot10^{-6}) + 6 \\\\
    q_1 &= ((-x_1+7)^2 + 0.1(-x_2-8)^2)/10 - 20,\\quad
    q_2 = ((-x_1-7)^2 + 0.1(-x_2-8)^2)/10 - 20 \\\\
    c_1 &= \\max(\\tanh(x_2/2), 0),\\quad c_2 = \\max(\\tanh(-x_2/2), 0) \\\\
    f_i &= c_1 l_i + c_2 q_i .

For :math:`x_2 < 0` only the quadratic part is active (:math:`c_1 = 0`). The landscape is
mirror-symmetric: :math:`f_1(x_1, x_2) = f_2(-x_1, x_2)`.

Task losses, Aligned-MTL convention (``--scale``, default 0.5): :math:`L_1 = s f_1`,
:math:`L_2 = (1-s) f_2`. (Nash-MTL scales only :math:`f_1` by 0.1; CAGrad uses no scale.)
The global Pareto set is the curve :math:`x_1 = 14\\lambda - 7`,
:math:`x_2 = \\arg\\min_{x_2<0} c_2(x_2)(\\lambda q_1 + (1-\\lambda) q_2)`,
:math:`\\lambda \\in [0,1]`
(from :math:`x_1 = -7` to :math:`7`, :math:`x_2 \\approx -8.355`); the minimiser of
:math:`L_1 + L_2` is its point with :math:`\\lambda = s` (:math:`s = 0.5`: :math:`(0, -8.3552)`,
the star of the CAGrad plots).

:func:`toy_losses` is the torch objective (autograd-able); :func:`toy_jacobian` its analytic
(2 tasks × 2 coordinates) Jacobian in numpy, using torch's sub-gradient conventions at the
kinks (``clamp`` passes the gradient where ``input >= min``; ``abs'(0) = 0``), so both agree
everywhere including the start point ``(0, 0)``.

:func:`run_trajectory` optimises x with Adam (lr 1e-3, 35 000 iterations, as Nash-MTL and
Aligned-MTL) where the "gradient" is an eegmtl aggregator (or loss weighting) applied to the
2×2 Jacobian of the scaled losses; several starting points run together (Adam is
element-wise, so a batch of points equals independent runs).

The functions of ``x`` (objective, Jacobian, Pareto set) live in
:mod:`eegmtl.benchmarks.toy_landscape` and are re-exported here.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.benchmarks.toy_batched import BATCHED_WEIGHTS  # re-exported
from eegmtl.benchmarks.toy_landscape import (  # re-exported
    INITS,
    LOWER,
    distance_to_curve,
    global_optimum,
    pareto_set,
    toy_jacobian,
    toy_losses,
    toy_losses_np,
)
from eegmtl.mtl._registry import registry_key

__all__ = [
    "BATCHED_WEIGHTS",
    "INITS",
    "LOWER",
    "Trajectory",
    "distance_to_curve",
    "global_optimum",
    "pareto_set",
    "resolve_method",
    "run_trajectory",
    "toy_jacobian",
    "toy_losses",
    "toy_losses_np",
]


@dataclass
class Trajectory:
    """Result of :func:`run_trajectory` for ``B`` starting points.

    ``path`` (R, B, 2) holds the positions every ``record_every`` iterations (first row = the
    inits, last row = the final points); ``final`` (B, 2); ``losses`` (B, 2) unscaled
    ``(f1, f2)`` at the final points; ``weights`` (B, 2) the last task weights used.
    """

    method: str
    scale: float
    inits: np.ndarray
    path: np.ndarray
    final: np.ndarray
    losses: np.ndarray
    weights: np.ndarray
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)


#: Step function for one point: (J (T, P) float64, losses (T,)) -> (update (P,), weights (T,))
StepFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _with_rng(cls: Any, kwargs: dict[str, Any], seed: int) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    out = dict(kwargs)
    if "generator" in params and "generator" not in out:
        out["generator"] = torch.Generator().manual_seed(seed)
    return out


def resolve_method(method: Any, seed: int = 0, **kwargs: Any) -> StepFn:
    """Build a per-point step function from a method name, an aggregator or a weighting.

    Names are resolved by the MTL core's :func:`eegmtl.mtl.step.resolve_method` (the one
    resolver): a weighting name gives that weighting (update ``w @ J``), an aggregator name that
    aggregator, a combined name (``"db_mtl"``) its weighting and aggregator (the aggregator
    applied to the rows scaled by the weights, as in :class:`~eegmtl.mtl.step.MTLStep`).
    ``kwargs`` go to the aggregator, or to the weighting when the aggregator is the plain sum.
    Objects with an ``Aggregation``-returning ``__call__`` (aggregators) or a ``weights``
    method (weightings) are used as they are (give one instance per starting point for stateful
    methods). Random methods get a ``torch.Generator`` seeded with ``seed`` when their
    constructor accepts one. Flat-minima variants (``"f-..."``) need a model and are refused.
    """
    from eegmtl.mtl.aggregators import AGGREGATORS, Aggregator, get_aggregator
    from eegmtl.mtl.step import resolve_method as resolve_name
    from eegmtl.mtl.weightings import WEIGHTINGS, Weighting, get_weighting

    if isinstance(method, str):
        parts = resolve_name(method)
        if parts["flat"] is not None:
            raise ValueError(
                f"{method!r} is a flat-minima variant; the toy landscape has no model to "
                "perturb. Use the method without the 'f-' prefix."
            )
        w_key, a_key = parts["weighting"], parts["aggregator"]
        a_kw, w_kw = (kwargs, {}) if a_key != "sum" else ({}, kwargs)
        weighting = get_weighting(w_key, 2, **_with_rng(WEIGHTINGS[w_key], w_kw, seed))
        if a_key == "sum":
            method = weighting
        else:
            aggregator = get_aggregator(a_key, **_with_rng(AGGREGATORS[a_key], a_kw, seed))
            if w_key == "ew":
                method = aggregator
            else:
                return _combined_step(weighting, aggregator)
    if isinstance(method, Weighting):
        weighting = method

        def step_w(jac: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
            w = weighting.weights(losses.float()).to(jac.dtype)
            return w @ jac, w

        return step_w
    if isinstance(method, Aggregator) or callable(method):
        agg = method

        def step_a(jac: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
            out = agg(jac)
            return out.vector, out.weights

        return step_a
    raise TypeError(
        f"cannot use {method!r} as a toy method (need a name, aggregator or weighting)."
    )


def _combined_step(weighting: Any, aggregator: Any) -> StepFn:
    """Weighting and aggregator together: the aggregator on the rows scaled by the weights;
    the returned weights are per original row (aggregator weights times loss weights)."""

    def step(jac: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        w = weighting.weights(losses.float()).to(jac.dtype)
        out = aggregator(jac * w[:, None])
        return out.vector, (w if out.weights is None else out.weights.to(jac.dtype) * w)

    return step


def _adam(
    lr: float, betas: tuple[float, float], eps: float
) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    state: dict[str, np.ndarray] = {}

    def step(x: np.ndarray, g: np.ndarray, t: int) -> np.ndarray:
        m = state.get("m", np.zeros_like(x))
        v = state.get("v", np.zeros_like(x))
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        state["m"], state["v"] = m, v
        mhat = m / (1 - betas[0] ** t)
        vhat = v / (1 - betas[1] ** t)
        return x - lr * mhat / (np.sqrt(vhat) + eps)

    return step


def run_trajectory(
    method: Any,
    init: Sequence[float] | Sequence[Sequence[float]] | np.ndarray = INITS,
    *,
    scale: float = 0.5,
    lr: float = 1e-3,
    n_iter: int = 35_000,
    record_every: int = 10,
    seed: int = 0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    method_kwargs: dict[str, Any] | None = None,
    backend: str = "auto",
) -> Trajectory:
    """Optimise the toy landscape from one or several starting points.

    Each iteration: the 2×2 Jacobian ``J`` of ``(scale * f1, (1 - scale) * f2)`` at every
    point (analytic, :func:`toy_jacobian`), the method's update ``d = A(J)`` per point, then
    one Adam step ``x <- Adam(x, d)`` (``torch.optim.Adam`` semantics, re-implemented
    element-wise in numpy so all points advance together).

    Parameters
    ----------
    method : str, Aggregator, Weighting or callable
        See :func:`resolve_method`. A string builds a fresh instance per starting point.
    init : (2,) or (B, 2) array-like
        Starting point(s); default the five :data:`INITS`.
    scale : float
        Preference ``s`` of the losses ``(s f1, (1-s) f2)`` (default 0.5, Aligned-MTL).
    lr, n_iter : float, int
        Adam step size and number of iterations (defaults 1e-3 and 35 000, Nash-MTL /
        Aligned-MTL toy).
    record_every : int
        Keep every ``record_every``-th position in ``path``.
    seed : int
        Seed of random methods (RLW / RGW / PCGrad); point ``b`` uses ``seed + b``.
    betas, eps : Adam hyper-parameters (torch defaults).
    method_kwargs : dict, optional
        Hyper-parameters for a method given by name.
    backend : {'auto', 'registry', 'batched'}
        ``'registry'``: one registry aggregator/weighting instance per point, called on its
        2×2 matrix every iteration (the reference; ~1-10 ms per iteration for 5 points).
        ``'batched'``: the vectorised two-task formulas of :data:`BATCHED_WEIGHTS` (same
        weights as the registry classes with default hyper-parameters, checked by the tests;
        random methods draw from ``numpy.random.default_rng(seed)`` instead of the torch
        generator), ~100× faster. ``'auto'`` (default): batched when the method is a name in
        :data:`BATCHED_WEIGHTS` given without ``method_kwargs`` (``cagrad``'s ``c`` and
        ``nash_mtl``'s ``max_norm`` are accepted), else registry.

    Returns
    -------
    Trajectory
    """
    if not 0.0 < scale < 1.0:
        raise ValueError(f"scale must be in (0, 1) so that both tasks count, got {scale}.")
    x = np.array(init, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 2 or not np.isfinite(x).all():
        raise ValueError(f"init must be finite with shape (2,) or (B, 2), got {x.shape}.")
    if n_iter < 1 or record_every < 1:
        raise ValueError("n_iter and record_every must be >= 1.")
    n_pts = x.shape[0]
    kwargs = dict(method_kwargs or {})
    key = registry_key(method) if isinstance(method, str) else None
    batchable = key in BATCHED_WEIGHTS and set(kwargs) <= {"c", "max_norm"}
    if backend not in ("auto", "registry", "batched"):
        raise ValueError(f"backend must be 'auto', 'registry' or 'batched', got {backend!r}.")
    if backend == "batched" and not batchable:
        raise ValueError(
            f"no batched formula for {method!r} with {sorted(kwargs)}; batched methods: "
            f"{sorted(BATCHED_WEIGHTS)} (kwargs c, max_norm). Use backend='registry'."
        )
    use_batched = backend == "batched" or (backend == "auto" and batchable)
    if use_batched:
        weight_fn, rng, steps = BATCHED_WEIGHTS[key], np.random.default_rng(seed), []
        name = method
    elif isinstance(method, str):
        steps = [resolve_method(method, seed + b, **kwargs) for b in range(n_pts)]
        name = method
    else:
        steps = [resolve_method(method)] * n_pts
        name = getattr(method, "name", type(method).__name__)
    s = np.array([scale, 1.0 - scale])
    adam = _adam(lr, betas, eps)
    inits = x.copy()
    path = [x.copy()]
    weights = np.zeros((n_pts, 2))
    d = np.zeros_like(x)
    t0 = time.perf_counter()
    for it in range(1, n_iter + 1):
        jac = toy_jacobian(x) * s[None, :, None]
        if use_batched:
            weights = weight_fn(jac @ np.swapaxes(jac, 1, 2), rng=rng, **kwargs)
            d = np.einsum("bt,btp->bp", weights, jac)
        else:
            loss = toy_losses_np(x) * s
            jt, lt = torch.from_numpy(jac), torch.from_numpy(loss)
            for b in range(n_pts):
                vec, w = steps[b](jt[b], lt[b])
                d[b] = vec.detach().cpu().numpy()
                weights[b] = w.detach().cpu().numpy()
        if not np.isfinite(d).all():
            raise FloatingPointError(f"{name}: non-finite update at iteration {it}.")
        x = adam(x, d, it)
        if it % record_every == 0 or it == n_iter:
            path.append(x.copy())
    return Trajectory(
        method=str(name), scale=float(scale), inits=inits, path=np.stack(path), final=x.copy(),
        losses=toy_losses_np(x), weights=weights, seconds=time.perf_counter() - t0,
        config={"lr": lr, "n_iter": n_iter, "seed": seed, "betas": betas, "eps": eps,
                "method_kwargs": kwargs, "backend": "batched" if use_batched else "registry"},
    )
