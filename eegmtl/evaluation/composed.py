"""Composed method names: a registered deep method plus ``+mtl[...]`` / ``+recipe`` /
``+arch[...]`` / ``+aug[...]`` / ``+noaug`` / ``+set[...]``.

:func:`parse_name` splits a name such as ``"ATCNet+mtl[aligned_mtl]+aug[sr,ft]"`` into its base
and options; :func:`composed_method` turns it into a registry entry ``(factory, protocol ->
config)``, so a composed name works wherever a registered one does and its whole configuration
(augmentation spec, backbone, MTL method) is recorded and hashed with the results.

Grammar (suffixes in any order, each at most once)::

    name   := base ("+mtl[" METHOD "]" "+recipe"?)? ("+arch[" ARCH "]")?
              ("+aug" ("[" AUG ("," AUG)* ("," "x" K)? "]")? | "+noaug")?
              ("+set[" KEY "=" VALUE ("," KEY "=" VALUE)* "]")?
    base   := a registered deep method (MixNet rows, MIN2Net, the deep baselines, EEGNet[val], ...)
              or, with +mtl, any braindecode model class name

- ``+mtl[m]`` on a MixNet row sets its MTL method ``m``; on a braindecode network (registered
  or not) it builds the MixNet estimator with that network's trunk and MixNet's heads
  (:data:`BACKBONE_OPTIONS`), trained by ``m`` with MixNet's protocol (Adam 1e-3, batch,
  200 epochs, patience 20, ReduceLROnPlateau).
- ``+recipe`` (with ``+mtl[m]`` on a braindecode network that has a recipe) trains that
  multi-task network with the network's own recipe instead (:func:`recipe_options`: its
  optimiser, learning rate, betas, weight decay, epochs, batch, input rate, input z-score and
  augmentation; early stopping on the validation classification loss with its single-task
  row's patience; a constant learning rate; MixNet's interleaved validation batches only for
  blending, which needs them), so that ``X+mtl[m]+recipe`` differs from the single-task ``X``
  by MixNet's heads, tasks and MTL method and by the 4-40 Hz band-pass of
  :data:`BACKBONE_OPTIONS` (wider than the 2b export's pass band).
- ``+arch[a]`` (``mmoe``, ``cgc``, ``ple``, ``cross_stitch``) on a MixNet-family pipeline (a
  MixNet row, MIN2Net, or a braindecode network with ``+mtl``) replaces hard parameter sharing
  by that architecture of encoder copies (default sizes:
  :data:`eegmtl.models.eeg_architectures.EEG_ARCHITECTURES`).
- ``+aug`` = :data:`DEFAULT_AUGMENTATION` (S&R, one augmented copy appended per batch);
  ``+aug[a,b]`` composes the transforms of :data:`AUG_ALIASES` (one appended copy;
  ``+aug[a,b,x2]``: two independently augmented copies, ``x0``: in place);
  ``+noaug`` removes a recipe's augmentation.
- ``+set[key=value,...]`` overrides configuration entries, applied after the other parts: a
  key of the pipeline's default config or, on a MixNet-family pipeline, any
  :class:`~eegmtl.mixnet.MixNetClassifier` parameter (e.g. ``MixNet[best]+set[n_components=3]``,
  all three CSP filters per band). Values are read by
  :func:`~eegmtl.evaluation.overrides.parse_value` (numbers,
  ``true`` / ``false``, ``none``, numbers joined by ``/`` as a list, e.g.
  ``TCFormer+set[betas=0.5/0.999]``, else text; a band set is given as text,
  ``+set[bands=4-28/4]``, see :func:`eegmtl.eeg.filters.parse_bands`); the overrides are
  recorded and hashed with the config, so the name tells the variant apart in every record
  and report. ``model.<argument>`` keys set a constructor argument of the braindecode network
  (a registry network's, or the trunk of ``+mtl``), e.g.
  ``EEGConformer+set[model.num_layers=10,model.num_heads=5]``
  (:func:`eegmtl.evaluation.overrides.apply_overrides`); the signal's shape (``n_chans``,
  ``n_times``, ...) stays the harness's. ``flat.<field>`` keys set fields of a MixNet-family
  pipeline's flat-minima step (``FlatConfig``), e.g.
  ``MixNet+mtl[f-aligned_mtl]+set[flat.aggregate=loss_weights]``.
- ``EEGNet`` / ``ShallowFBCSPNet`` with a suffix are built on ``EEGNet[val]`` /
  ``ShallowFBCSPNet[val]`` (the recipe path with validation-fold early stopping): the older
  rows' own path takes no augmentation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from eegmtl.evaluation import catalog as m
from eegmtl.evaluation.overrides import (
    FLAT_PREFIX,
    NETWORK_PREFIX,
    apply_overrides,
    check_flat_fields,
    check_network_args,
    config_overrides,
    network_slot,
    parse_value,
)
from eegmtl.mixnet.config import resolve_config

__all__ = [
    "AUG_ALIASES",
    "BACKBONE_OPTIONS",
    "DEFAULT_AUGMENTATION",
    "SUFFIX_KINDS",
    "FLAT_PREFIX",
    "NETWORK_PREFIX",
    "apply_overrides",
    "augmentation_spec",
    "check_flat_fields",
    "check_network_args",
    "composed_method",
    "recipe_options",
    "config_overrides",
    "network_slot",
    "parse_name",
    "parse_value",
]

#: short names of the transforms of :data:`eegmtl.eeg.augmentation.AUGMENTATIONS`
AUG_ALIASES: dict[str, str] = {
    "sr": "segment_recombine", "segment_recombine": "segment_recombine",
    "ft": "ft_surrogate", "ftsurrogate": "ft_surrogate", "ft_surrogate": "ft_surrogate",
    "mask": "smooth_time_mask", "smooth_time_mask": "smooth_time_mask",
    "chdrop": "channels_dropout", "channels_dropout": "channels_dropout",
    "noise": "gaussian_noise", "gaussian_noise": "gaussian_noise",
}
#: ``+aug``: segmentation-and-recombination, one augmented copy appended to each training batch
#: (as the CTNet / EEG-Conformer code appends its S&R trials)
DEFAULT_AUGMENTATION: dict[str, Any] = {"transforms": ["segment_recombine"], "n_augmentation": 1}

#: MixNet-estimator options of a braindecode trunk with MixNet's heads (``<model>+mtl[...]``):
#: band-passed trials at 250 Hz (4-40 Hz Butterworth, wider than the 2b export's pass band, no
#: CSP) and a 16-d latent; the rest (margin, warm-up, batch, Adam 1e-3, 200 epochs, patience
#: 20, ReduceLROnPlateau) are MixNet's protocol settings.
BACKBONE_OPTIONS: dict[str, Any] = {"input": "time", "bands": [[4.0, 40.0]],
                                    "sfreq_model": 250.0, "latent_dim": 16}

#: the parts a composed name may carry after its base, as a regex alternation
SUFFIX_KINDS = "aug|noaug|mtl|recipe|arch|set"
_SUFFIX = rf"\+(?:{SUFFIX_KINDS})(?:\[[^\]]*\])?"
_NAME = re.compile(rf"^(?P<base>.+?)(?P<suffixes>(?:{_SUFFIX})+)$")
_LEGACY = {"EEGNet": "EEGNet[val]", "ShallowFBCSPNet": "ShallowFBCSPNet[val]"}

def parse_name(name: str) -> tuple[str, dict[str, str | None]]:
    """``(base, {"mtl": method, "arch": ..., "aug": spec text | None, "set": overrides text})``
    (``"aug": None`` for ``+noaug``).

    Raises
    ------
    KeyError
        ``name`` carries no suffix (then it must be registered) or repeats one.
    """
    match = _NAME.match(name)
    if not match:
        raise KeyError(f"unknown method {name!r}; available: {m.available_methods()}, or a "
                       "deep one with +mtl[<method>], +arch[mmoe|cgc|ple|cross_stitch], +aug, "
                       "+aug[sr,ft,...], +noaug or +set[key=value,...]")
    opts: dict[str, str | None] = {}
    for kind, arg in re.findall(rf"\+({SUFFIX_KINDS})(?:\[([^\]]*)\])?", match["suffixes"]):
        key = "aug" if kind == "noaug" else kind
        if key in opts:
            parts = "+aug / +noaug" if key == "aug" else f"+{kind}"
            raise KeyError(f"{name!r}: give at most one {parts} part.")
        opts[key] = None if kind == "noaug" else arg
        if kind == "mtl" and not arg:
            raise KeyError(f"{name!r}: +mtl needs a method, e.g. +mtl[blending].")
        if kind == "recipe" and arg:
            raise KeyError(f"{name!r}: +recipe takes no argument (it uses the network's own "
                           "recipe).")
        if kind == "arch" and not arg:
            raise KeyError(f"{name!r}: +arch needs an architecture, e.g. +arch[mmoe].")
        if kind == "set" and not arg:
            raise KeyError(f"{name!r}: +set needs key=value items, e.g. +set[n_components=3].")
    return match["base"], opts


def augmentation_spec(text: str) -> dict[str, Any]:
    """The augmentation spec of ``+aug[text]`` (``""``: :data:`DEFAULT_AUGMENTATION`).

    ``text`` lists transforms of :data:`AUG_ALIASES`, composed in order, and optionally one
    ``xK`` item: ``K`` independently augmented copies appended to each training batch
    (default 1; ``x0`` transforms the batch in place), e.g. ``sr,mask,x2``.
    """
    if not text:
        return dict(DEFAULT_AUGMENTATION)
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    copies = [t for t in names if re.fullmatch(r"x\d+", t)]
    names = [t for t in names if t not in copies]
    if len(copies) > 1:
        raise ValueError(f"give the number of augmented copies once; got {copies}.")
    bad = [t for t in names if t not in AUG_ALIASES]
    if bad:
        raise ValueError(f"unknown augmentation(s) {bad}; use {sorted(set(AUG_ALIASES))} and "
                         "optionally xK (K augmented copies per batch, e.g. x2).")
    if not names:
        raise ValueError(f"+aug[{text}] names no transform; e.g. +aug[sr,x2].")
    n_copies = int(copies[0][1:]) if copies else DEFAULT_AUGMENTATION["n_augmentation"]
    return {"transforms": [AUG_ALIASES[t] for t in names], "n_augmentation": n_copies}


def _backbone_defaults(model: str, mtl: str) -> Callable[[str], dict[str, Any]]:
    def defaults(protocol: str) -> dict[str, Any]:
        kwargs = dict(m._recipe(model).model_kwargs) if _has_recipe(model) else {}
        if model == "ATCNet":  # the trunk: every sliding window's features, concatenated
            kwargs.setdefault("concat", True)
        return {**m.MIXNET_DEFAULTS[protocol], **m.MIXNET_COMMON, "mtl": mtl,
                **BACKBONE_OPTIONS, "backbone": model, "backbone_kwargs": kwargs}

    return defaults


def recipe_options(model: str, protocol: str, mtl: str) -> dict[str, Any]:
    """The training settings of ``model``'s recipe as MixNet-estimator options (the settings
    its single-task registry row trains with): optimiser, learning rate, betas, weight decay,
    epochs, batch, input rate, input z-score, augmentation, early stopping on the validation
    classification loss with the row's patience, a constant learning rate, and interleaved
    validation only for ``mtl`` methods that blend (they need it)."""
    from eegmtl.mixnet.config import resolve_mtl, uses_blending

    row = m._deep_defaults(model)(protocol)
    keys = ("optimizer", "lr", "betas", "weight_decay", "max_epochs", "batch_size", "patience",
            "standardize", "augmentation")
    return {**{k: row[k] for k in keys}, "sfreq_model": m._recipe(model).sfreq,
            "lr_schedule": "constant", "monitor": "val_classification_loss",
            "interleaved_validation": uses_blending(resolve_mtl(mtl))}


def _with_recipe(name: str, model: str, mtl: str,
                 inner: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    if not _has_recipe(model):
        known = sorted(m._import("eegmtl.eeg.deep_baselines", "RECIPES", "deep baseline"))
        raise ValueError(f"{name!r}: {model!r} has no training recipe; +recipe needs one of "
                         f"{known}.")

    def defaults(protocol: str) -> dict[str, Any]:
        return {**inner(protocol), **recipe_options(model, protocol, mtl)}

    return defaults


def _with_architecture(name: str, factory: Any, inner: Callable[[str], dict[str, Any]],
                       arch: str) -> Callable[[str], dict[str, Any]]:
    from eegmtl.models.eeg_architectures import EEG_ARCHITECTURES

    if factory not in (m._mixnet_factory, m._min2net_factory):
        raise ValueError(f"{name!r}: +arch applies to MixNet-family pipelines (MixNet rows, "
                         "MIN2Net, or a braindecode network with +mtl[<method>]).")
    key = arch.strip().lower()
    if key not in EEG_ARCHITECTURES:
        raise ValueError(f"{name!r}: unknown architecture {arch!r}; use one of "
                         f"{sorted(EEG_ARCHITECTURES)}.")

    def defaults(protocol: str) -> dict[str, Any]:
        return {**inner(protocol), "architecture": key}

    return defaults


def _has_recipe(model: str) -> bool:
    return model in m._import("eegmtl.eeg.deep_baselines", "RECIPES", "deep baseline")


def composed_method(name: str) -> tuple[Any, Callable[[str], dict[str, Any]]]:
    """Registry entry ``(factory, protocol -> config)`` of a composed name (module docstring)."""
    base, opts = parse_name(name)
    if base in m.ALIASES:  # e.g. MixNet[best]+arch[mmoe]: the alias's own name, then the rest
        full = m.ALIASES[base] + name[len(base):]
        try:
            return composed_method(full)
        except (KeyError, ValueError) as err:
            text = str(err.args[0] if err.args else err).removeprefix(f"{full!r}: ")
            raise type(err)(f"{name!r} ({base} stands for {m.ALIASES[base]!r}): {text}") from None
    base = _LEGACY.get(base, base)
    mixnet_like = base in m.METHODS and m.METHODS[base][0] in (m._mixnet_factory,
                                                              m._min2net_factory)
    deep = base in m.METHODS and m.METHODS[base][0] is m._deep_factory
    if base in m.METHODS and not (mixnet_like or deep):
        raise ValueError(f"{name!r}: {base!r} is not a deep pipeline; +mtl / +aug apply to the "
                         "MixNet rows and the braindecode networks only.")
    if "mtl" in opts:
        from eegmtl.mtl.methods import resolve_method

        try:
            resolve_method(str(opts["mtl"]))
        except (KeyError, ValueError) as err:
            raise ValueError(f"{name!r}: {err.args[0] if err.args else err}") from None
        if mixnet_like:
            factory, inner = m.METHODS[base]
            mtl = opts["mtl"]

            def base_defaults(protocol: str) -> dict[str, Any]:
                return {**inner(protocol), "mtl": mtl}
        else:
            model = base if not deep else m.base_config(base)["model"]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", model):
                raise ValueError(f"{name!r}: {model!r} is neither a registered method nor a "
                                 "braindecode model class name.")
            factory, base_defaults = m._mixnet_factory, _backbone_defaults(model, opts["mtl"])
    elif base in m.METHODS:
        factory, base_defaults = m.METHODS[base]
    else:
        raise KeyError(f"unknown method {base!r} in {name!r}; available: "
                       f"{m.available_methods()} (a braindecode model needs +mtl[<method>]).")
    if "recipe" in opts:
        if "mtl" not in opts or mixnet_like:
            raise ValueError(f"{name!r}: +recipe applies to a braindecode network with "
                             "+mtl[<method>] (e.g. EEGNet+mtl[blending]+recipe).")
        base_defaults = _with_recipe(name, model, str(opts["mtl"]), base_defaults)
    if "arch" in opts:
        base_defaults = _with_architecture(name, factory, base_defaults, str(opts["arch"]))
    if "aug" in opts:
        base_defaults = _with_augmentation(name, base, factory, base_defaults, opts["aug"])
    if "set" in opts:
        base_defaults = _with_overrides(name, factory, base_defaults, str(opts["set"]))
    return factory, base_defaults


def _with_augmentation(name: str, base: str, factory: Any,
                       base_defaults: Callable[[str], dict[str, Any]],
                       text: str | None) -> Callable[[str], dict[str, Any]]:
    if text is None:
        aug = None
    else:
        aug = augmentation_spec(text)
        if not text and _augments(base_defaults):
            stem = re.sub(r"\+aug(?!\[)", "", name)
            raise ValueError(f"{name!r}: {base} already augments (its recipe); use {stem!r}, "
                             f"{stem + '+noaug'!r} or +aug[...] to replace it.")

    def defaults(protocol: str) -> dict[str, Any]:
        return {**base_defaults(protocol), "augmentation": aug}

    return defaults


def _augments(defaults: Callable[[str], dict[str, Any]]) -> bool:
    """Whether the config of either protocol (those it has) already augments."""
    for protocol in ("subject_dependent", "subject_independent"):
        try:
            if defaults(protocol).get("augmentation"):
                return True
        except ValueError:  # e.g. settings tuned for one protocol only
            continue
    return False


def _with_overrides(name: str, factory: Any, base_defaults: Callable[[str], dict[str, Any]],
                    text: str) -> Callable[[str], dict[str, Any]]:
    try:
        overrides = config_overrides(text)
    except ValueError as err:
        raise ValueError(f"{name!r}: {err.args[0]}") from None
    known: set[str] = set()
    for protocol in ("subject_dependent", "subject_independent"):
        try:
            config = base_defaults(protocol)
        except ValueError:  # e.g. settings tuned for one protocol only
            continue
        known |= set(config)
        try:
            check_network_args(config, overrides)
        except ValueError as err:
            raise ValueError(f"{name!r}: +set[...]: {err.args[0]}") from None
    mixnet_like = factory in (m._mixnet_factory, m._min2net_factory)
    if mixnet_like:
        known |= set(inspect.signature(m._mixnet_class(name)).parameters)
    flat = sorted(k for k in overrides if k.startswith(FLAT_PREFIX))
    if flat and not mixnet_like:
        raise ValueError(f"{name!r}: +set[{', '.join(flat)}]: flat.<field> applies to "
                         "MixNet-family pipelines (their flat-minima step).")
    try:
        check_flat_fields(overrides)
    except ValueError as err:
        raise ValueError(f"{name!r}: +set[...]: {err.args[0]}") from None
    unknown = sorted(k for k in set(overrides) - known
                     if not k.startswith((NETWORK_PREFIX, FLAT_PREFIX)))
    if unknown:
        raise ValueError(f"{name!r}: +set[...] cannot set {unknown}; settable here: "
                         f"{sorted(known)}, or model.<argument> of a braindecode network.")

    def defaults(protocol: str) -> dict[str, Any]:
        return apply_overrides(base_defaults(protocol), overrides)

    if factory in (m._mixnet_factory, m._min2net_factory):
        _check_mixnet_values(name, factory, defaults)
    return defaults


def _check_mixnet_values(name: str, factory: Any,
                         defaults: Callable[[str], dict[str, Any]]) -> None:
    """The overridden values, checked now by the estimator's own validation
    (:func:`eegmtl.mixnet.config.resolve_config`) rather than at the first fit."""
    for protocol in ("subject_dependent", "subject_independent"):
        try:
            config = defaults(protocol)
        except ValueError:  # e.g. settings tuned for one protocol only
            continue
        try:
            resolve_config(factory(config).get_params(deep=False))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name!r}: {err.args[0]}") from None
