"""eegmtl: multi-task learning for EEG brain-computer interfaces.

Sub-packages
------------
- :mod:`eegmtl.mtl` -- model-agnostic MTL core (weightings, aggregators, flat minima, trainer).
- :mod:`eegmtl.eeg` -- BCI Competition IV 2b through MOABB, MNE preprocessing, filter-bank CSP.
- :mod:`eegmtl.models` -- torch modules (MixNet, vision backbones).
- :mod:`eegmtl.benchmarks` -- vision MTL benchmarks (MultiMNIST family, two-task landscape, ...).
- :mod:`eegmtl.evaluation` -- subject-dependent / subject-independent protocols and results.

Importing :mod:`eegmtl` is cheap: sub-packages are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "mtl", "eeg", "models", "benchmarks", "evaluation"]


def __getattr__(name: str) -> Any:
    if name in {"mtl", "eeg", "models", "benchmarks", "evaluation", "losses", "estimator"}:
        return importlib.import_module(f"eegmtl.{name}")
    raise AttributeError(f"module 'eegmtl' has no attribute {name!r}")
