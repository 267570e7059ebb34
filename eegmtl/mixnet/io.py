"""Save and load fitted :class:`~eegmtl.mixnet.classifier.MixNetClassifier` objects.

One file holds everything prediction needs: the constructor parameters, the network weights
(as a CPU ``state_dict``, so a model fitted on a GPU loads on a CPU-only machine) and the
architecture arguments, the fitted CSP filters, ``classes_``, the input scale and layout, and the
training history. It is written atomically (temporary file, fsync, rename:
:func:`eegmtl._io.atomic_open`), so an interrupted save never leaves a truncated file. A
format tag and version are checked when loading.

The file is a ``torch.save`` pickle (it contains numpy arrays and DataFrames): like any pickle,
only load files you trust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eegmtl._io import atomic_open, library_versions

__all__ = ["FORMAT", "FORMAT_VERSION", "load_estimator", "save_estimator"]

FORMAT = "eegmtl.MixNetClassifier"
#: Bump when the layout changes; files with another version are refused. Version 2: the
#: fitted features (``features_``: filter bank designed at fit + CSP) replace version 1's CSP.
FORMAT_VERSION = 2

_NOT_SAVED = ("model_",)
_VERSION_PACKAGES = ("torch", "eegmtl", "numpy", "scikit-learn", "mne")


def save_estimator(estimator: Any, path: str | Path) -> Path:
    """Write a fitted estimator to ``path`` (atomic); returns the path.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator has not been fitted.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "model_")
    fitted = {
        k: v for k, v in vars(estimator).items()
        if k.endswith("_") and not k.startswith("_") and k not in _NOT_SAVED
    }
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "versions": library_versions(_VERSION_PACKAGES),
        "params": estimator.get_params(deep=False),
        "fitted": fitted,
        "model_state": {k: v.detach().cpu() for k, v in estimator.model_.state_dict().items()},
    }
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)
    return path


def load_estimator(path: str | Path, device: str | None = None) -> Any:
    """Load an estimator written by :func:`save_estimator`.

    Parameters
    ----------
    path : path-like
    device : str or None
        Where to put the network; ``None`` uses the estimator's ``device`` parameter
        (``"auto"``: CUDA when available, else CPU).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not an eegmtl estimator file, or written by a newer format version.
    """
    import importlib

    from eegmtl.mixnet.backbone import build_network
    from eegmtl.mtl.runtime import select_device

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved estimator at {path}; write one with est.save(path).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling error means "not our file"
        raise ValueError(f"{path} is not a readable eegmtl estimator file ({err}).") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a saved MixNetClassifier (format tag "
            f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}); "
            "was it written by MixNetClassifier.save()?"
        )
    version = int(state.get("format_version", -1))
    if version != FORMAT_VERSION:
        hint = "upgrade eegmtl" if version > FORMAT_VERSION else "refit and save it again"
        raise ValueError(
            f"{path} has format version {version}, this eegmtl reads version {FORMAT_VERSION} "
            f"(file written with {state.get('versions')}); {hint}."
        )
    module, _, name = state["class"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    est = cls(**state["params"])
    for k, v in state["fitted"].items():
        setattr(est, k, v)
    model = build_network(**dict(est.model_kwargs_))
    model.load_state_dict(state["model_state"])
    dev = select_device(est.device if device is None else device)
    est.model_ = model.to(dev).eval()
    est.device_ = str(dev)
    return est
