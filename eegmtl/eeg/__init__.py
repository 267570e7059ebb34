"""EEG side of eegmtl: BCIC IV 2b through MOABB/MNE, MNE preprocessing, filter-bank CSP.

Modules (imported on first use, so ``import eegmtl.eeg`` does not pull in MOABB):

- :mod:`eegmtl.eeg.datasets` -- :class:`BCI2bExport` (MOABB dataset of the local export),
  :func:`load_bci2b` (export or MOABB ``BNCI2014_004``); built on :mod:`eegmtl.eeg.bci2b_meta`
  (subjects, sessions, channels, events), :mod:`eegmtl.eeg.bci2b_files` (export files,
  :func:`read_export` fast reader) and :mod:`eegmtl.eeg.bnci` (original BNCI files via MOABB).
- :mod:`eegmtl.eeg.preprocessing` -- MixNet's recipe (0-4 s, 100 Hz, 9-band Butterworth bank)
  as functions and scikit-learn transformers; the Butterworth bank in :mod:`eegmtl.eeg.filters`.
- :mod:`eegmtl.eeg.filterbank` -- :class:`FilterBankCSP` (MixNet's CSP conventions).
- :mod:`eegmtl.eeg.baselines` -- CSP+LDA, FBCSP+SVM, TS+SVM, EEGNet, ShallowFBCSPNet factories.
- :mod:`eegmtl.eeg.deep_baselines` -- ATCNet, EEGConformer, EEGTCNet, TCFormer, CTNet, IFNet,
  FBCNet with their papers' recipes (:class:`BraindecodeClassifier`); several fits of one
  recipe trained at once as one stacked network in :mod:`eegmtl.eeg.batched_fit`
  (:func:`fit_batched`).
- :mod:`eegmtl.eeg.augmentation` -- training-only augmentation (braindecode transforms).
- :mod:`eegmtl.eeg.alignment` -- Euclidean alignment by recording (MOABB).
- :mod:`eegmtl.eeg.aligned_classifier` -- :class:`AlignedClassifier`, any classifier behind
  Euclidean alignment, reading the target data of MOABB's cross-subject modes.
- :mod:`eegmtl.eeg.checks` -- every input check (dtypes, units, amplitude at predict, outlier
  trials, sampling rate vs trial length, labels, subjects).
- :mod:`eegmtl.eeg.datafiles` -- validated reading of data files (:class:`CorruptFileError`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BCI2bExport": "datasets",
    "load_bci2b": "datasets",
    "read_export": "datasets",
    "FilterBankCSP": "filterbank",
    "FilterBank": "preprocessing",
    "Resampler": "preprocessing",
    "TimeWindow": "preprocessing",
    "MIXNET_BANDS": "preprocessing",
    "filter_bank": "preprocessing",
    "parse_bands": "filters",
    "resample": "preprocessing",
    "select_window": "preprocessing",
    "mixnet_preprocess": "preprocessing",
    "BraindecodeClassifier": "deep_baselines",
    "fit_batched": "batched_fit",
    "RecordingAlignment": "alignment",
    "align_recordings": "alignment",
    "AlignedClassifier": "aligned_classifier",
}
_MODULES = {"datasets", "preprocessing", "filterbank", "baselines", "deep_baselines", "batched_fit",
            "augmentation", "alignment", "aligned_classifier", "checks", "datafiles"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"eegmtl.eeg.{_EXPORTS[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"eegmtl.eeg.{name}")
    raise AttributeError(f"module 'eegmtl.eeg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _MODULES)
