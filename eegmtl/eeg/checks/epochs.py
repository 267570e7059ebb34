"""The checks an EEG classifier runs at fit and at predict, each as one call."""

from __future__ import annotations

from typing import Any

import numpy as np

from eegmtl.eeg.checks.amplitude import AmplitudeReference, check_units, find_outlier_trials
from eegmtl.eeg.checks.arrays import check_epochs_array, check_sfreq_window
from eegmtl.eeg.checks.labels import check_labels


def check_training_epochs(
    X: Any,
    y: Any,
    *,
    sfreq: float,
    tmin: float,
    tmax: float,
    epoch_tmin: float = 0.0,
    epoch_tmax: float | None = None,
    units: str | None = "auto",
    max_classes: int | None = None,
    name: str = "X",
) -> tuple[np.ndarray, np.ndarray, str | None, AmplitudeReference]:
    """Validate training epochs and labels; return what prediction-time checks need.

    In order: :func:`check_epochs_array` (float64, finite, 3-D), :func:`check_sfreq_window`
    (``sfreq`` fits the trial length), :func:`check_labels` (no missing labels, >= 2 classes),
    :func:`check_units` (skipped when ``units`` is None, e.g. for a user-given scale factor),
    :func:`find_outlier_trials` (warns with their indices) and :meth:`AmplitudeReference.fit`.

    Returns
    -------
    X : ndarray, float64
    y : ndarray
    unit : {"V", "mV", "uV"} or None
        Unit of ``X``; multiply by ``UNIT_TO_UV[unit]`` for microvolts.
    reference : AmplitudeReference
        Store it with the fitted model and pass it to :func:`check_prediction_epochs`.
    """
    X = check_epochs_array(X, ndim=3, name=name)
    check_sfreq_window(X.shape[-1], sfreq, tmin, tmax, epoch_tmin=epoch_tmin,
                       epoch_tmax=epoch_tmax, name=name)
    y = check_labels(y, n_trials=X.shape[0], max_classes=max_classes)
    unit = None if units is None else check_units(X, units, name=name)
    find_outlier_trials(X, name=name)
    return X, y, unit, AmplitudeReference.fit(X, name=name)


def check_prediction_epochs(
    X: Any,
    reference: AmplitudeReference,
    *,
    sfreq: float,
    tmin: float,
    tmax: float,
    epoch_tmin: float = 0.0,
    epoch_tmax: float | None = None,
    name: str = "X",
) -> np.ndarray:
    """Validate prediction epochs: float64, finite, ``sfreq`` fits, amplitude like at fit.

    Warns (:class:`AmplitudeWarning`, with the ratio) when the amplitude is far from the one
    stored in ``reference`` at fit, or when trials are flat; returns ``X`` as float64.
    """
    X = check_epochs_array(X, ndim=3, name=name)
    check_sfreq_window(X.shape[-1], sfreq, tmin, tmax, epoch_tmin=epoch_tmin,
                       epoch_tmax=epoch_tmax, name=name)
    reference.check_scale(X, name=name)
    return X
