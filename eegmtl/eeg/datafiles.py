"""Validated reading of EEG data files: a damaged or invalid file raises an error that names it.

Used by :mod:`eegmtl.eeg.datasets` for the BCIC IV 2b export (:func:`read_export_file`) and for
MOABB's continuous BNCI runs (:func:`check_finite_raws`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CorruptFileError", "check_finite_raws", "read_export_file"]

#: Largest plausible absolute value in the export, µV (EEG is tens of µV; 0.1 V is not EEG).
_MAX_ABS_UV = 1e5


class CorruptFileError(ValueError):
    """A data file exists but cannot be read or holds invalid values; the message names it."""


_RESTORE = (
    "Restore the file from the original download (see the README/PROVENANCE of the data "
    "folder) or remove that subject/session from the selection."
)


def read_export_file(
    f: Path, channels: Sequence[str], n_times: int, event_id: Mapping[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """One export file -> ``(data (n, C, n_times) float64 µV, labels (n,) int64)``, validated.

    The file holds ``data`` ``(n_times, C, n)`` in µV and ``label`` ``(n, 1)`` with values of
    ``event_id``.

    Raises
    ------
    CorruptFileError
        The file is not a readable MATLAB file (empty, truncated, bit-flipped header or
        compressed stream, another format), lacks ``data``/``label``, has unexpected shapes or
        labels, or holds NaN/Inf or impossible amplitudes (> 1e5 µV); the message names the file
        and, for bad values, the trial indices.
    """
    import scipy.io

    f = Path(f)
    try:
        mat = scipy.io.loadmat(f)
    except Exception as err:  # scipy/zlib/struct/OSError: whatever a damaged file raises
        size = f.stat().st_size
        raise CorruptFileError(
            f"cannot read {f} ({size} bytes) as a MATLAB .mat file: {type(err).__name__}: "
            f"{err}. The file is empty, truncated, corrupted or not a .mat file. {_RESTORE}"
        ) from err
    if "data" not in mat or "label" not in mat:
        raise CorruptFileError(
            f"{f} has no 'data'/'label' variables (found {_variables(mat)}); is it a 2b "
            f"export file? {_RESTORE}"
        )
    raw, raw_lab = np.asarray(mat["data"]), np.asarray(mat["label"])
    if (
        raw.ndim != 3
        or raw.shape[:2] != (n_times, len(channels))
        or raw_lab.size != raw.shape[2]
        or not np.issubdtype(raw.dtype, np.number)
    ):
        raise CorruptFileError(
            f"{f}: unexpected data {raw.shape} ({raw.dtype}) / label {raw_lab.shape}; expected "
            f"({n_times}, {len(channels)}, n_trials) numbers and (n_trials, 1). {_RESTORE}"
        )
    data = np.transpose(raw, (2, 1, 0)).astype(np.float64)
    lab = raw_lab.ravel()
    if not np.isin(lab, list(event_id.values())).all():
        raise CorruptFileError(
            f"{f}: labels must be in {sorted(event_id.values())}; got {np.unique(lab).tolist()}. "
            f"{_RESTORE}"
        )
    bad = ~np.isfinite(data) | (np.abs(np.nan_to_num(data)) > _MAX_ABS_UV)
    if bad.any():
        trials = np.unique(np.nonzero(bad)[0])
        raise CorruptFileError(
            f"{f}: {int(bad.sum())} NaN, Inf or impossible (> {_MAX_ABS_UV:g} µV) values in "
            f"trials {trials[:20].tolist()}{' ...' if len(trials) > 20 else ''} (0-based file "
            f"order = metadata column 'trial'). {_RESTORE}"
        )
    return data, lab.astype(np.int64)


def check_finite_raws(
    data: Mapping[str, Mapping[str, Any]], what: str, files: Sequence[Path]
) -> None:
    """``CorruptFileError`` naming ``files`` when a run of MOABB's ``{session: {run: Raw}}``
    holds NaN/Inf EEG samples."""
    for session, runs in data.items():
        for run_name, raw in runs.items():
            x = raw.get_data(picks="eeg")
            if not np.isfinite(x).all():
                raise CorruptFileError(
                    f"{what}, session {session}, run {run_name}: "
                    f"{int((~np.isfinite(x)).sum())} NaN/Inf EEG samples (from "
                    f"{[str(f) for f in files]}). Restore the files from the original download."
                )


def _variables(mat: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in mat if not k.startswith("__"))
