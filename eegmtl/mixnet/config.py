"""Settings of :class:`~eegmtl.mixnet.classifier.MixNetClassifier`: MTL method, protocol
defaults and parameter checks, seeds, labels (torch is imported only to resolve a
method name).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from eegmtl.eeg.filters import parse_bands
from eegmtl.mixnet.defaults import PROTOCOL_DEFAULTS, protocol_short

__all__ = [
    "LATER_PARAMS", "check_labels", "json_config", "recorded_settings", "resolve_config",
    "resolve_mtl", "seed_from", "training_options", "uses_blending",
]

#: Estimator parameters added after the first recorded runs. :func:`recorded_settings` leaves
#: them out while they are ``None``, so a run with the default settings keeps the settings
#: hash of the records made before they existed.
LATER_PARAMS: tuple[str, ...] = (
    "augmentation", "backbone", "backbone_kwargs", "epoch_tmax", "architecture",
    "architecture_kwargs", "optimizer", "weight_decay", "betas", "lr_schedule", "standardize",
    "ema_decay", "unlabeled_trials",
)
#: accepted values of ``MixNetClassifier(unlabeled_trials=...)`` besides ``None``
UNLABELED_TRIALS: tuple[str, ...] = ("transductive",)
#: Parameters that say how a fit runs, not what it learns; never part of recorded settings.
RUN_PARAMS: tuple[str, ...] = ("random_state", "verbose", "device", "checkpoint_dir",
                               "checkpoint_every_s")

def resolve_mtl(mtl: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Resolve an MTL method to ``{"weighting", "aggregator", "flat", ...params}``.

    Parameters
    ----------
    mtl : str, dict or None
        - a name (case-insensitive): ``"blending"`` (MixNet, default), any weighting of
          :data:`eegmtl.mtl.weightings.WEIGHTINGS` (``"ew"``, ``"rlw"``, ``"uw"``, ``"dwa"``,
          ...) combined with the plain sum, any aggregator of
          :data:`eegmtl.mtl.aggregators.AGGREGATORS` (``"pcgrad"``, ``"cagrad"``, ``"mgda"``,
          ``"aligned_mtl"``, ``"nash_mtl"``, ...) with equal loss weights, ``"fixed"`` (constant
          ``loss_weights``, MIN2Net), each optionally prefixed ``"f-"`` for the flat-minima step
          (``"f-pcgrad"``); names are resolved by :func:`eegmtl.mtl.step.resolve_method`;
        - a dict with keys ``weighting``, ``aggregator`` (names or instances), ``flat``
          (bool / float ρ / dict of :class:`~eegmtl.mtl.flat.FlatConfig` fields) and optional
          ``weighting_params`` / ``aggregator_params`` (constructor keyword arguments);
        - ``None``: same as ``"blending"``.

    Returns
    -------
    dict
        ``weighting`` (name or instance), ``aggregator`` (name or instance), ``flat`` (or None),
        ``weighting_params``, ``aggregator_params`` (dicts).
    """
    from eegmtl.mtl.step import resolve_method

    out: dict[str, Any] = {"weighting": "blending", "aggregator": "sum", "flat": None,
                           "weighting_params": {}, "aggregator_params": {}}
    if mtl is None:
        return out
    if isinstance(mtl, str):
        key = mtl.strip().lower()
        flat_prefix = key.startswith(("f-", "f_"))
        base = key[2:] if flat_prefix else key
        if base == "fixed":
            out.update(weighting="fixed", aggregator="sum",
                       flat=resolve_method("f-ew")["flat"] if flat_prefix else None)
            return out
        out.update(resolve_method(mtl))
        return out
    if isinstance(mtl, Mapping):
        unknown = set(mtl) - set(out)
        if unknown:
            raise ValueError(
                f"unknown key(s) {sorted(unknown)} in mtl={dict(mtl)!r}; allowed: {sorted(out)}."
            )
        for k, v in mtl.items():
            if v is not None:
                out[k] = dict(v) if k.endswith("_params") else v
        if out["flat"] is False:
            out["flat"] = None
        return out
    raise TypeError(
        f"mtl must be a method name (e.g. 'blending', 'pcgrad', 'f-pcgrad'), a dict "
        f"{{'weighting', 'aggregator', 'flat'}} or None; got {type(mtl).__name__}."
    )


def uses_blending(method: Mapping[str, Any]) -> bool:
    """Whether a resolved method's weighting is MixNet's gradient blending."""
    w = method["weighting"]
    return (isinstance(w, str) and w.strip().lower() == "blending") or type(
        w
    ).__name__ == "GradientBlending"


def resolve_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated settings of a :class:`~eegmtl.mixnet.classifier.MixNetClassifier`: protocol
    defaults (:mod:`eegmtl.mixnet.defaults`) overridden by explicit ``params``, plus the
    resolved MTL method (``"method"``, see :func:`resolve_mtl`).

    Raises
    ------
    ValueError
        For any invalid setting, naming it and the accepted values.
    """
    proto = protocol_short(params["protocol"])
    cfg: dict[str, Any] = dict(PROTOCOL_DEFAULTS[proto])
    for key in cfg:
        value = params[key]
        if value is not None:
            cfg[key] = value
    cfg["protocol"] = proto
    if int(cfg["batch_size"]) != cfg["batch_size"] or cfg["batch_size"] < 1:
        raise ValueError(f"batch_size must be a positive integer; got {cfg['batch_size']!r}.")
    if int(cfg["latent_dim"]) != cfg["latent_dim"] or cfg["latent_dim"] < 1:
        raise ValueError(f"latent_dim must be a positive integer; got {cfg['latent_dim']!r}.")
    if not float(cfg["margin"]) >= 0:
        raise ValueError(f"margin must be >= 0; got {cfg['margin']!r}.")
    if int(cfg["warmup"]) != cfg["warmup"] or cfg["warmup"] < 0:
        raise ValueError(f"warmup must be an integer >= 0; got {cfg['warmup']!r}.")
    cfg["batch_size"], cfg["latent_dim"] = int(cfg["batch_size"]), int(cfg["latent_dim"])
    cfg["warmup"], cfg["margin"] = int(cfg["warmup"]), float(cfg["margin"])
    mtl = params["mtl"]
    fixed_only = params["loss_weights"] is not None and params["weighting"] is None
    if mtl in (None, "blending") and fixed_only:
        mtl = "fixed"
    method = resolve_mtl(mtl)
    if params["weighting"] is not None:
        method["weighting"] = params["weighting"]
    if params["aggregator"] is not None:
        method["aggregator"] = params["aggregator"]
    if params["flat"] is not None:
        method["flat"] = None if params["flat"] is False else params["flat"]
    if method["weighting"] == "fixed" and params["loss_weights"] is None:
        raise ValueError(
            "mtl='fixed' needs loss_weights=[w_mse, w_triplet, w_ce] (MIN2Net 2b SD: "
            "[0.5, 0.1, 1.0])."
        )
    cfg["method"] = method
    if params["input"] not in ("fbcsp", "time"):
        raise ValueError(f"input must be 'fbcsp' or 'time'; got {params['input']!r}.")
    if params["bands"] is not None:
        parse_bands(params["bands"])
    if params["validation_size"] is not None and not 0.0 < float(params["validation_size"]) < 1.0:
        raise ValueError(
            f"validation_size must be in (0, 1) or None; got {params['validation_size']!r}."
        )
    _check_architecture(params["architecture"], params["architecture_kwargs"])
    _check_optimisation(params)
    if int(params["max_epochs"]) != params["max_epochs"] or params["max_epochs"] < 1:
        raise ValueError(f"max_epochs must be a positive integer; got {params['max_epochs']!r}.")
    return cfg


#: accepted values of ``MixNetClassifier(optimizer=..., lr_schedule=...)``
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
LR_SCHEDULES: dict[str, str | None] = {"plateau": "plateau", "constant": None}


def _check_optimisation(params: Mapping[str, Any]) -> None:
    """``optimizer``, ``weight_decay``, ``betas``, ``lr_schedule``, ``standardize``,
    ``ema_decay``, ``unlabeled_trials`` are None or valid."""
    opt = params.get("optimizer")
    if opt is not None and str(opt).lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)} or None; got {opt!r}.")
    wd = params.get("weight_decay")
    if wd is not None and not float(wd) >= 0:
        raise ValueError(f"weight_decay must be >= 0; got {wd!r}.")
    betas = params.get("betas")
    if betas is not None:
        if str(opt or "adam").lower() == "sgd":
            raise ValueError("betas apply to optimizer 'adam' or 'adamw', not 'sgd'.")
        try:
            ok = len(betas) == 2 and all(0.0 <= float(b) < 1.0 for b in betas)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"betas must be two numbers in [0, 1), e.g. (0.5, 0.999); got "
                             f"{betas!r}.")
    from eegmtl.eeg.preprocessing import standardize_mode

    standardize_mode(params.get("standardize"))
    schedule = params.get("lr_schedule")
    if schedule is not None and schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)} or None; got "
                         f"{schedule!r}.")
    ema = params.get("ema_decay")
    if ema is not None and not (isinstance(ema, numbers.Real) and 0.0 < float(ema) < 1.0):
        raise ValueError(f"ema_decay must be None or a number in (0, 1) (decay per step, e.g. "
                         f"0.99); got {ema!r}.")
    unlabeled = params.get("unlabeled_trials")
    if unlabeled is not None and unlabeled not in UNLABELED_TRIALS:
        raise ValueError(f"unlabeled_trials must be None or one of {list(UNLABELED_TRIALS)}; "
                         f"got {unlabeled!r}.")


def training_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer's ``optimizer``, ``weight_decay``, ``betas``, ``scheduler`` and
    ``ema_decay`` for the estimator parameters ``params`` (``None`` -> MixNet's Adam, no decay,
    ReduceLROnPlateau, the trained weights)."""
    schedule = params.get("lr_schedule")
    return {"optimizer": str(params.get("optimizer") or "adam").lower(),
            "weight_decay": float(params.get("weight_decay") or 0.0),
            "betas": None if params.get("betas") is None else tuple(params["betas"]),
            "scheduler": "plateau" if schedule is None else LR_SCHEDULES[schedule],
            "ema_decay": None if params.get("ema_decay") is None else float(params["ema_decay"])}


def _check_architecture(architecture: Any, kwargs: Mapping[str, Any] | None) -> None:
    """``architecture`` is None, ``"hps"`` or a name of
    :data:`eegmtl.models.eeg_architectures.EEG_ARCHITECTURES`, and ``kwargs`` its keywords."""
    from eegmtl.models.eeg_architectures import EEG_ARCHITECTURES, architecture_options

    names = ["hps", *EEG_ARCHITECTURES]
    key = "hps" if architecture is None else str(architecture).strip().lower()
    if key not in names:
        raise ValueError(f"architecture must be None or one of {names}; got {architecture!r}.")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(f"architecture_kwargs must be a dict or None; got {type(kwargs).__name__}.")
    architecture_options(key, kwargs)


def json_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` of :func:`resolve_config` with the method's instances (weighting / aggregator
    objects) as their ``repr``, so that it can be stored as JSON."""
    out = {k: v for k, v in cfg.items() if k != "method"}
    out["method"] = {
        k: (v if isinstance(v, (str, dict, type(None), bool, float, int)) else repr(v))
        for k, v in cfg["method"].items()
    }
    return out


def recorded_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a record stores and hashes: the estimator's ``get_params()`` without
    :data:`RUN_PARAMS`, and without :data:`LATER_PARAMS` while they are ``None``.

    Parameters
    ----------
    params : mapping
        ``MixNetClassifier.get_params()``.

    Returns
    -------
    dict
        The settings, in ``params``' order.
    """
    return {k: v for k, v in params.items()
            if k not in RUN_PARAMS and not (k in LATER_PARAMS and v is None)}


def seed_from(random_state: Any) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) % (2**32)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(
        f"random_state must be None, an int or a numpy RandomState/Generator; got "
        f"{random_state!r}."
    )


def check_labels(classes: np.ndarray, y_idx: np.ndarray, input: str) -> None:  # noqa: A002
    """At least two classes (exactly two for ``input="fbcsp"``), five trials each."""
    if len(classes) < 2:
        raise ValueError(
            f"y holds a single class {classes.tolist()}; a classifier needs at least two. "
            "Check the labels or the split."
        )
    if input == "fbcsp" and len(classes) > 2:
        raise ValueError(
            f"y holds {len(classes)} classes {classes.tolist()}, but MixNet's filter-bank "
            "CSP is binary (two-class CSP, as in the original code). Select two classes, "
            "or use input='time' (MIN2Net-style time-domain input; the network itself "
            "supports any number of classes)."
        )
    counts = np.bincount(y_idx)
    if counts.min() < 5:
        raise ValueError(
            f"too few trials per class: counts {dict(zip(classes.tolist(), counts.tolist()))}"
            "; MixNet needs at least 5 trials of every class (training, validation and the "
            "CSP covariances). Collect more trials or merge sessions."
        )
