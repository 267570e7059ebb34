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
    units: str | None = "auto",
    max_classes: int | None = None,
    name: str = "X",
    **window: float | None,
) -> tuple[np.ndarray, np.ndarray, str | None, AmplitudeReference]:
    """Validate training epochs and labels; return what prediction-time checks need.

    ``window``: the keyword arguments of :func:`check_sfreq_window` (``sfreq``, ``tmin``,
    ``tmax`` and optionally ``epoch_tmin``, ``epoch_tmax``).

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
    check_sfreq_window(X.shape[-1], name=name, **window)  # type: ignore[arg-type]
    y = check_labels(y, n_trials=X.shape[0], max_classes=max_classes)
    unit = None if units is None else check_units(X, units, name=name)
    find_outlier_trials(X, name=name)
    return X, y, unit, AmplitudeReference.fit(X, name=name)


def check_prediction_epochs(
    X: Any, reference: AmplitudeReference, *, name: str = "X", **window: float | None
) -> np.ndarray:
    """Validate prediction epochs: float64, finite, ``sfreq`` fits, amplitude like at fit.

    ``window``: as for :func:`check_training_epochs`.

    Warns (:class:`AmplitudeWarning`, with the ratio) when the amplitude is far from the one
    stored in ``reference`` at fit, or when trials are flat; returns ``X`` as float64.
    """
    X = check_epochs_array(X, ndim=3, name=name)
    check_sfreq_window(X.shape[-1], name=name, **window)  # type: ignore[arg-type]
    reference.check_scale(X, name=name)
    return X


def check_fit_layout(
    X: np.ndarray, n_channels: int | None, n_times: int | None, *, sfreq: float,
    name: str = "X",
) -> np.ndarray:
    """``ValueError`` unless ``X`` has the ``n_channels`` channels and ``n_times`` samples per
    trial seen at fit (``None``: not checked, e.g. an estimator saved before they were
    stored); returns ``X``."""
    if n_channels is not None and X.shape[1] != n_channels:
        raise ValueError(
            f"{name} has {X.shape[1]} channels but the estimator was fitted on "
            f"{n_channels}; use the same channels in the same order."
        )
    if n_times is not None and X.shape[2] != n_times:
        raise ValueError(
            f"{name} has {X.shape[2]} samples per trial but fit saw {n_times} (at "
            f"sfreq={sfreq:g} Hz). A different length usually means a different "
            "sampling rate or epoch window: resample/crop the data to the fit's layout."
        )
    return X
