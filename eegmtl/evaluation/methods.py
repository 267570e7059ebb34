"""Registry of the methods compared on BCIC IV 2b: name → factory(config) → unfitted estimator.

Every method is built from a plain JSON-like config (so the config can be recorded and hashed
with the results) by a factory that imports its estimator lazily: this module imports neither
torch nor braindecode nor the estimators themselves.

MixNet methods (:class:`eegmtl.mixnet.MixNetClassifier`; Autthasan et al., 2024):

- ``"MixNet"``: adaptive gradient blending (the paper's method).
- ``"MixNet+ew"``, ``"MixNet+rlw"``: equal / random loss weighting.
- ``"MixNet+aligned_mtl"``, ``"MixNet+pcgrad"``, ``"MixNet+cagrad"``: gradient aggregators.
- ``"MixNet+f-pcgrad"``: PCGrad inside the flat-minima (sharpness-aware) step.
- ``"MixNet[val-acc]"``: the paper's method, checkpointed on validation accuracy.
- ``"MixNet[val-tuned]"`` (SD only): the paper's method with α, latent size and W chosen on
  validation folds by ``eegmtl ablations`` (fold 1, Tables S1–S3 chain), not on test.
- ``"MIN2Net"``: the MixNet network with fixed loss weights on 8–30 Hz time-domain input (Autthasan
  et al., 2022, MIN2Net; weights [mse, triplet, CE] = SD [0.5, 0.1, 1.0], α = 100;
  SI [1.0, 0.1, 1.0], α = 0.1, from the reference ``experiments/run_MIN2Net.py``).

Protocol-dependent defaults follow the reference code's final settings (``run_MixNet.py``;
:mod:`eegmtl.mixnet.defaults`): SD batch 32, margin α = 0.1, latent 4, warm-up W = 7; SI batch 100,
α = 5, latent 18 (= U·N_f), W = 3; Adam lr 1e-3, at most 200 epochs, early stopping patience 20.
Note that the reference chose α, latent and W on the *test* sessions (Tables S1–S3); these are
its published values, and ``eegmtl ablations`` re-selects them on validation folds only.

Baselines (:mod:`eegmtl.eeg.baselines`, with their documented settings): ``"CSP+LDA"``,
``"FBCSP+SVM"``, ``"TS+SVM"``, ``"EEGNet"``, ``"ShallowFBCSPNet"`` (these two deep rows stop
early on an internal 20 % split of the training part).

Modern deep baselines (:mod:`eegmtl.eeg.deep_baselines`, one ``braindecode.EEGClassifier``
path, early-stopped on the evaluation's validation fold, best ``valid_loss`` weights restored):
``"ATCNet"``, ``"EEGConformer"``, ``"EEGTCNet"``, ``"TCFormer"``, ``"CTNet"``, ``"IFNet"``,
``"FBCNet"``, each with its paper's recipe written out in its config (optimiser, lr, betas,
weight decay, epochs, batch, standardisation, augmentation, network arguments, ``source``), and
``"EEGNet[val]"`` / ``"ShallowFBCSPNet[val]"``: the two older rows' settings on the same path
(validation fold instead of the internal split).

Composed names (:func:`parse_name`), for any deep base:

- ``<base>+aug``: segmentation-and-recombination (S&R, 8 segments; one augmented copy appended
  to every training batch); ``<base>+aug[sr,ft,mask,chdrop,noise]``: those transforms composed
  (:data:`AUG_ALIASES`), ``+aug[sr,mask,x2]`` with two augmented copies per batch;
  ``<base>+noaug``: a recipe's own augmentation removed. Training batches only
  (:mod:`eegmtl.eeg.augmentation`). ``EEGNet+aug`` / ``ShallowFBCSPNet+aug`` are built on
  the ``[val]`` rows (compare them with ``EEGNet[val]``).
- ``<braindecode model>+mtl[<method>]``: the braindecode network's trunk with MixNet's
  reconstruction / triplet / classification heads (:class:`eegmtl.models.multitask.
  MultiTaskBraindecode`), trained by the MixNet estimator with any MTL method of the core
  (``blending``, ``aligned_mtl``, ...), on the band-passed trials (4-40 Hz, 250 Hz, no CSP),
  latent size 16, the recipe's network arguments; e.g. ``ATCNet+mtl[blending]``. Trained
  with MixNet's protocol, or with the network's own recipe given ``+recipe``
  (``ATCNet+mtl[aligned_mtl]+recipe``; :func:`eegmtl.evaluation.composed.recipe_options`).
  ``<MixNet variant>+mtl[<method>]`` changes the MTL method of a MixNet row.
- ``<name>+set[key=value,...]``: configuration overrides carried by the name (recorded and
  hashed), e.g. ``MixNet[best]+set[n_components=3]`` (:func:`eegmtl.evaluation.composed.
  config_overrides`).
- ``<MixNet-family name>+arch[mmoe|cgc|ple|cross_stitch]``: the encoder inside that multi-task
  architecture instead of hard sharing (:class:`eegmtl.models.eeg_architectures.
  MultiTaskEEGArchitecture`), e.g. ``MixNet[val-tuned]+arch[mmoe]``.

An alias composes as the name it stands for (``MixNet[best]+arch[mmoe]``). The MTL method of
``+mtl[...]``, the transforms of ``+aug[...]`` and the architecture of ``+arch[...]`` are checked
when the name is looked up; :func:`method_error` says which part of a name is wrong.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eegmtl._io import stable_json
from eegmtl.evaluation.catalog import (
    ALIASES,
    DEEP_BASELINES,
    DEEP_NAMES,
    METHODS,
    MIXNET_CANDIDATES,
    Factory,
    _deep_factory,
    _min2net_factory,
    _mixnet_factory,
    available_methods,
    register_method,
)
from eegmtl.evaluation.composed import SUFFIX_KINDS, composed_method
from eegmtl.mixnet.defaults import normalize_protocol

__all__ = [
    "DEEP_BASELINES",
    "METHODS",
    "MIXNET_CANDIDATES",
    "MethodSpec",
    "available_methods",
    "close_names",
    "default_config",
    "get_method",
    "is_deep_method",
    "is_method",
    "lookup",
    "make_estimator",
    "method_error",
    "register_method",
    "resolve_methods",
]


@dataclass(frozen=True)
class MethodSpec:
    """A named method: a factory and the config it is built from.

    Attributes
    ----------
    name : str
        Registry name (e.g. ``"MixNet+pcgrad"``).
    factory : callable
        ``factory(config) -> unfitted estimator``; must be a module-level function (picklable,
        so that joblib workers can build the estimator).
    config : dict
        JSON-like configuration, recorded with every result and hashed.
    """

    name: str
    factory: Factory
    config: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        """A new unfitted estimator."""
        return self.factory(dict(self.config))

    def with_config(self, **overrides: Any) -> MethodSpec:
        """A copy whose config is updated with ``overrides``."""
        return replace(self, config={**self.config, **overrides})

def default_config(name: str, protocol: str = "subject_dependent") -> dict[str, Any]:
    """Default config of method ``name`` under ``protocol``.

    Raises
    ------
    ValueError
        When ``name`` has no defaults for ``protocol`` (e.g. settings tuned on another
        protocol's validation data); for an alias the message names what it stands for.
    """
    protocol = normalize_protocol(protocol)
    try:
        return dict(lookup(name)[1](protocol))
    except ValueError as err:
        if name not in ALIASES:
            raise
        raise ValueError(f"{name!r} stands for {ALIASES[name]!r}, which has no {protocol} "
                         f"defaults: {err}") from None


def get_method(name: str, protocol: str = "subject_dependent", **overrides: Any) -> MethodSpec:
    """:class:`MethodSpec` of ``name`` with protocol defaults updated by ``overrides``."""
    cfg = default_config(name, protocol)
    cfg.update(overrides)
    return MethodSpec(name, lookup(name)[0], cfg)


def lookup(name: str) -> tuple[Factory, Callable[[str], dict[str, Any]]]:
    """``(factory, protocol -> default config)`` of a registered or composed name."""
    if name in METHODS:
        return METHODS[name]
    if name in ALIASES:
        return lookup(ALIASES[name])
    return composed_method(name)


def method_error(name: str) -> str | None:
    """Why ``name`` is not a method (registered, alias or valid composed name), or ``None``.

    The message names the part that is wrong (an unknown base network, MTL method,
    augmentation or architecture) and, for a misspelt name, the closest registered ones.
    """
    try:
        lookup(name)
    except (KeyError, ValueError) as err:
        text = str(err.args[0]) if err.args else str(err)
        text = text.removeprefix(f"{name!r}: ").rstrip(".") + "."
        base = re.split(rf"\+(?:{SUFFIX_KINDS})\b", name, maxsplit=1)[0]
        close = close_names(base, [*available_methods(), *ALIASES])
        return (f"did you mean {' or '.join(map(repr, close))}? " if close else "") + text
    return None


def close_names(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` names of ``known`` that ``name`` may be a misspelling of (none when it is
    one of them)."""
    import difflib

    return [] if name in known else difflib.get_close_matches(name, list(known), n=n,
                                                              cutoff=0.6)


def is_method(name: str) -> bool:
    """Whether ``name`` is registered or a valid composed name."""
    return method_error(name) is None


def is_deep_method(name: str) -> bool:
    """Whether ``name`` trains a network (takes ``max_epochs`` and ``device``): by its registered
    name (so a re-registered factory keeps the options), else by the factory it resolves to."""
    if name in DEEP_NAMES:
        return True
    return lookup(name)[0] in (_mixnet_factory, _min2net_factory, _deep_factory)


def make_estimator(name: str, config: Mapping[str, Any] | None = None,
                   protocol: str = "subject_dependent") -> Any:
    """Unfitted estimator of method ``name`` (defaults of ``protocol`` updated by ``config``)."""
    return get_method(name, protocol, **dict(config or {})).build()


# --------------------------------------------------------------------------- resolving
def _json_safe(value: Any) -> Any:
    try:
        stable_json(value)
        return value
    except (TypeError, ValueError):
        if callable(value) and hasattr(value, "__qualname__"):
            return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
        return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def estimator_config(est: Any) -> dict[str, Any]:
    """JSON config of an unfitted estimator: its class and flattened ``get_params(deep=True)``
    (nested estimators by class name, ``random_state`` left out: it is set per fit)."""
    params = est.get_params(deep=True) if hasattr(est, "get_params") else {}
    flat: dict[str, Any] = {}
    for k, v in sorted(params.items()):
        if k == "random_state" or k.endswith("__random_state"):
            continue  # set per fit from (seed, subject, fold)
        if hasattr(v, "get_params"):  # a nested estimator: its class; its params follow
            flat[k] = f"{type(v).__module__}.{type(v).__qualname__}"
        elif not (isinstance(v, list) and v and all(isinstance(x, tuple) for x in v)):
            flat[k] = _json_safe(v)  # (Pipeline 'steps' lists are covered by the above)
    return {"estimator": f"{type(est).__module__}.{type(est).__qualname__}", "params": flat}


def resolve_methods(
    methods: Sequence[str] | Mapping[str, Any], protocol: str,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """``pipeline name -> (MethodSpec or unfitted estimator, JSON config)``.

    ``methods`` are registry names, or a mapping ``pipeline name -> registry name | MethodSpec |
    unfitted scikit-learn estimator``; ``method_params`` updates their configs per name.
    """
    from sklearn.base import clone

    method_params = dict(method_params or {})
    items = methods.items() if isinstance(methods, Mapping) else ((m, None) for m in methods)
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name, obj in items:
        over = dict(method_params.get(name, {}))
        if obj is None or isinstance(obj, str):
            spec = get_method(obj or name, protocol, **over)
            out[str(name)] = (spec, {"method": spec.name, **spec.config})
        elif isinstance(obj, MethodSpec):
            spec = obj.with_config(**over) if over else obj
            out[str(name)] = (spec, {"method": spec.name, **spec.config})
        elif hasattr(obj, "fit"):
            est = clone(obj)
            if over:
                est.set_params(**over)
            out[str(name)] = (est, estimator_config(est))
        else:
            raise TypeError(f"method {name!r}: expected a registry name, a MethodSpec or an "
                            f"unfitted scikit-learn estimator, got {type(obj).__name__}")
    if not out:
        raise ValueError("no methods given")
    return out
