"""MixNet as a product: defaults, features, network trainer, classifier, losses, save/load.

- :mod:`eegmtl.mixnet.defaults` -- protocol names and MixNet's default settings (torch-free).
- :mod:`eegmtl.mixnet.features` -- window -> resample -> filter bank -> filter-bank CSP as one
  scikit-learn transformer.
- :mod:`eegmtl.mixnet.losses` -- MixNet's three losses (MSE, semi-hard triplet, class-balanced CE).
- :mod:`eegmtl.mixnet.net` -- builds the network and its tasks and trains them with the MTL core's
  :class:`~eegmtl.mtl.trainer.Trainer`.
- :mod:`eegmtl.mixnet.inputs` -- input checks at fit and predict, validation split, checkpoint
  seed and data fingerprint.
- :mod:`eegmtl.mixnet.fitting` -- the two halves of ``fit``: features, then the network.
- :mod:`eegmtl.mixnet.inference` -- batched inference of a trained network.
- :mod:`eegmtl.mixnet.classifier` -- :class:`MixNetClassifier`, the scikit-learn classifier.
- :mod:`eegmtl.mixnet.io` -- save / load of fitted classifiers.

Importing this package is cheap (no torch): the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .defaults import PROTOCOLS, normalize_protocol, protocol_defaults

__all__ = [
    "PROTOCOLS",
    "MixNetClassifier",
    "MixNetFeatures",
    "load_estimator",
    "normalize_protocol",
    "protocol_defaults",
    "resolve_mtl",
    "save_estimator",
]

_LAZY = {
    "MixNetClassifier": "classifier",
    "MixNetFeatures": "features",
    "resolve_mtl": "config",
    "save_estimator": "io",
    "load_estimator": "io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
