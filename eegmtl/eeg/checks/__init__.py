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
- :func:`check_training_epochs`, :func:`check_prediction_epochs` -- all of the above that a
  classifier needs, as one call at fit and one at predict; :func:`check_fit_layout` -- the
  fit's channels and trial length at predict.

Implemented in :mod:`~eegmtl.eeg.checks.arrays`, :mod:`~eegmtl.eeg.checks.amplitude` and
:mod:`~eegmtl.eeg.checks.labels`, bundled in :mod:`~eegmtl.eeg.checks.epochs`; import everything
from here.
"""

from eegmtl.eeg.checks.amplitude import (
    OUTLIER_Z,
    UNIT_TO_UV,
    AmplitudeReference,
    AmplitudeWarning,
    OutlierTrialWarning,
    check_units,
    find_flat_trials,
    find_outlier_trials,
    infer_units,
    trial_amplitudes,
)
from eegmtl.eeg.checks.arrays import (
    _check_sfreq,
    check_epochs_array,
    check_sfreq,
    check_sfreq_window,
)
from eegmtl.eeg.checks.epochs import (
    check_fit_layout,
    check_prediction_epochs,
    check_training_epochs,
)
from eegmtl.eeg.checks.labels import check_labels, check_subjects

__all__ = [
    "OUTLIER_Z",
    "UNIT_TO_UV",
    "AmplitudeReference",
    "AmplitudeWarning",
    "OutlierTrialWarning",
    "_check_sfreq",
    "check_epochs_array",
    "check_fit_layout",
    "check_labels",
    "check_prediction_epochs",
    "check_sfreq",
    "check_sfreq_window",
    "check_subjects",
    "check_training_epochs",
    "check_units",
    "find_flat_trials",
    "find_outlier_trials",
    "infer_units",
    "trial_amplitudes",
]
