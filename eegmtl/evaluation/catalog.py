"""The catalogue of BCIC IV 2b methods: name -> (factory, protocol -> default config).

The data of the method registry (MixNet variants, MIN2Net, the classical and deep baselines with
their recipes) and the module-level factories that build each estimator lazily. The public
lookup API (:func:`eegmtl.evaluation.methods.get_method`, composed names) sits above it in
:mod:`eegmtl.evaluation.methods` and :mod:`eegmtl.evaluation.composed`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from eegmtl.mixnet.defaults import PROTOCOL_DEFAULTS, TRAINING_DEFAULTS, normalize_protocol

__all__ = [
    "ALIASES",
    "BEST_MIXNET",
    "DEEP_BASELINES",
    "DEEP_NAMES",
    "METHODS",
    "MIXNET_CANDIDATES",
    "Factory",
    "available_methods",
    "base_config",
    "register_method",
]

Factory = Callable[[Mapping[str, Any]], Any]


# --------------------------------------------------------------------------- defaults
#: MixNet settings of the reference code (run_MixNet.py), per protocol. The estimator has the
#: same defaults (``MixNetClassifier(protocol=...)``); they are spelt out here so that every
#: record carries (and hashes) the values actually used.
MIXNET_DEFAULTS: dict[str, dict[str, Any]] = {
    "subject_dependent": {"protocol": "sd", **PROTOCOL_DEFAULTS["sd"]},
    "subject_independent": {"protocol": "si", **PROTOCOL_DEFAULTS["si"]},
}
MIXNET_COMMON: dict[str, Any] = dict(TRAINING_DEFAULTS)

#: MIN2Net fixed loss weights [reconstruction (MSE), triplet, cross-entropy] and margins;
#: latent size = number of channels (3), time-domain 8-30 Hz input (reference §7).
MIN2NET_DEFAULTS: dict[str, dict[str, Any]] = {
    "subject_dependent": {"protocol": "sd", "loss_weights": [0.5, 0.1, 1.0], "margin": 100.0,
                          "batch_size": 32},
    "subject_independent": {"protocol": "si", "loss_weights": [1.0, 0.1, 1.0], "margin": 0.1,
                            "batch_size": 100},
}

#: MTL method (``MixNetClassifier(mtl=...)``) of each MixNet variant
MIXNET_VARIANTS: dict[str, str] = {
    "MixNet": "blending",            # adaptive gradient blending (the paper)
    "MixNet+ew": "ew",               # equal loss weights
    "MixNet+rlw": "rlw",             # random loss weighting
    "MixNet+aligned_mtl": "aligned_mtl",
    "MixNet+pcgrad": "pcgrad",
    "MixNet+cagrad": "cagrad",
    "MixNet+f-pcgrad": "f-pcgrad",   # PCGrad inside the flat-minima (sharpness-aware) step
    "MixNet[val-acc]": "blending",   # same, checkpoint/early stopping on validation accuracy
    "MixNet[val-tuned]": "blending",  # same, alpha/latent/W chosen on validation (SD only)
}

#: estimator options that differ from the defaults for some variants. "MixNet[val-acc]" selects
#: the checkpoint by the full-pass validation accuracy instead of the original code's
#: ``val_loss`` (interleaved validation losses weighted by the blending weights in force, whose
#: scale drops by 3x when the warm-up ends, which biases the selection to the first epochs
#: after the warm-up).
MIXNET_OPTIONS: dict[str, dict[str, Any]] = {
    "MixNet[val-acc]": {"monitor": "val_classification_accuracy"},
}

#: "MixNet[val-tuned]": margin, latent size and warm-up chosen by the Tables S1-S3 chain of
#: ``eegmtl ablations --param all --protocol sd --only-folds 1`` on the *validation*
#: accuracy of fold 1 (records ``pipelines/results/ablations_sd.csv``; the test sessions would
#: have picked α = 5 and W = 7). Only the subject-dependent protocol has been tuned this way.
VALIDATION_TUNED: dict[str, dict[str, Any]] = {
    "subject_dependent": {"margin": 100.0, "latent_dim": 32, "warmup": 5},
}

#: variants whose options depend on the protocol: name -> {protocol: options}. A protocol
#: missing here has no such settings, and asking for it is an error.
MIXNET_PROTOCOL_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "MixNet[val-tuned]": VALIDATION_TUNED,
}


# --------------------------------------------------------------------------- factories
def _import(module: str, attr: str, what: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs {module} ({err}); install eegmtl with its extras "
                          "(pip install 'eegmtl[baselines]') or check the environment.") from err
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ImportError(f"{what}: {module} has no {attr!r}; this eegmtl checkout does not "
                          "provide it yet.") from None


def _call_checked(cls_or_fn: Any, kwargs: Mapping[str, Any], what: str) -> Any:
    """Call with ``kwargs``, raising a clear error for keyword names it does not take."""
    try:
        params = inspect.signature(cls_or_fn).parameters
    except (TypeError, ValueError):
        return cls_or_fn(**kwargs)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise TypeError(f"{what}: unknown option(s) {unknown}; it accepts "
                            f"{sorted(k for k in params if k != 'self')}.")
    return cls_or_fn(**kwargs)


def _mixnet_class(what: str) -> Any:
    try:  # the MixNet subpackage, else the older top-level estimator module
        return _import("eegmtl.mixnet", "MixNetClassifier", what)
    except ImportError:
        return _import("eegmtl.mixnet.classifier", "MixNetClassifier", what)


def _mixnet_estimator(config: Mapping[str, Any], what: str) -> Any:
    cls = _mixnet_class(what)
    kwargs = {k: v for k, v in config.items() if v is not None}
    return _call_checked(cls, kwargs, what)


def _mixnet_factory(config: Mapping[str, Any]) -> Any:
    """MixNet (any MTL method) — ``MixNetClassifier(**config)``."""
    return _mixnet_estimator(config, "MixNet")


def _min2net_factory(config: Mapping[str, Any]) -> Any:
    """MIN2Net-style run: the MixNet estimator with fixed weights on 8–30 Hz time-domain
    input. Needs the estimator's ``input`` option; checked here, at build time."""
    cls = _mixnet_class("MIN2Net")
    params = inspect.signature(cls).parameters
    if "input" not in params:
        raise TypeError("MIN2Net needs MixNetClassifier(input='time') (8-30 Hz time-domain "
                        "input); this version of the estimator has no 'input' option.")
    return _mixnet_estimator(config, "MIN2Net")


def _baseline_factory(config: Mapping[str, Any]) -> Any:
    """A baseline pipeline from ``eegmtl.eeg.baselines`` (``config['factory']``)."""
    cfg = dict(config)
    fn = _import("eegmtl.eeg.baselines", cfg.pop("factory"), cfg.get("name", "baseline"))
    cfg.pop("name", None)
    return _call_checked(fn, cfg, f"eegmtl.eeg.baselines.{fn.__name__}")


# --------------------------------------------------------------------------- registry
def _mixnet_defaults(name: str) -> Callable[[str], dict[str, Any]]:
    def defaults(protocol: str) -> dict[str, Any]:
        per_protocol = MIXNET_PROTOCOL_OPTIONS.get(name, {protocol: {}})
        if protocol not in per_protocol:
            raise ValueError(
                f"{name} has settings chosen on validation for {sorted(per_protocol)} only, "
                f"not {protocol!r}; run `eegmtl ablations --protocol si` to tune them, "
                "or use 'MixNet' (the reference code's settings)")
        return {**MIXNET_DEFAULTS[protocol], "mtl": MIXNET_VARIANTS[name], **MIXNET_COMMON,
                **MIXNET_OPTIONS.get(name, {}), **per_protocol[protocol]}

    return defaults


def _min2net_defaults(protocol: str) -> dict[str, Any]:
    return {**MIN2NET_DEFAULTS[protocol], "mtl": "fixed", "input": "time", "latent_dim": 3,
            **MIXNET_COMMON}


def _baseline_defaults(factory: str, **extra: Any) -> Callable[[str], dict[str, Any]]:
    def defaults(protocol: str) -> dict[str, Any]:
        return {"factory": factory, **extra}

    return defaults


#: name -> (factory, protocol -> default config)
METHODS: dict[str, tuple[Factory, Callable[[str], dict[str, Any]]]] = {
    **{name: (_mixnet_factory, _mixnet_defaults(name)) for name in MIXNET_VARIANTS},
    "MIN2Net": (_min2net_factory, _min2net_defaults),
    "CSP+LDA": (_baseline_factory, _baseline_defaults("make_csp_lda")),
    "FBCSP+SVM": (_baseline_factory, _baseline_defaults("make_fbcsp_svm")),
    "TS+SVM": (_baseline_factory, _baseline_defaults("make_ts_svm")),
    "EEGNet": (_baseline_factory, _baseline_defaults("make_eegnet")),
    "ShallowFBCSPNet": (_baseline_factory, _baseline_defaults("make_shallow_fbcsp_net")),
}


# --------------------------------------------------------------------------- deep baselines
#: braindecode networks with their papers' recipes (eegmtl.eeg.recipes.RECIPES)
DEEP_BASELINES: tuple[str, ...] = ("ATCNet", "EEGConformer", "EEGTCNet", "TCFormer", "CTNet",
                                   "IFNet", "FBCNet")
#: the older deep rows on the recipe path, early-stopped on the validation fold
VALIDATION_FOLD_ROWS: dict[str, str] = {"EEGNet[val]": "EEGNet",
                                        "ShallowFBCSPNet[val]": "ShallowFBCSPNet"}
#: early-stopping patience (epochs, on the validation loss) of every recipe-path network whose
#: recipe sets none (``Recipe.patience``)
DEEP_PATIENCE = 30


def _deep_factory(config: Mapping[str, Any]) -> Any:
    """A braindecode network with its recipe — ``BraindecodeClassifier(**config)``."""
    cfg = {k: v for k, v in config.items() if k != "source"}
    return _import("eegmtl.eeg.deep_baselines", "deep_baseline_factory", "deep baseline")(cfg)


def _recipe(model: str) -> Any:
    return _import("eegmtl.eeg.deep_baselines", "RECIPES", "deep baseline")[model]


def _deep_defaults(model: str) -> Callable[[str], dict[str, Any]]:
    def defaults(protocol: str) -> dict[str, Any]:
        r = _recipe(model)
        return {"model": model, "optimizer": r.optimizer, "lr": r.lr,
                "betas": list(r.betas) if r.betas else None, "weight_decay": r.weight_decay,
                "max_epochs": r.max_epochs, "batch_size": r.batch_size,
                "standardize": r.standardize, "augmentation": r.augmentation,
                "model_kwargs": dict(r.model_kwargs),
                "patience": DEEP_PATIENCE if r.patience is None else r.patience,
                "source": r.source}

    return defaults


METHODS.update({name: (_deep_factory, _deep_defaults(name)) for name in DEEP_BASELINES})
METHODS.update({name: (_deep_factory, _deep_defaults(model))
                for name, model in VALIDATION_FOLD_ROWS.items()})


#: registered names that train a network (take ``max_epochs`` and ``device``)
DEEP_NAMES: frozenset[str] = frozenset(
    {*MIXNET_VARIANTS, "MIN2Net", "EEGNet", "ShallowFBCSPNet", *DEEP_BASELINES,
     *VALIDATION_FOLD_ROWS})


#: MixNet-family candidates for the validation-only choice of a best MixNet pipeline (SD fold 1,
#: :func:`eegmtl.evaluation.tables.select_on_validation` on ``val_accuracy``; rows checkpointed
#: on validation accuracy, e.g. MixNet[val-acc], are left out: their validation score is biased).
MIXNET_CANDIDATES: tuple[str, ...] = (
    "MixNet", "MixNet[val-tuned]", "MixNet+aligned_mtl", "MixNet[val-tuned]+aug",
    "MixNet[val-tuned]+mtl[aligned_mtl]", "MixNet[val-tuned]+mtl[aligned_mtl]+aug",
    "MixNet+aligned_mtl+aug", "MixNet[val-tuned]+aug[sr,ft]", "EEGNet+mtl[blending]",
    "EEGNet+mtl[aligned_mtl]",
)


#: ``"MixNet[best]"``: the candidate with the best mean validation accuracy on SD fold 1, as
#: written by ``eegmtl select-best`` to ``pipelines/results/mixnet_best_selection.md`` (subjects
#: with a record for every candidate). An alias: its records carry the winner's config.
BEST_MIXNET: str = "MixNet[val-tuned]+mtl[aligned_mtl]+aug"
#: registry aliases: name -> the (registered or composed) name it stands for
ALIASES: dict[str, str] = {"MixNet[best]": BEST_MIXNET}


def available_methods() -> list[str]:
    """Registered method names (composed names, :func:`parse_name`, are accepted too)."""
    return list(METHODS)


def register_method(
    name: str, factory: Factory, defaults: Callable[[str], dict[str, Any]] | Mapping[str, Any],
    *, overwrite: bool = False,
) -> None:
    """Add a method: ``factory(config)`` must be a module-level (picklable) function."""
    if name in METHODS and not overwrite:
        raise ValueError(f"method {name!r} exists; pass overwrite=True to replace it")
    if isinstance(defaults, Mapping):
        fixed = dict(defaults)

        def fn(protocol: str) -> dict[str, Any]:
            return dict(fixed)
    else:
        fn = defaults
    METHODS[name] = (factory, fn)


def base_config(name: str, protocol: str = "subject_dependent") -> dict[str, Any]:
    """Default config of the *registered* method ``name`` under ``protocol``."""
    return dict(METHODS[name][1](normalize_protocol(protocol)))
