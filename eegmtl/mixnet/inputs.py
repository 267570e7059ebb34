"""Input handling of :class:`~eegmtl.mixnet.classifier.MixNetClassifier`: epochs and window
checks, the validation split, and the seed recorded with a checkpoint for ``resume=True``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eegmtl._io import read_json, write_json
from eegmtl.mixnet.config import _VOLT_STD_THRESHOLD, seed_from, uses_blending

__all__ = ["check_epochs", "check_predict_epochs", "checkpoint_seed", "split_validation"]


def check_epochs(est: Any, X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a float64 epochs array whose trials hold the estimator's time window."""
    from eegmtl.eeg.preprocessing import check_epochs_array

    sfreq = est.sfreq
    if not (isinstance(sfreq, numbers.Real) and sfreq > 0):
        raise ValueError(f"sfreq must be a positive number in Hz; got {sfreq!r}.")
    X = check_epochs_array(X, ndim=3, name=name)
    start = int(round((est.tmin - est.epoch_tmin) * sfreq))
    stop = int(round((est.tmax - est.epoch_tmin) * sfreq))
    if start < 0 or stop > X.shape[-1]:
        raise ValueError(
            f"{name} has {X.shape[-1]} samples per trial = {X.shape[-1] / sfreq:g} s at "
            f"the declared sfreq={sfreq:g} Hz, but the window [{est.tmin:g}, "
            f"{est.tmax:g}) s (epoch starting at {est.epoch_tmin:g} s) needs samples "
            f"{start}-{stop}. If {name} is sampled at another rate, set sfreq to it (e.g. "
            f"MixNetClassifier(sfreq={X.shape[-1] / (est.tmax - est.epoch_tmin):g})); "
            "otherwise adjust tmin/tmax/epoch_tmin or pass longer epochs."
        )
    return X


def check_predict_epochs(est: Any, X: Any) -> np.ndarray:
    """Prediction epochs: the fit's channels, length and unit."""
    X = check_epochs(est, X)
    if X.shape[1] != est.n_channels_in_:
        raise ValueError(
            f"X has {X.shape[1]} channels but the estimator was fitted on "
            f"{est.n_channels_in_}; use the same channels in the same order."
        )
    if X.shape[2] != est.n_times_in_:
        raise ValueError(
            f"X has {X.shape[2]} samples per trial but fit saw {est.n_times_in_} (at "
            f"sfreq={est.sfreq:g} Hz). A different length usually means a different "
            "sampling rate or epoch window: resample/crop the data to the fit's layout."
        )
    if isinstance(est.input_scale, str) and est.input_scale == "auto":
        looks_volts = float(np.std(X)) < _VOLT_STD_THRESHOLD
        if looks_volts != (est.scale_ != 1.0):
            fit_u, now_u = ("V", "µV") if est.scale_ != 1.0 else ("µV", "V")
            raise ValueError(
                f"the training data looked like {fit_u} but this data looks like {now_u} "
                f"(std {float(np.std(X)):.3g}); pass both in the same unit, or fix "
                "input_scale explicitly ('uV', 'V' or a factor)."
            )
    return X


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
        Xv = check_epochs(est, X_val, "X_val")
        if Xv.shape[1:] != X.shape[1:]:
            raise ValueError(
                f"X_val trials have shape {Xv.shape[1:]} but X trials {X.shape[1:]}; "
                "use the same channels, sampling rate and window."
            )
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


def checkpoint_seed(
    checkpoint_dir: str | Path | None, random_state: Any, resume: bool, protocol: str
) -> int:
    """The seed; with a ``checkpoint_dir`` it is recorded so that ``resume=True`` reuses it."""
    if resume and checkpoint_dir is None:
        raise ValueError("fit(resume=True) needs checkpoint_dir=<folder>.")
    meta_path = None if checkpoint_dir is None else Path(checkpoint_dir)
    meta_file = None if meta_path is None else meta_path / "estimator.json"
    if resume and meta_file is not None and meta_file.is_file():
        meta = read_json(meta_file)
        if random_state is not None and meta["seed"] != seed_from(random_state):
            raise ValueError(
                f"checkpoint in {meta_path} was written with seed {meta['seed']}, but "
                f"random_state={random_state!r}; resume with the same random_state."
            )
        return int(meta["seed"])
    seed = seed_from(random_state)
    if meta_file is not None:
        write_json(meta_file, {"seed": seed, "protocol": protocol})
    return seed
