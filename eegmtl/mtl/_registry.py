"""Name lookup shared by the registries (aggregators, weightings, benchmark names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

V = TypeVar("V")

__all__ = ["lookup", "registry_key"]


def registry_key(name: str) -> str:
    """Normalise a registry name: case-insensitive, ``-`` and ``_`` equivalent."""
    return name.strip().lower().replace("-", "_")


def lookup(registry: Mapping[str, V], name: str, kind: str, hint: str = "") -> V:
    """Return ``registry[registry_key(name)]`` or raise a ValueError listing the choices."""
    key = registry_key(name)
    if key not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {sorted(registry)}{hint}.")
    return registry[key]
