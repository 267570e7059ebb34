"""Input handling of :class:`~eegmtl.mixnet.classifier.MixNetClassifier`: the fit- and
predict-time checks of :mod:`eegmtl.eeg.checks`, the validation split, and the seed and data /
settings fingerprint recorded with a checkpoint so that ``resume=True`` continues only the
same fit.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eegmtl._io import data_digest, fit_fingerprint, read_json, write_json
from eegmtl.eeg.checks import (
    UNIT_TO_UV,
    AmplitudeReference,
    check_fit_layout,
    check_prediction_epochs,
    check_training_epochs,
    find_flat_trials,
)
from eegmtl.mixnet.config import seed_from, uses_blending

__all__ = [
    "check_fit_epochs", "check_predict_epochs", "checkpoint_seed", "data_fingerprint",
    "split_validation",
]

_UNITS = {"auto": "auto", "uv": "uV", "µv": "uV", "μv": "uV", "mv": "mV", "v": "V"}
#: Parameters that may change between an interrupted fit and its resumption (``random_state``
#: is checked through the recorded seed).
_RESUMABLE = ("max_epochs", "verbose", "device", "checkpoint_dir", "checkpoint_every_s",
              "random_state")
#: parameters left out of the settings hash while at their default ``None``, so that the
#: checkpoints of fits made before these parameters existed still resume
_HASHED_IF_SET = ("architecture", "architecture_kwargs", "optimizer", "weight_decay", "betas",
                  "lr_schedule", "standardize", "ema_decay", "unlabeled_trials")


def _window(est: Any) -> dict[str, Any]:
    return {"sfreq": est.sfreq, "tmin": est.tmin, "tmax": est.tmax,
            "epoch_tmin": est.epoch_tmin, "epoch_tmax": getattr(est, "epoch_tmax", None)}


def _declared_units(input_scale: Any) -> str | None:
    """``input_scale`` as a unit for :func:`~eegmtl.eeg.checks.check_units` (None: a factor)."""
    if isinstance(input_scale, str) and input_scale.strip().lower() in _UNITS:
        return _UNITS[input_scale.strip().lower()]
    if (isinstance(input_scale, numbers.Real) and not isinstance(input_scale, bool)
            and np.isfinite(input_scale) and input_scale > 0):
        return None
    raise ValueError(
        f"input_scale must be 'auto', 'uV', 'mV', 'V' or a positive factor; got {input_scale!r}."
    )


def check_fit_epochs(est: Any, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Training epochs through :func:`~eegmtl.eeg.checks.check_training_epochs` (float64,
    finite, ``sfreq`` fits the trial length, labels without missing values and with two or more
    classes, unit diagnosis, outlier trials warned with their indices; flat trials refused for
    the CSP input, with their indices); sets
    ``est.amplitude_reference_`` (a dict). Returns ``X`` (float64), ``y`` and the factor that
    brings ``X`` to microvolts."""
    units = _declared_units(est.input_scale)
    X, y, unit, ref = check_training_epochs(X, y, units=units, **_window(est))
    flat = find_flat_trials(X)
    if est.input == "fbcsp" and len(flat):
        raise ValueError(
            f"X has {len(flat)} flat trial(s) (constant, e.g. all zeros) at indices "
            f"{flat[:20].tolist()}: the filter-bank CSP cannot normalise them. Drop them "
            "(keep = np.setdiff1d(np.arange(len(X)), idx); X, y = X[keep], y[keep])."
        )
    est.amplitude_reference_ = dataclasses.asdict(ref)
    scale = float(est.input_scale) if unit is None else UNIT_TO_UV[unit]
    return X, y, scale


def check_predict_epochs(est: Any, X: Any, name: str = "X") -> np.ndarray:
    """Prediction (or validation) epochs: :func:`~eegmtl.eeg.checks.check_prediction_epochs`
    (warns when the amplitude is far from the fit's) and the fit's channels and length."""
    ref = getattr(est, "amplitude_reference_", None)
    if ref is None:  # estimators saved before the reference existed: no amplitude check
        ref = {"scale": 1.0, "low": 0.0, "high": float("inf")}
    X = check_prediction_epochs(X, AmplitudeReference(**ref), name=name, **_window(est))
    return check_fit_layout(X, est.n_channels_in_, est.n_times_in_, sfreq=est.sfreq, name=name)


def split_validation(
    est: Any, X: np.ndarray, y_idx: np.ndarray, classes: np.ndarray, X_val: Any, y_val: Any,
    *, seed: int, method: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(X_tr, y_tr, X_va, y_va)`` with integer labels: the given ``X_val, y_val``, else a
    stratified ``est.validation_size`` split of ``X`` seeded by ``seed``, else no validation."""
    from sklearn.model_selection import train_test_split

    if X_val is not None or y_val is not None:
        if X_val is None or y_val is None:
            raise ValueError("give both X_val and y_val, or neither.")
        Xv = check_predict_epochs(est, X_val, "X_val")
        yv = np.asarray(y_val)
        if yv.ndim != 1 or len(yv) != len(Xv):
            raise ValueError(f"y_val must be 1-D with {len(Xv)} labels; got {yv.shape}.")
        unknown = np.setdiff1d(yv, classes)
        if unknown.size:
            raise ValueError(
                f"y_val holds labels {unknown.tolist()} that are not in y {classes.tolist()}."
            )
        return X, y_idx, Xv, np.searchsorted(classes, yv)
    if est.validation_size is not None:
        counts = np.bincount(y_idx)
        n_val = int(np.ceil(float(est.validation_size) * len(y_idx)))
        if n_val < len(classes) or len(y_idx) - n_val < len(classes):
            raise ValueError(
                f"validation_size={est.validation_size} of {len(y_idx)} trials cannot hold "
                f"every class in both parts (class counts {counts.tolist()}); give more "
                "trials, a different validation_size, or X_val/y_val."
            )
        i_tr, i_va = train_test_split(
            np.arange(len(y_idx)), test_size=float(est.validation_size), stratify=y_idx,
            random_state=seed % (2**32),
        )
        return X[i_tr], y_idx[i_tr], X[i_va], y_idx[i_va]
    if uses_blending(method):
        raise ValueError(
            "gradient blending (mtl='blending') needs validation data: keep "
            "validation_size (default 0.2), pass X_val/y_val, or choose another mtl."
        )
    return X, y_idx, None, None


def data_fingerprint(
    est: Any, X: np.ndarray, y: np.ndarray, X_val: Any = None, y_val: Any = None,
    X_unlabeled: Any = None,
) -> dict[str, Any]:
    """What a checkpoint of this fit must agree on: data shape, label set and counts, a
    SHA-256 of the data (float64 bytes) and labels, and a hash of the settings
    (:func:`eegmtl._io.fit_fingerprint`; MTL method included; ``max_epochs``, ``verbose``,
    ``device`` and ``checkpoint_dir`` may change); with ``X_unlabeled``, its digest too."""
    unset = tuple(k for k in _HASHED_IF_SET if getattr(est, k) is None)
    out = {**fit_fingerprint(est, X, y, X_val, y_val, resumable=_RESUMABLE + unset),
           "mtl": repr(est.mtl)}
    if X_unlabeled is not None:
        Xu = np.asarray(X_unlabeled)
        out["unlabeled_sha256"] = data_digest(Xu, np.zeros(len(Xu)))["data_sha256"]
    return out


def checkpoint_seed(
    checkpoint_dir: str | Path | None, random_state: Any, resume: bool, protocol: str,
    fingerprint: Mapping[str, Any] | None = None,
) -> int:
    """The seed; with a ``checkpoint_dir`` it is recorded in ``estimator.json`` together with
    ``fingerprint``, so that ``resume=True`` reuses the seed and refuses other data or settings.

    Raises
    ------
    CheckpointMismatchError
        ``resume=True`` and the recorded fingerprint (or seed) differs; the message names the
        folder, what differs and the fix.
    ValueError
        ``estimator.json`` is empty or truncated (named), or ``resume=True`` without a folder.
    """
    from eegmtl.mtl.checkpoint import CheckpointMismatchError, check_fingerprint

    if resume and checkpoint_dir is None:
        raise ValueError("fit(resume=True) needs checkpoint_dir=<folder>.")
    meta_file = None if checkpoint_dir is None else Path(checkpoint_dir) / "estimator.json"
    if resume and meta_file is not None and meta_file.is_file():
        try:
            meta = read_json(meta_file)
            seed = int(meta["seed"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"cannot resume from {meta_file}: {err} Use a fresh checkpoint_dir, or fit "
                "with resume=False to start over."
            ) from err
        if random_state is not None and seed != seed_from(random_state):
            raise CheckpointMismatchError(
                f"the checkpoint in {meta_file.parent} was written with seed {seed}, but "
                f"random_state={random_state!r}; resume with the same random_state, use a "
                "fresh checkpoint_dir, or fit with resume=False."
            )
        if "fingerprint" not in meta:
            warnings.warn(
                f"{meta_file} has no data fingerprint (written by an older version); resuming "
                "without checking that the data and settings are the same.", stacklevel=3,
            )
        elif fingerprint is not None:
            check_fingerprint(meta["fingerprint"], fingerprint, meta_file)
        return seed
    seed = seed_from(random_state)
    if meta_file is not None:
        meta = {"seed": seed, "protocol": protocol}
        if fingerprint is not None:
            meta["fingerprint"] = dict(fingerprint)
        write_json(meta_file, meta)
    return seed
