"""``+set[key=value,...]`` of a pipeline name: its items read, applied to a configuration and
checked.

:func:`config_overrides` reads the items (values by :func:`parse_value`); :func:`apply_overrides`
applies them to a pipeline's configuration: a plain key replaces an entry,
``model.<argument>`` (:data:`NETWORK_PREFIX`) sets a constructor argument of the pipeline's
braindecode network (a registry network's, or the trunk of ``+mtl``; :func:`network_slot`),
``flat.<field>`` (:data:`FLAT_PREFIX`) a field of the flat-minima step's
:class:`~eegmtl.mtl.flat.FlatConfig`. :func:`check_network_args` and :func:`check_flat_fields`
check those keys against the network's constructor and ``FlatConfig`` when the name is built,
not at the first fit. The same overrides serve ``eegmtl sd|si --set`` and the ``+set[...]``
part of a composed name (:mod:`eegmtl.evaluation.composed`).
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["FLAT_PREFIX", "NETWORK_PREFIX", "apply_overrides", "check_flat_fields",
           "check_network_args", "config_overrides", "network_slot", "parse_value"]

#: ``+set[model.<argument>=value]``: a constructor argument of the braindecode network
NETWORK_PREFIX = "model."
#: ``+set[flat.<field>=value]``: a field of the flat-minima step's ``FlatConfig``
FLAT_PREFIX = "flat."
#: the configuration entries holding a braindecode network's constructor arguments: a registry
#: network's (``model``) and a ``+mtl`` trunk's (``backbone``)
_NETWORK_SLOTS = {"model_kwargs": "model", "backbone_kwargs": "backbone"}
#: network arguments the harness sets from the data, never from a name
_SIGNAL_ARGS = frozenset({"n_chans", "n_outputs", "n_times", "sfreq", "chs_info",
                          "input_window_seconds"})


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, numbers joined
    by ``/`` -> a list (``"0.5/0.999"`` -> [0.5, 0.999], e.g. Adam's betas), else the text
    (``"4-28/4"`` stays text: not every part is a number)."""
    low = text.lower()
    if low in {"true", "false"}:
        return low == "true"
    if low in {"none", "null"}:
        return None
    number = _number(text)
    if number is not None:
        return number
    parts = [_number(t) for t in text.split("/")]
    if len(parts) > 1 and all(v is not None for v in parts):
        return parts
    return text


def _number(text: str) -> int | float | None:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return None


def config_overrides(text: str) -> dict[str, Any]:
    """The ``key=value`` pairs of ``+set[text]`` (values by :func:`parse_value`); a key is a
    configuration entry, ``model.<argument>`` (:data:`NETWORK_PREFIX`) or ``flat.<field>``
    (:data:`FLAT_PREFIX`).

    Raises
    ------
    ValueError
        An empty list, an item without ``=`` or a key given twice.
    """
    out: dict[str, Any] = {}
    for item in (t.strip() for t in text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.removeprefix(NETWORK_PREFIX).removeprefix(FLAT_PREFIX
                                                                         ).isidentifier():
            raise ValueError(f"+set[...] takes key=value items separated by commas (e.g. "
                             f"+set[n_components=3]); got {item!r}.")
        if key in out:
            raise ValueError(f"+set[...] gives {key!r} twice.")
        out[key] = parse_value(value.strip())
    return out


def network_slot(config: dict[str, Any]) -> str | None:
    """The configuration key holding the braindecode network's arguments (None: no network)."""
    return next((k for k, owner in _NETWORK_SLOTS.items() if config.get(owner)), None)


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``overrides`` applied: plain keys replace configuration entries,
    ``model.<argument>`` keys (:data:`NETWORK_PREFIX`) update the braindecode network's
    constructor arguments (``model_kwargs`` of a registry network, ``backbone_kwargs`` of a
    ``+mtl`` trunk), keeping its other arguments; ``flat.<field>`` keys (:data:`FLAT_PREFIX`)
    set fields of the flat-minima step (``config["flat"]`` becomes a dict of
    :class:`~eegmtl.mtl.flat.FlatConfig` fields, its other fields kept or at their defaults;
    this switches the flat step on, ``f-`` method or not). ``config`` is not modified.

    Raises
    ------
    ValueError
        A ``model.`` key on a pipeline without a braindecode network.
    """
    out = dict(config)
    network = {k.removeprefix(NETWORK_PREFIX): v for k, v in overrides.items()
               if k.startswith(NETWORK_PREFIX)}
    flat = {k.removeprefix(FLAT_PREFIX): v for k, v in overrides.items()
            if k.startswith(FLAT_PREFIX)}
    out.update({k: v for k, v in overrides.items()
                if not k.startswith((NETWORK_PREFIX, FLAT_PREFIX))})
    if flat:
        from eegmtl.mtl.flat import make_flat_config

        base = make_flat_config(out.get("flat"))
        out["flat"] = {**(base.as_record() if base is not None else {}), **flat}
    if network:
        slot = network_slot(out)
        if slot is None:
            raise ValueError(f"{sorted(NETWORK_PREFIX + k for k in network)}: this pipeline has "
                             "no braindecode network to set arguments of (model.<argument> "
                             "applies to the braindecode rows and to <network>+mtl[...]).")
        out[slot] = {**(out.get(slot) or {}), **network}
    return out


def check_network_args(config: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Check the ``model.<argument>`` keys of ``overrides`` against the constructor of the
    braindecode network of ``config`` (its signature; the values are checked when the network
    is built).

    Raises
    ------
    ValueError
        No network, an argument the network does not take, or one set from the data.
    """
    args = sorted(k.removeprefix(NETWORK_PREFIX) for k in overrides
                  if k.startswith(NETWORK_PREFIX))
    if not args:
        return
    slot = network_slot(config)
    if slot is None:
        apply_overrides(config, overrides)  # raises the no-network error
        return
    model = str(config[_NETWORK_SLOTS[slot]])
    import braindecode.models

    cls = getattr(braindecode.models, model, None)
    if cls is None:
        raise ValueError(f"{model!r} is not a braindecode model class; model.<argument> needs "
                         "one.")
    params = {n for n, p in inspect.signature(cls).parameters.items()
              if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    fixed = [a for a in args if a in _SIGNAL_ARGS]
    if fixed:
        raise ValueError(f"{[NETWORK_PREFIX + a for a in fixed]}: the signal's shape and rate "
                         f"are set from the data, not by a name.")
    unknown = [a for a in args if a not in params]
    if unknown:
        raise ValueError(f"braindecode's {model} takes no {unknown}; its arguments: "
                         f"{sorted(params - _SIGNAL_ARGS)}.")


def check_flat_fields(overrides: dict[str, Any]) -> None:
    """Check the ``flat.<field>`` keys of ``overrides`` (:data:`FLAT_PREFIX`): fields and
    values of :class:`~eegmtl.mtl.flat.FlatConfig`.

    Raises
    ------
    ValueError
        A field FlatConfig does not have, or a value it refuses.
    """
    from dataclasses import fields

    from eegmtl.mtl.flat import FlatConfig

    values = {k.removeprefix(FLAT_PREFIX): v for k, v in overrides.items()
              if k.startswith(FLAT_PREFIX)}
    if not values:
        return
    known = {f.name for f in fields(FlatConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"FlatConfig has no {unknown}; its fields: {sorted(known)}.")
    try:
        FlatConfig(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(str(err.args[0])) from None
