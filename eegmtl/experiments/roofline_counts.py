"""The work of a recipe network's training step and fit, counted on the CPU: FLOPs, the
operators that compute (about one CUDA kernel each) and their memory traffic
(what :mod:`eegmtl.experiments.bench_roofline` compares with GPU fit times).

FLOPs are those of matrix products, convolutions and attention as counted by
:class:`torch.utils.flop_counter.FlopCounterMode` over the whole step (forward, backward),
with the backward of a convolution counted by :func:`conv_backward_flops` (torch's formula
ignores ``groups``: 20x too many for IFNet's step); elementwise operators are not counted
(they are bound by memory traffic). Operators and bytes come from a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` over forward, loss, backward and the
optimiser step (``foreach=True``, its default on CUDA).

Pipelines trained by the project's trainer (the MixNet family, MIN2Net, the multi-task
wrappers of braindecode networks) are counted per epoch instead (:func:`count_fit_epochs`):
a whole fit through the pipeline's own estimator at two numbers of epochs, on random trials
of the record's sizes; the difference is one epoch's work (training steps with every extra
backward pass of the MTL method, validation, the method's per-epoch work), the rest the
fit's fixed work. Filter-bank and CSP stages run in NumPy / SciPy and are not counted.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["EpochCounts", "StepCounts", "conv_backward_flops", "count_fit_epochs", "count_step",
           "fit_work", "recipe_model", "trainer_fit_work", "trainer_model"]

#: factories of the older EEGNet / ShallowFBCSPNet rows: the same networks and batch sizes as
#: these recipes (:mod:`eegmtl.eeg.recipes`)
_FACTORY_RECIPE = {"make_eegnet": "EEGNet", "make_shallow_fbcsp_net": "ShallowFBCSPNet"}


@dataclass(frozen=True)
class StepCounts:
    """Work of one training step (batch ``batch_train``) and one validation batch."""

    batch_train: int
    batch_val: int
    flops_train: float
    ops_train: int
    bytes_train: float
    flops_val: float
    ops_val: int
    bytes_val: float


@dataclass(frozen=True)
class EpochCounts:
    """Work of a fit through the project's trainer: one epoch (``steps_epoch`` training steps of
    ``batch`` trials and the epoch's validation) and the fit's fixed work (``*_setup``)."""

    batch: int
    steps_epoch: int
    flops_epoch: float
    ops_epoch: float
    bytes_epoch: float
    flops_setup: float
    ops_setup: float
    bytes_setup: float


@functools.lru_cache(maxsize=4096)  # records repeat a handful of configs thousands of times
def recipe_model(config: Any) -> dict[str, Any] | None:
    """The network settings of a record's ``config`` (JSON): ``model``, ``model_kwargs``,
    ``batch_size``, ``n_augmentation``, ``sfreq``; ``None`` for a pipeline that is not a plain
    recipe network (MixNet, MIN2Net, the multi-task wrappers, classical pipelines)."""
    from eegmtl.eeg.augmentation import augmentation_n_copies
    from eegmtl.eeg.recipes import RECIPES

    try:
        mc = json.loads(config).get("method_config", {})
    except (TypeError, ValueError, AttributeError):
        return None
    name = mc.get("model") or _FACTORY_RECIPE.get(mc.get("factory", ""))
    if name not in RECIPES or any(k in mc for k in ("mtl", "trunk", "heads")):
        return None
    recipe = RECIPES[name]
    return {"model": name,
            "model_kwargs": mc.get("model_kwargs", recipe.model_kwargs) or {},
            "batch_size": int(mc.get("batch_size", recipe.batch_size)),
            "n_augmentation": augmentation_n_copies(mc.get("augmentation")),
            "sfreq": float(mc.get("sfreq", recipe.sfreq))}


@functools.lru_cache(maxsize=4096)
def trainer_model(pipeline: str, config: Any) -> dict[str, Any] | None:
    """``{"pipeline", "method_config"}`` of a record of a network trained by the project's
    trainer (a deep method that is not a plain recipe network: the MixNet family, MIN2Net, the
    multi-task wrappers), its config without the device; ``None`` otherwise."""
    from eegmtl.evaluation.methods import is_deep_method, is_method

    if recipe_model(config) is not None or not is_method(pipeline) \
            or not is_deep_method(pipeline):
        return None
    try:
        mc = json.loads(config).get("method_config", {})
    except (TypeError, ValueError, AttributeError):
        return None
    return {"pipeline": pipeline,
            "method_config": {k: v for k, v in mc.items() if k not in ("method", "device")}}


class _GlobalOnly:
    """Stands in for :class:`~torch.utils.flop_counter.FlopCounterMode`'s module tracker, whose
    backward hooks break ``torch.autograd.grad`` on leaf tensors (the MTL methods' per-task
    gradients); the counter then keeps only its ``"Global"`` total."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *args: Any) -> None:
        return None


def _counters() -> tuple[Any, Any]:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    # metadata, allocation and host reads (the optimiser's step counts live on the CPU)
    _NO_KERNEL = {aten._unsafe_view, aten._reshape_alias, aten.empty, aten.empty_like,
                  aten.empty_strided, aten.new_empty, aten.new_empty_strided, aten.lift_fresh,
                  aten._local_scalar_dense}

    class OpCounter(TorchDispatchMode):
        """Counts the aten operators that compute (not views, which only relabel memory, nor
        allocations) and the bytes of their tensor inputs and outputs."""

        def __init__(self) -> None:
            super().__init__()
            self.ops, self.bytes = 0, 0.0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            if (func.namespace != "aten" or func.is_view
                    or func.overloadpacket in _NO_KERNEL):
                return out
            self.ops += 1
            self.bytes += sum(t.numel() * t.element_size() for t in tree_leaves((args, kwargs, out))
                              if isinstance(t, torch.Tensor))
            return out

    def flop_counter() -> Any:
        counter = FlopCounterMode(display=False,
                                  custom_mapping={aten.convolution_backward: conv_backward_flops})
        counter.mod_tracker = _GlobalOnly()  # totals only: no module hooks
        return counter

    return OpCounter, flop_counter


def conv_backward_flops(grad_out_shape: Any, x_shape: Any, w_shape: Any, _bias: Any,
                        _stride: Any, _padding: Any, _dilation: Any, transposed: bool,
                        _output_padding: Any, _groups: Any, output_mask: Any,
                        out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten.convolution_backward`` (a formula for
    :class:`~torch.utils.flop_counter.FlopCounterMode`, whose own ignores ``groups`` and
    counts a depthwise convolution's backward ``C`` times over): each gradient asked for by
    ``output_mask`` (input, weight) costs the forward convolution's ``2 · N · Π(out) · Π(w)``
    multiply-adds, ``out`` being the forward output (``grad_out``; ``x`` when transposed) and
    ``w`` the weight shape, which holds ``C_in / groups``."""
    spatial = x_shape[2:] if transposed else grad_out_shape[2:]
    forward = 2 * grad_out_shape[0] * math.prod(spatial) * math.prod(w_shape)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _count_at(net: Any, opt: Any, batch: int, n_chans: int, n_times: int,
              train: bool) -> tuple[float, int, float]:
    """FLOPs, operators and operator bytes of one training step (``train``: forward, loss,
    backward, optimiser step) or one validation forward pass at ``batch`` trials."""
    import torch
    import torch.nn.functional as F

    OpCounter, flop_counter = _counters()
    x, y = torch.randn(batch, n_chans, n_times), torch.randint(0, 2, (batch,))
    flops, ops = flop_counter(), OpCounter()
    if not train:
        net.eval()
        with torch.no_grad(), flops, ops:
            net(x)
        return float(flops.get_total_flops()), ops.ops, ops.bytes
    net.train()
    with flops, ops:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return float(flops.get_total_flops()), ops.ops, ops.bytes


def count_step(model: dict[str, Any], *, n_chans: int = 3, trial_s: float = 4.0,
               batches: tuple[int, int] = (2, 4), seed: int = 0) -> StepCounts:
    """Count one training step and one validation batch of a recipe network (:func:`recipe_model`
    settings) on random trials of ``trial_s`` seconds at the recipe's rate, on the CPU.

    FLOPs and bytes are counted at the two small ``batches`` and extrapolated to the recipe's
    batch along the line through them (every operator of these networks costs an affine
    function of the batch size: per-trial work plus per-parameter work), the operators at the
    larger one (their number does not depend on the batch)."""
    import torch

    from eegmtl.eeg.batched_fit import recipe_network, recipe_optimizer
    from eegmtl.eeg.recipes import get_recipe

    n_times = int(round(model["sfreq"] * trial_s))
    torch.manual_seed(seed)
    net = recipe_network({"model": model["model"], "model_kwargs": model["model_kwargs"]},
                         n_chans=n_chans, n_outputs=2, n_times=n_times, sfreq=model["sfreq"])
    cfg = asdict(get_recipe(model["model"]))
    opt = recipe_optimizer({"lr": cfg["lr"], "weight_decay": cfg["weight_decay"],
                            "betas": cfg["betas"], "optimizer": cfg["optimizer"]},
                           net.parameters())
    _foreach_updates(opt)  # torch's default for CUDA parameters
    b_val = int(model["batch_size"])
    b_train = b_val * (1 + int(model["n_augmentation"]))
    _count_at(net, opt, batches[0], n_chans, n_times, train=True)  # optimiser state created

    def at(batch: int, train: bool) -> tuple[float, int, float]:
        (f1, _, m1), (f2, o2, m2) = (_count_at(net, opt, b, n_chans, n_times, train)
                                     for b in batches)
        slope = (batch - batches[1]) / (batches[1] - batches[0])
        return f2 + slope * (f2 - f1), o2, m2 + slope * (m2 - m1)

    (ft, ot, mt), (fv, ov, mv) = at(b_train, True), at(b_val, False)
    return StepCounts(b_train, b_val, ft, ot, mt, fv, ov, mv)


def fit_work(counts: StepCounts, *, samples: float, samples_val: float,
             epochs: float) -> dict[str, float]:
    """FLOPs, operators and operator bytes of a fit of ``epochs`` epochs on ``samples``
    training and ``samples_val`` validation trials (training batches of ``batch_val`` trials
    before augmentation, ``drop_last``)."""
    steps = math.floor(samples / counts.batch_val)
    val = math.ceil(samples_val / counts.batch_val) if samples_val > 0 else 0
    return {"steps": epochs * steps,
            "flops": epochs * (steps * counts.flops_train + val * counts.flops_val),
            "ops": epochs * (steps * counts.ops_train + val * counts.ops_val),
            "bytes": epochs * (steps * counts.bytes_train + val * counts.bytes_val)}


def _foreach_updates(optimizer: Any, *_hook_args: Any) -> None:
    """Multi-tensor (``foreach``) updates in every parameter group of ``optimizer`` (also an
    optimiser step pre-hook, for optimisers built inside a fit)."""
    for group in optimizer.param_groups:
        if "foreach" in group:
            group["foreach"] = True


def _count_fit(model: dict[str, Any], epochs: int, data: tuple[Any, ...],
               seed: int) -> tuple[float, int, float]:
    """FLOPs, operators and operator bytes of a whole CPU fit of ``epochs`` epochs (the
    estimator built from the record's complete config, not the registry's defaults)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from eegmtl.evaluation.fit_fold import accepts_validation, set_random_state
    from eegmtl.evaluation.methods import MethodSpec, lookup

    name = model["pipeline"]
    config = {**model["method_config"], "device": "cpu", "max_epochs": int(epochs)}
    est = set_random_state(MethodSpec(name, lookup(name)[0], config).build(), seed)
    X, y, X_val, y_val = data
    OpCounter, flop_counter = _counters()
    flops, ops = flop_counter(), OpCounter()
    # the optimisers' multi-tensor updates, torch's default for CUDA parameters (as count_step)
    hook = register_optimizer_step_pre_hook(_foreach_updates)
    try:
        with flops, ops:
            if accepts_validation(est):
                est.fit(X, y, X_val=X_val, y_val=y_val)
            else:
                est.fit(X, y)
    finally:
        hook.remove()
    trained = getattr(est, "n_epochs_trained_", epochs)
    if int(trained) != int(epochs):
        raise RuntimeError(f"{name}: a fit of max_epochs={epochs} trained {trained} epochs; "
                           "the per-epoch count needs fits that train every epoch.")
    return float(flops.get_total_flops()), ops.ops, ops.bytes


def count_fit_epochs(model: dict[str, Any], *, samples: int, samples_val: int,
                     n_chans: int = 3, n_times: int = 1000, epochs: tuple[int, int] = (1, 2),
                     seed: int = 0) -> EpochCounts:
    """Count a fit of a :func:`trainer_model` pipeline on the CPU, per epoch and once per fit.

    Two fits of ``epochs[0]`` and ``epochs[1]`` epochs on random microvolt-scale trials
    (``samples`` training and ``samples_val`` validation trials, two balanced classes, the
    export's 4 s at 250 Hz) are counted whole; their difference divided by the difference in
    epochs is one epoch's work, what the shorter fit holds beyond its epochs the fixed work.
    The work of an epoch does not depend on the epoch (checked for MixNet: its gradient
    blending's warm-up epochs cost what later ones do)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = (10.0 * rng.standard_normal((samples, n_chans, n_times)),
            np.arange(samples) % 2,
            10.0 * rng.standard_normal((samples_val, n_chans, n_times)),
            np.arange(samples_val) % 2)
    (f1, o1, b1), (f2, o2, b2) = (_count_fit(model, e, data, seed) for e in epochs)
    span = epochs[1] - epochs[0]
    fe, oe, be = (f2 - f1) / span, (o2 - o1) / span, (b2 - b1) / span
    batch = int(model["method_config"].get("batch_size", 0)) or samples
    return EpochCounts(batch=batch, steps_epoch=max(samples // batch, 1),
                       flops_epoch=fe, ops_epoch=oe, bytes_epoch=be,
                       flops_setup=max(f1 - epochs[0] * fe, 0.0),
                       ops_setup=max(o1 - epochs[0] * oe, 0.0),
                       bytes_setup=max(b1 - epochs[0] * be, 0.0))


def trainer_fit_work(counts: EpochCounts, *, epochs: float) -> dict[str, float]:
    """FLOPs, operators and operator bytes of a trainer fit of ``epochs`` epochs (the keys of
    :func:`fit_work`)."""
    return {"steps": epochs * counts.steps_epoch,
            "flops": counts.flops_setup + epochs * counts.flops_epoch,
            "ops": counts.ops_setup + epochs * counts.ops_epoch,
            "bytes": counts.bytes_setup + epochs * counts.bytes_epoch}
