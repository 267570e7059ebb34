"""eegmtl: multi-task learning for EEG brain-computer interfaces.

Sub-packages
------------
- :mod:`eegmtl.mtl` -- model-agnostic MTL core (weightings, aggregators, flat minima, trainer).
- :mod:`eegmtl.eeg` -- BCI Competition IV 2b through MOABB, MNE preprocessing, filter-bank CSP.
- :mod:`eegmtl.models` -- torch modules (MixNet, vision backbones).
- :mod:`eegmtl.mixnet` -- MixNet as a product: defaults, features, trainer, classifier, I/O.
- :mod:`eegmtl.benchmarks` -- vision MTL benchmarks (MultiMNIST family, two-task landscape, ...).
- :mod:`eegmtl.evaluation` -- subject-dependent / subject-independent protocols and results.

Importing :mod:`eegmtl` is cheap: sub-packages are imported on first use, and so is
``from eegmtl import MixNetClassifier`` (:class:`eegmtl.mixnet.classifier.MixNetClassifier`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = [
    "MixNetClassifier", "__version__", "benchmarks", "eeg", "evaluation", "mixnet", "models", "mtl"
]
_SUBPACKAGES = frozenset({"mtl", "eeg", "models", "mixnet", "benchmarks", "evaluation"})


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"eegmtl.{name}")
    if name == "MixNetClassifier":
        return importlib.import_module("eegmtl.mixnet.classifier").MixNetClassifier
    raise AttributeError(f"module 'eegmtl' has no attribute {name!r}")
