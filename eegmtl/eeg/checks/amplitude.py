"""Amplitude checks: units (V / mV / µV), flat trials, gain changes and outlier trials.

The amplitude of a trial is its RMS around each channel's mean,
``a_i = sqrt(mean_{c,t} (x_ict - mean_t x_ict)^2)``; the amplitude of a data set is the median of
``a_i`` over its non-flat trials, so a few artefact or flat trials do not move it. EEG has an
amplitude of about 1-100 µV (the band-passed BCIC IV 2b export: about 2 µV), hence the unit bands
of :func:`infer_units`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from eegmtl.eeg.checks.arrays import check_epochs_array

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
    amp_uv = amp * UNIT_TO_UV[guess]
    if amp_uv > _MAX_PLAUSIBLE_UV:
        raise ValueError(
            f"{name} has a median trial amplitude (RMS) of {amp:.3g}: even read as µV that is "
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
    return guess


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
    ``max |z| > threshold`` over its channels. With the default 8, one of the 3000 trials of the
    BCIC IV 2b export is flagged (subject 7, one channel at 4.5x the median amplitude; single
    sessions otherwise reach ``|z|`` of about 6), and a trial at 10x the amplitude is caught.
    Needs at least 5 trials (else nothing is flagged).

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
