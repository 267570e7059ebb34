"""Input checks for EEG arrays, labels and settings: the one place where bad input is caught.

Every function either returns the validated value or raises (or warns) with a message that names
the cause and the fix. The checks are cheap (one pass over the array) and free of state, except
:class:`AmplitudeReference`, which remembers the amplitude seen at fit.

- :func:`check_epochs_array` -- rank, size, real dtype, finite values; float16/float32 (and
  integer) epochs are converted to float64, so MNE and SciPy never see a dtype they reject.
- :func:`check_sfreq`, :func:`check_sfreq_window` -- the sampling rate is a positive number and
  fits the number of samples per trial.
- :func:`check_units`, :func:`infer_units`, :func:`find_flat_trials` -- V / mV / µV from robust
  per-trial amplitudes; flat (constant) trials are reported as flat.
- :class:`AmplitudeReference` -- amplitude seen at fit; ``check_scale`` warns at prediction when
  data is far smaller or larger (a gain or unit change).
- :func:`find_outlier_trials` -- artefact trials by a robust z-score of log-variance.
- :func:`check_labels`, :func:`check_subjects` -- labels without missing values and with at least
  two classes; subject numbers that are integers.

Amplitude statistic
-------------------
The amplitude of a trial is its RMS around each channel's mean,
``a_i = sqrt(mean_{c,t} (x_ict - mean_t x_ict)^2)``; the amplitude of a data set is the median of
``a_i`` over its non-flat trials, so a few artefact or flat trials do not move it. EEG has an
amplitude of about 1-100 µV (the band-passed BCIC IV 2b export: about 2 µV), hence the unit bands
of :func:`infer_units`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "OUTLIER_Z",
    "UNIT_TO_UV",
    "AmplitudeReference",
    "AmplitudeWarning",
    "OutlierTrialWarning",
    "check_epochs_array",
    "check_labels",
    "check_sfreq",
    "check_sfreq_window",
    "check_subjects",
    "check_units",
    "find_flat_trials",
    "find_outlier_trials",
    "infer_units",
    "trial_amplitudes",
]

#: Factor that converts each unit to microvolts.
UNIT_TO_UV: dict[str, float] = {"V": 1e6, "mV": 1e3, "uV": 1.0}
#: Unit bands of :func:`infer_units`: data-set amplitude below 3e-4 -> volts (EEG up to 300 µV),
#: below 0.3 -> millivolts (0.3-300 µV), else microvolts.
_VOLT_MAX, _MILLIVOLT_MAX = 3e-4, 0.3
#: Above this amplitude (in the declared unit converted to µV) the data is not plausible EEG.
_MAX_PLAUSIBLE_UV = 1e4
#: Robust z-score of log-variance above which :func:`find_outlier_trials` flags a trial.
OUTLIER_Z = 8.0
#: A trial whose amplitude is below this fraction of the data set's is counted as flat.
_FLAT_REL = 1e-9


class AmplitudeWarning(UserWarning):
    """Amplitudes far from those seen at fit (gain or unit change), or flat trials."""


class OutlierTrialWarning(UserWarning):
    """Trials whose variance is far outside the others' (artefacts)."""


# --------------------------------------------------------------------------- arrays
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


# --------------------------------------------------------------------------- amplitude
def trial_amplitudes(X: Any, *, name: str = "X") -> np.ndarray:
    """Per-trial RMS around each channel's mean (over every axis but the first), in X's unit."""
    X = check_epochs_array(X, ndim=(2, 3, 4), name=name)
    if X.ndim == 2:
        X = X[None]
    flat = X.reshape(X.shape[0], -1, X.shape[-1])
    return np.sqrt(np.mean(np.var(flat, axis=-1), axis=-1))


def find_flat_trials(X: Any, *, name: str = "X") -> np.ndarray:
    """Indices of flat trials: constant in time on every channel (e.g. all zero), or with an
    amplitude below ``1e-9`` times the median of the others (a disconnected amplifier)."""
    amp = trial_amplitudes(X, name=name)
    nonzero = amp[amp > 0]
    ref = float(np.median(nonzero)) if nonzero.size else 0.0
    return np.flatnonzero(amp <= _FLAT_REL * ref)


def _robust_amplitude(amp: np.ndarray, name: str) -> tuple[float, np.ndarray]:
    nonzero = amp[amp > 0]
    if nonzero.size == 0:
        raise ValueError(
            f"every trial of {name} is flat (constant in time, e.g. all zeros); there is no "
            "signal. Check the recording, the channel selection and the loading code."
        )
    ref = float(np.median(nonzero))
    flat = np.flatnonzero(amp <= _FLAT_REL * ref)
    return float(np.median(np.delete(amp, flat))), flat


def _flat_message(flat: np.ndarray, name: str) -> str:
    return (
        f"{name} has {len(flat)} flat trial(s) (constant in time, e.g. all zeros) at indices "
        f"{flat[:20].tolist()}{' ...' if len(flat) > 20 else ''}: a disconnected or clipped "
        "recording carries no EEG. Drop these trials."
    )


def infer_units(X: Any, *, name: str = "X") -> str:
    """Guess the unit of EEG epochs from their robust amplitude: ``"V"``, ``"mV"`` or ``"uV"``.

    The median per-trial amplitude (module docstring) below 3e-4 means volts (EEG of up to
    300 µV), below 0.3 millivolts (0.3-300 µV), else microvolts. Flat trials are left out.

    Raises
    ------
    ValueError
        Every trial is flat (no unit can be told; the message says so).
    """
    amp, _ = _robust_amplitude(trial_amplitudes(X, name=name), name)
    if amp < _VOLT_MAX:
        return "V"
    if amp < _MILLIVOLT_MAX:
        return "mV"
    return "uV"


def _normalise_unit(units: str) -> str:
    key = str(units).strip().replace("µ", "u").replace("μ", "u")
    table = {"v": "V", "mv": "mV", "uv": "uV", "auto": "auto"}
    if key.lower() not in table:
        raise ValueError(f"units must be 'V', 'mV', 'uV' (µV) or 'auto'; got {units!r}.")
    return table[key.lower()]


def check_units(X: Any, units: str = "auto", *, name: str = "X") -> str:
    """Check that the declared unit of EEG epochs fits their amplitude; return the unit.

    Parameters
    ----------
    X : array-like, shape (n_trials, ..., n_times)
    units : {"auto", "V", "mV", "uV"}
        Declared unit (``"µV"`` is accepted for ``"uV"``). ``"auto"`` returns
        :func:`infer_units`.
    name : str
        Name used in messages.

    Returns
    -------
    str
        ``"V"``, ``"mV"`` or ``"uV"``; multiply by ``UNIT_TO_UV[unit]`` for microvolts.

    Raises
    ------
    ValueError
        The amplitude belongs to another unit (e.g. volts declared as µV, or millivolts), with
        the factor that fixes it; the amplitude is implausible for EEG in any unit; or every
        trial is flat.

    Warns
    -----
    AmplitudeWarning
        Some trials are flat (their indices are given); the unit is judged on the others.
    """
    declared = _normalise_unit(units)
    amp, flat = _robust_amplitude(trial_amplitudes(X, name=name), name)
    if len(flat):
        warnings.warn(_flat_message(flat, name), AmplitudeWarning, stacklevel=2)
    guess = "V" if amp < _VOLT_MAX else "mV" if amp < _MILLIVOLT_MAX else "uV"
    unit = guess if declared == "auto" else declared
    amp_uv = amp * UNIT_TO_UV[unit]
    if amp_uv > _MAX_PLAUSIBLE_UV:
        raise ValueError(
            f"{name} has a median trial amplitude (RMS) of {amp:.3g} {unit} = {amp_uv:.3g} µV, "
            "far above EEG (1-100 µV). Is it in nanovolts or raw ADC counts? Convert it to µV "
            "(or V) first, or drop artefact channels."
        )
    if declared != "auto" and guess != declared:
        factor = UNIT_TO_UV[guess] / UNIT_TO_UV[declared]
        raise ValueError(
            f"{name} was declared in {declared} but its median trial amplitude (RMS) is "
            f"{amp:.3g}, which looks like {guess} (EEG: about 1-100 µV = 1e-6-1e-4 V). Declare "
            f"units={guess!r}, or multiply {name} by {factor:g} to get {declared}."
        )
    return unit


@dataclass(frozen=True)
class AmplitudeReference:
    """The robust amplitude of the data seen at fit, to catch gain or unit changes later.

    Create it with :meth:`fit` on the training epochs; call :meth:`check_scale` on prediction
    epochs. Plain data (``dataclasses.asdict`` gives a JSON-able dict).

    Parameters
    ----------
    scale : float
        Median per-trial amplitude (module docstring) of the fit data, in its unit.
    low, high : float
        :meth:`check_scale` warns when the ratio of amplitudes is below ``low`` or above
        ``high``; default 0.1 and 10 (an order of magnitude: sessions of one subject differ
        by well under 3x).
    """

    scale: float
    low: float = 0.1
    high: float = 10.0

    @classmethod
    def fit(
        cls, X: Any, *, low: float = 0.1, high: float = 10.0, name: str = "X"
    ) -> AmplitudeReference:
        """Robust amplitude of ``X`` (flat trials left out). ``ValueError`` if all are flat."""
        if not 0 < low < 1 < high:
            raise ValueError(f"need 0 < low < 1 < high; got low={low!r}, high={high!r}.")
        amp, _ = _robust_amplitude(trial_amplitudes(X, name=name), name)
        return cls(scale=amp, low=float(low), high=float(high))

    def check_scale(self, X: Any, *, name: str = "X") -> float:
        """Ratio of the amplitude of ``X`` to the fit's; warn when outside ``[low, high]``.

        Returns
        -------
        float
            ``amplitude(X) / scale`` (0 when every trial of ``X`` is flat).

        Warns
        -----
        AmplitudeWarning
            The ratio is outside ``[low, high]`` (a gain or unit change: predictions are then
            unreliable), or some trials are flat (indices given).
        """
        amp_trials = trial_amplitudes(X, name=name)
        if not np.any(amp_trials > 0):
            warnings.warn(
                _flat_message(np.arange(len(amp_trials)), name) + " Predictions for them are "
                "meaningless.", AmplitudeWarning, stacklevel=2,
            )
            return 0.0
        amp, flat = _robust_amplitude(amp_trials, name)
        if len(flat):
            warnings.warn(_flat_message(flat, name), AmplitudeWarning, stacklevel=2)
        ratio = amp / self.scale
        if not self.low <= ratio <= self.high:
            warnings.warn(
                f"{name} has {ratio:.3g}x the amplitude seen at fit (median trial RMS {amp:.3g} "
                f"vs {self.scale:.3g}); the model's features are not scale-free, so predictions "
                "are unreliable. Check the unit (V vs µV vs mV) and the amplifier gain, and "
                "pass data in the unit used at fit.",
                AmplitudeWarning, stacklevel=2,
            )
        return float(ratio)


def find_outlier_trials(
    X: Any, *, threshold: float = OUTLIER_Z, name: str = "X", warn: bool = True
) -> np.ndarray:
    """Trials whose log-variance is far from the others': artefacts, or flat trials.

    Per channel (and band, for 4-D input) the log-variance over time of every trial gets a robust
    z-score ``z = (l - median(l)) / (1.4826 * MAD(l))`` over trials; a trial is an outlier when
    ``max |z| > threshold`` over its channels. The default 8 leaves the BCIC IV 2b export free of
    flags (its sessions reach ``|z|`` of about 6) and catches a trial with 10x the amplitude
    (``|z|`` about 15 there). Needs at least 5 trials (else nothing is flagged).

    Returns
    -------
    ndarray of int
        Indices of the outlier trials in ``X`` (the caller's array), sorted.

    Warns
    -----
    OutlierTrialWarning
        When ``warn`` and there are outliers: their indices and how to handle them.
    """
    X = check_epochs_array(X, ndim=(3, 4), name=name)
    if X.shape[0] < 5:
        return np.zeros(0, dtype=int)
    var = np.var(X.reshape(X.shape[0], -1, X.shape[-1]), axis=-1)
    pos = var[var > 0]
    floor = float(pos.min()) * 1e-3 if pos.size else 1.0
    lv = np.log(np.maximum(var, floor))
    med = np.median(lv, axis=0)
    mad = 1.4826 * np.median(np.abs(lv - med), axis=0)
    z = np.abs(lv - med) / np.maximum(mad, 1e-3)
    score = z.max(axis=1)
    out = np.flatnonzero(score > threshold)
    if warn and len(out):
        ratio = np.exp((lv[out] - med).max(axis=1) / 2)
        shown = ", ".join(f"{i} ({r:.3g}x)" for i, r in zip(out[:20], ratio[:20]))
        warnings.warn(
            f"{name} has {len(out)} outlier trial(s) by variance (robust z > {threshold:g}); "
            f"index (amplitude relative to the median trial): {shown}"
            f"{' ...' if len(out) > 20 else ''}. Artefacts like these can dominate the fit: "
            "inspect them and drop or clean them (e.g. X = np.delete(X, idx, axis=0)).",
            OutlierTrialWarning, stacklevel=2,
        )
    return out


# --------------------------------------------------------------------------- labels, subjects
_MISSING_STRINGS = {"nan", "none", "null", "na", "<na>", ""}


def check_labels(
    y: Any,
    *,
    n_trials: int | None = None,
    min_classes: int = 2,
    max_classes: int | None = None,
    name: str = "y",
) -> np.ndarray:
    """Validate class labels: 1-D, one per trial, no missing values, enough classes.

    Parameters
    ----------
    y : array-like, shape (n_trials,)
    n_trials : int, optional
        Number of trials of ``X``; the lengths must match.
    min_classes, max_classes : int
        Allowed number of distinct labels (``max_classes=None``: no upper bound).

    Returns
    -------
    ndarray
        ``np.asarray(y)``.

    Raises
    ------
    ValueError
        Missing labels (NaN, None, pandas NA, or the strings "nan"/"None" that ``np.asarray``
        makes of them when mixed with strings), with their indices; wrong shape or length; too
        few or too many classes.
    """
    obj = np.asarray(y, dtype=object)
    if obj.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per trial); got shape {obj.shape}.")
    if n_trials is not None and len(obj) != n_trials:
        raise ValueError(f"X has {n_trials} trials but {name} has {len(obj)} labels.")
    import pandas as pd

    missing = np.asarray(pd.isna(obj), dtype=bool)
    missing |= np.array(
        [isinstance(v, str) and v.strip().lower() in _MISSING_STRINGS for v in obj], dtype=bool
    )
    if missing.any():
        idx = np.flatnonzero(missing)
        raise ValueError(
            f"{name} has {len(idx)} missing label(s) (NaN/None) at indices "
            f"{idx[:20].tolist()}{' ...' if len(idx) > 20 else ''}. Drop those trials "
            f"(X[keep], {name}[keep]) or fill in their labels; a missing label is not a class."
        )
    arr = np.asarray(y)
    classes = np.unique(arr)
    if len(classes) < min_classes:
        raise ValueError(
            f"{name} has {len(classes)} class(es) {classes.tolist()}; at least {min_classes} "
            "are needed. Check the labels and the split: every training set must contain "
            "trials of each class."
        )
    if max_classes is not None and len(classes) > max_classes:
        raise ValueError(
            f"{name} has {len(classes)} classes {classes.tolist()}; at most {max_classes} are "
            "supported here. Select the classes to use first."
        )
    return arr


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must hold integers; got {value!r} ({type(value).__name__}).")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not np.isfinite(value) or float(value) != int(value):
        raise ValueError(f"{name} must hold integers; got {value!r}, which is not integral.")
    return int(value)


def check_subjects(
    subjects: Any, valid: Iterable[int] | None = None, *, name: str = "subjects"
) -> list[int]:
    """Subject numbers as a sorted list of unique ints.

    Accepts an int, an integral float (``4.0`` -> ``[4]``), or an iterable of those; ``None``
    gives ``sorted(valid)``.

    Raises
    ------
    ValueError
        Non-integral or non-numeric entries, an empty selection, or subjects outside ``valid``
        (the message lists the valid ones).
    """
    valid_set = None if valid is None else sorted(int(v) for v in valid)
    if subjects is None:
        if valid_set is None:
            raise ValueError(f"{name}=None needs a list of valid subjects.")
        return list(valid_set)
    if isinstance(subjects, (str, bytes)) or not isinstance(subjects, Iterable):
        subjects = [subjects]
    out = [_as_int(s, name) for s in subjects]
    if not out:
        raise ValueError(f"{name} is empty; give at least one subject (or None for all).")
    if valid_set is not None:
        unknown = sorted({s for s in out if s not in valid_set})
        if unknown:
            contiguous = valid_set == list(range(valid_set[0], valid_set[-1] + 1))
            allowed = f"the integers {valid_set[0]}-{valid_set[-1]}" if contiguous else valid_set
            raise ValueError(f"unknown {name} {unknown}; valid subjects are {allowed}.")
    return sorted(set(out))
