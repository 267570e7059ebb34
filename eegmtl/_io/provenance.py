"""Provenance of a result: canonical config JSON, config hashes, installed library versions.

Records carry :func:`config_hash` of their configuration (the key that makes a rerun skip
finished work) and :func:`library_versions`; nothing is imported to read a version.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import metadata as _metadata
from typing import Any, Literal

__all__ = ["DEFAULT_VERSION_PACKAGES", "config_hash", "data_digest", "fit_fingerprint",
           "library_versions", "stable_json"]


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, sets and paths to plain JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_jsonable(v) for v in obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy array or scalar
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"cannot put a {type(obj).__name__} ({obj!r}) into a result config: configs must hold "
        "JSON-like values (numbers, strings, lists, dicts). Pass a name instead of an object."
    )


def stable_json(obj: Any) -> str:
    """Canonical JSON text of ``obj`` (sorted keys, no spaces, tuples as lists)."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(
    obj: Any, length: int = 12, *, style: Literal["canonical", "loose"] = "canonical"
) -> str:
    """Short hex hash of a configuration.

    Parameters
    ----------
    obj : JSON-like
        The configuration.
    length : int
        Number of hex digits kept.
    style : {"canonical", "loose"}
        ``"canonical"`` (EEG records): SHA-1 of :func:`stable_json`; two configs that differ
        only in key order or list/tuple type hash the same, any value change changes the hash,
        and objects that are not JSON-like are refused. ``"loose"`` (vision records and the
        benchmark cache, kept so their stored hashes stay valid): SHA-256 of
        ``json.dumps(obj, sort_keys=True, default=str)``.
    """
    if style == "canonical":
        return hashlib.sha1(stable_json(obj).encode("utf-8")).hexdigest()[:length]
    if style == "loose":
        text = json.dumps(obj, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:length]
    raise ValueError(f"style must be 'canonical' or 'loose', got {style!r}")


def data_digest(X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> dict[str, Any]:
    """What identifies a fit's data in a checkpoint fingerprint: shape, label counts and a
    SHA-256 (first 32 hex digits) of the trials as float64 bytes and the labels as text,
    validation trials included when given.

    ``X`` and ``y`` are numpy arrays (or array-likes numpy converts); numpy is imported here
    only when this is called.
    """
    import numpy as np

    X = np.asarray(X)
    digest = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update(np.asarray(y).astype(str).tobytes())
    if X_val is not None:
        digest.update(np.ascontiguousarray(X_val, dtype=np.float64).tobytes())
        digest.update(np.asarray(y_val).astype(str).tobytes())
    classes, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    return {"shape": list(X.shape), "labels": dict(zip(classes.tolist(), counts.tolist())),
            "data_sha256": digest.hexdigest()[:32]}


def fit_fingerprint(est: Any, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
                    resumable: Sequence[str] = ()) -> dict[str, Any]:
    """What a checkpoint of ``est``'s fit must agree on: :func:`data_digest` of the data and a
    hash of the estimator's parameters (``get_params(deep=False)`` as ``repr``), leaving out
    the ``resumable`` ones, which may change between an interrupted fit and its resumption."""
    params = {k: repr(v) for k, v in est.get_params(deep=False).items() if k not in resumable}
    return {**data_digest(X, y, X_val, y_val), "settings_hash": config_hash(params, 16)}


#: Packages whose versions go into every record by default.
DEFAULT_VERSION_PACKAGES: tuple[str, ...] = (
    "eegmtl", "torch", "numpy", "scipy", "scikit-learn", "mne", "moabb", "pandas",
    "braindecode", "pyriemann",
)


def library_versions(names: Sequence[str] | None = None) -> dict[str, str | None]:
    """Installed versions of ``names`` (default :data:`DEFAULT_VERSION_PACKAGES`), ``None`` for
    a package that is not installed; read from package metadata, nothing is imported.
    ``"python"`` gives the interpreter's version."""
    import platform

    out: dict[str, str | None] = {}
    for name in DEFAULT_VERSION_PACKAGES if names is None else names:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    """The hardware a result was computed on, for records' provenance (never hashed).

    ``cpu`` (the model name of ``/proc/cpuinfo``, else :func:`platform.processor`), ``arch``
    and ``cpu_count``; when torch is already imported (nothing is imported here) also
    ``cpu_capability`` (the SIMD kernels torch dispatches to, e.g. ``"AVX512"``) and ``gpu``
    (the CUDA device name, ``None`` without one). Two machines that differ in these may
    round sums and convolutions differently, so a rerun of the same config can differ by a
    trial or two per fit.
    """
    import platform
    import sys

    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu or platform.processor() or None,
                            "arch": platform.machine(), "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return info
