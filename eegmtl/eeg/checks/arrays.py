"""Array and sampling-rate checks: rank, dtype, finite values, sampling rate vs trial length."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_epochs_array(
    X: Any,
    *,
    ndim: int | Sequence[int] = 3,
    name: str = "X",
    min_times: int = 2,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Validate an epochs array and return it as a floating-point ndarray.

    Parameters
    ----------
    X : array-like
        Epochs with the time axis last, e.g. ``(n_trials, n_channels, n_times)``.
    ndim : int or sequence of int
        Accepted number(s) of dimensions.
    name : str
        Name used in error messages.
    min_times : int
        Minimum number of time samples.
    dtype : numpy dtype or None
        Returned dtype; default float64 (float16/float32/integer input is converted, so the
        resampler and filters of MNE and SciPy accept it). ``None`` keeps a floating input dtype
        (integers still become float64).

    Raises
    ------
    ValueError
        Wrong rank, too few samples, empty array, non-real dtype, or NaN/Inf values (with their
        count and the first bad trials).
    """
    arr = np.asarray(X)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
        shapes = {3: "(n_trials, n_channels, n_times)",
                  4: "(n_trials, n_bands, n_channels, n_times)",
                  2: "(n_channels, n_times)"}
        want = " or ".join(f"{d}-D {shapes.get(d, '')}".rstrip() for d in allowed)
        raise ValueError(
            f"{name} must be {want}; got a {arr.ndim}-D array of shape {arr.shape}. "
            "Add a trial axis with X[None] for a single trial."
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    if (
        not np.issubdtype(arr.dtype, np.number)
        or np.iscomplexobj(arr)
        or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(
            f"{name} must hold real numbers; got dtype {arr.dtype}. Convert it with "
            f"np.asarray({name}, dtype=float)."
        )
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.shape[-1] < min_times:
        raise ValueError(
            f"{name} has {arr.shape[-1]} time samples (last axis); at least {min_times} are "
            "needed. Is the time axis last?"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        bad_trials = np.unique(np.nonzero(~finite)[0])[:10].tolist()
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} Inf values (first bad trials along axis 0: "
            f"{bad_trials}). Interpolate, zero or drop those samples/trials before this step."
        )
    return arr


def check_sfreq(sfreq: Any, name: str = "sfreq") -> float:
    """Return ``sfreq`` as a positive finite float; ``ValueError`` otherwise."""
    ok = isinstance(sfreq, numbers.Real) and not isinstance(sfreq, bool)
    if not ok or not np.isfinite(sfreq) or float(sfreq) <= 0:
        raise ValueError(f"{name} must be a positive number in Hz; got {sfreq!r}.")
    return float(sfreq)


#: Former private name, kept for callers of :mod:`eegmtl.eeg.preprocessing`.
_check_sfreq = check_sfreq


def check_sfreq_window(
    n_times: int,
    sfreq: float,
    tmin: float,
    tmax: float,
    *,
    epoch_tmin: float = 0.0,
    epoch_tmax: float | None = None,
    name: str = "X",
) -> tuple[int, int]:
    """Check that ``n_times`` samples per trial fit the sampling rate and the time window.

    Parameters
    ----------
    n_times : int
        Samples per trial of the data.
    sfreq : float
        Declared sampling rate in Hz.
    tmin, tmax : float
        Window ``[tmin, tmax)`` in seconds that will be cut from each trial.
    epoch_tmin : float
        Time of the first sample of each trial.
    epoch_tmax : float or None
        Expected end of each trial in seconds (exclusive). ``None``: the trials are expected to
        end where the window ends (``tmax``), as for the BCIC IV 2b export (0-4 s). Then trials
        must hold ``round((epoch_tmax - epoch_tmin) * sfreq)`` samples, give or take one (MNE
        epochs include their last sample). This is what catches a wrong ``sfreq``: 500 Hz data
        declared as 250 Hz has twice the samples; 250 Hz data declared as 128 Hz almost twice.

    Returns
    -------
    (start, stop) : tuple of int
        Sample indices of the window.

    Raises
    ------
    ValueError
        The window lies outside the trial, or the trial length does not fit ``sfreq`` and the
        expected epoch; the message gives the sampling rate that would fit.
    """
    sfreq = check_sfreq(sfreq)
    if tmax <= tmin:
        raise ValueError(f"tmax ({tmax}) must be larger than tmin ({tmin}).")
    end = tmax if epoch_tmax is None else float(epoch_tmax)
    start = int(round((tmin - epoch_tmin) * sfreq))
    stop = int(round((tmax - epoch_tmin) * sfreq))
    expected = int(round((end - epoch_tmin) * sfreq))
    duration = end - epoch_tmin
    if start < 0 or stop > n_times or abs(n_times - expected) > 1:
        implied = n_times / duration if duration > 0 else float("nan")
        raise ValueError(
            f"{name} has {n_times} samples per trial = {n_times / sfreq:g} s at the declared "
            f"sfreq={sfreq:g} Hz, but epochs [{epoch_tmin:g}, {end:g}) s need {expected} samples "
            f"(window [{tmin:g}, {tmax:g}) s = samples {start}-{stop}). If {name} is sampled at "
            f"{implied:g} Hz, declare sfreq={implied:g} (or resample); if the epochs really span "
            "another interval, declare epoch_tmin/epoch_tmax (or crop them to the window)."
        )
    return start, stop
