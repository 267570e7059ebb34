"""Torch models: MixNet (EEG) and, lazily, the vision backbones of :mod:`eegmtl.models.vision`.

``from eegmtl.models import MixNet`` is cheap; any other public name (e.g. ``LeNet``) is looked up
in :mod:`eegmtl.models.vision` on first access, so importing the EEG model never imports the
vision code.
"""

from __future__ import annotations

import importlib
from typing import Any

from .mixnet import MixNet

__all__ = ["MixNet"]


def __getattr__(name: str) -> Any:
    if name == "MultiTaskBraindecode":
        return importlib.import_module(".multitask", __name__).MultiTaskBraindecode
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        vision = importlib.import_module(".vision", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.vision":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    try:
        return getattr(vision, name)
    except AttributeError:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r} (neither MixNet nor a name of "
            f"{__name__}.vision)"
        ) from None


def __dir__() -> list[str]:
    names = set(globals()) | set(__all__)
    try:
        vision = importlib.import_module(".vision", __name__)
    except ModuleNotFoundError:
        return sorted(names)
    return sorted(names | set(getattr(vision, "__all__", ())))
