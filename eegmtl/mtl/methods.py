"""Method names of the MTL core: one name -> weighting + aggregator (+ flat option).

``"ew"``, a weighting name (``"rlw"``, ``"uw"``...), an aggregator name (``"pcgrad"``...), a
method whose paper fixes both (:data:`COMBINED_METHODS`), each optionally prefixed ``"f-"`` for
the flat-minima step (:mod:`eegmtl.mtl.flat`).
"""

from __future__ import annotations

from typing import Any

from eegmtl.mtl.flat import FlatConfig

__all__ = ["COMBINED_METHODS", "resolve_method"]


#: methods whose paper sets a weighting and an aggregator: name -> (weighting, aggregator)
COMBINED_METHODS: dict[str, tuple[str, str]] = {
    "db_mtl": ("log", "db_mtl"),  # DB-MTL: log-loss transform + max-norm gradient balancing
}


def resolve_method(name: str) -> dict[str, Any]:
    """Map one method name to ``{"weighting", "aggregator", "flat"}`` keyword arguments.

    ``"ew"`` -> EW + Sum; a name of :data:`COMBINED_METHODS` (``"db_mtl"``) -> its weighting +
    its aggregator; a weighting name (``"rlw"``, ``"uw"``, ``"blending"``...) -> that
    weighting + Sum; an aggregator name (``"pcgrad"``, ``"aligned_mtl_ub"``...) -> EW + that
    aggregator; a ``"f-"`` prefix adds the flat option (``"f-pcgrad"``, ``"f-ew"``).
    """
    from eegmtl.mtl.aggregators import AGGREGATORS
    from eegmtl.mtl.weightings import WEIGHTINGS

    key = name.strip().lower()
    flat: FlatConfig | None = None
    if key.startswith("f-") or key.startswith("f_"):
        flat = FlatConfig()
        key = key[2:]
    key = key.replace("-", "_")
    if key in ("ew", "sum", "ls"):
        return {"weighting": "ew", "aggregator": "sum", "flat": flat}
    if key in COMBINED_METHODS:
        weighting, aggregator = COMBINED_METHODS[key]
        return {"weighting": weighting, "aggregator": aggregator, "flat": flat}
    if key in WEIGHTINGS:
        return {"weighting": key, "aggregator": "sum", "flat": flat}
    if key in AGGREGATORS:
        return {"weighting": "ew", "aggregator": key, "flat": flat}
    raise ValueError(
        f"unknown MTL method {name!r}: give a weighting ({sorted(WEIGHTINGS)}) or an "
        f"aggregator ({sorted(AGGREGATORS)}), optionally prefixed with 'f-' for flat minima."
    )


