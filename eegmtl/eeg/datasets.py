"""BCI Competition IV 2b (BNCI 2014-004): the local epoched export and MOABB's ``BNCI2014_004``.

Two sources, one loading API (:func:`load_bci2b`):

``source="export"`` (default)
    The local epoched export ``<dir>/epochs_mat/BSSNNX.mat`` (45 files, SS = subject 01-09,
    NN = session 01-05, X = ``T`` for sessions 1-3 and ``E`` for 4-5). ``<dir>`` is the ``path``
    argument, else ``$EEGMTL_BCI2B_DIR``, else ``$EEGMTL_DATA_DIR/bcic_iv_2b``
    (:func:`eegmtl.config.resolve_data_dir`). What this export is, and is not:

    - 120 trials per session (60 left / 60 right), epoched **0-4 s after the cue** (1000 samples
      at 250 Hz), channels C3, Cz, C4 (bipolar EEG; no EOG), microvolts in the files;
    - already band-passed (zero-phase Chebyshev II, about **6.7-25 Hz** at -3 dB): power below
      ~5 Hz and above ~30 Hz is gone and cannot be recovered;
    - the trial order inside a file is **shuffled** (no time order, no run index), and there is
      **no signal between trials** (no fixation period, no inter-trial interval).

    :class:`BCI2bExport` wraps it as a MOABB dataset so MOABB paradigms and evaluations accept it.
    A fast direct reader (:func:`read_export`, ``scipy.io.loadmat``) serves :func:`load_bci2b`.

``source="bnci"``
    MOABB's :class:`moabb.datasets.BNCI2014_004` on the original BNCI ``.mat`` files
    (continuous runs, 250 Hz, 0.5-100 Hz, 120-160 trials per session), downloaded when online into
    ``<root>/MNE-bnci-data/~bci/database/004-2014/B01T.mat`` where ``<root>`` is the ``path``
    argument, else ``$MNE_DATASETS_BNCI_PATH``, else ``$MNE_DATA``, else ``~/mne_data``. The NEMAR
    mirror is skipped (``MOABB_DOWNLOAD_PROVIDER=upstream``) because offline it costs ~40 s per
    subject. Offline with files missing, :class:`eegmtl.config.DataNotFoundError` names the
    expected file.

Sessions follow MOABB's names for BNCI2014_004: ``"0train", "1train", "2train", "3test",
"4test"`` (= competition sessions 1-5 = files 01T, 02T, 03T, 04E, 05E), each with one run
``"0"``. The competition split trains on sessions 1-3 and tests on 4-5; labels of 4-5 are
included in both sources.

Units: volts inside MNE objects (MOABB/MNE convention), and by default in arrays returned by
:func:`load_bci2b` (``units="V"``); ``units="uV"`` returns microvolts (MixNet works in µV).
Note that MOABB *paradigms* multiply by the dataset's ``unit_factor`` (1e6), so
``LeftRightImagery().get_data(BCI2bExport(), ...)`` returns microvolts, as for every MOABB
dataset.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from moabb.datasets.base import BaseDataset

from eegmtl.config import DataNotFoundError
from eegmtl.eeg.bci2b_files import (  # re-exported
    _EXPORT_CONTENT,
    export_file,
    export_root,
    parse_sessions,
    parse_subjects,
    read_export,
)
from eegmtl.eeg.bci2b_meta import (  # re-exported
    CHANNELS,
    EVENT_ID,
    N_TIMES_EXPORT,
    SESSIONS,
    SFREQ,
    SUBJECTS,
)
from eegmtl.eeg.bnci import bnci_epochs, bnci_expected_file
from eegmtl.eeg.datafiles import CorruptFileError

__all__ = [
    "CHANNELS",
    "EVENT_ID",
    "SESSIONS",
    "SFREQ",
    "SUBJECTS",
    "BCI2bExport",
    "CorruptFileError",
    "bnci_expected_file",
    "export_file",
    "load_bci2b",
    "parse_sessions",
    "parse_subjects",
    "read_export",
]

# --------------------------------------------------------------------------- MOABB dataset
def _montage() -> Any:
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in ("colin27_1020", "standard_1020"):
            with contextlib.suppress(ValueError):
                return mne.channels.make_standard_montage(name)
    return None  # pragma: no cover


class BCI2bExport(BaseDataset):
    """BCI Competition IV 2b, local epoched export, as a MOABB dataset.

    Each session's 120 epochs (0-4 s after the cue, already band-passed 6.7-25 Hz, trial order
    shuffled) are **concatenated back to back** into one continuous :class:`mne.io.RawArray`
    (C3, Cz, C4; 250 Hz; volts) with an annotation ``left_hand``/``right_hand`` at every trial
    onset (= the cue), so MOABB paradigms can epoch it. There is no signal between trials: each
    trial boundary is a discontinuity. Filtering the concatenated Raw (e.g. MOABB's default
    8-32 Hz band-pass of ``LeftRightImagery``) therefore leaks a little of the neighbouring,
    unrelated trial into each trial's edges; since the export is already band-passed, prefer
    ``LeftRightImagery(fmin=None, fmax=None)`` (no filter).

    ``interval = [0, 3.996]`` s: MNE epochs include ``tmax``, so ``[0, 4]`` would take the first
    sample of the next (unrelated) trial and drop the last trial of every session; with
    ``4 - 1/250`` every epoch is exactly the exported trial (1000 samples).

    Parameters
    ----------
    path : path-like, optional
        Folder containing ``epochs_mat/``; default ``$EEGMTL_BCI2B_DIR`` or
        ``$EEGMTL_DATA_DIR/bcic_iv_2b``. Resolved when data is read.
    subjects : iterable of int, optional
        Subset of subjects 1-9 (MOABB's ``selected_subjects``).
    sessions : iterable of int or str, optional
        Subset of sessions (1-5 or MOABB names; MOABB's ``selected_sessions``).

    Sessions are named as in MOABB's ``BNCI2014_004``: ``"0train"``, ``"1train"``, ``"2train"``,
    ``"3test"``, ``"4test"``, each with run ``"0"``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        subjects: Iterable[int] | None = None,
        sessions: Iterable[int | str] | None = None,
    ) -> None:
        selected_sessions = (
            None if sessions is None else [SESSIONS[i - 1] for i in parse_sessions(sessions)]
        )
        super().__init__(
            subjects=list(SUBJECTS),
            sessions_per_subject=len(SESSIONS),
            events=dict(EVENT_ID),
            code="BCI2bExport",
            interval=[0.0, (N_TIMES_EXPORT - 1) / SFREQ],
            paradigm="imagery",
            doi="10.3389/fnins.2012.00055",
            selected_subjects=None if subjects is None else parse_subjects(subjects),
            selected_sessions=selected_sessions,
        )
        self.path = path

    def data_path(
        self,
        subject: int,
        path: str | os.PathLike[str] | None = None,
        force_update: bool = False,
        update_path: bool | None = None,
        verbose: Any = None,
    ) -> list[Path]:
        """Local files of one subject (5 sessions); nothing is downloaded.

        Raises
        ------
        DataNotFoundError
            The folder or a file is missing; the message says which variable to set.
        """
        (s,) = parse_subjects([subject])
        root = export_root(path if path is not None else self.path)
        files = [export_file(root, s, n) for n in range(1, 6)]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DataNotFoundError(
                f"missing export files {missing}. Set $EEGMTL_BCI2B_DIR (or path=...) to the "
                f"folder holding {_EXPORT_CONTENT}."
            )
        return files

    def _get_single_subject_data(self, subject: int) -> dict[str, dict[str, Any]]:
        """One concatenated Raw per session: ``{"0train": {"0": raw}, ..., "4test": {...}}``."""
        import mne

        sessions = [1, 2, 3, 4, 5]
        if self._selected_sessions is not None:
            sessions = parse_sessions(self._selected_sessions)
        X, labels, meta = read_export(subject, sessions, self.path)
        out: dict[str, dict[str, Any]] = {}
        montage = _montage()
        code_to_name = {v: k for k, v in EVENT_ID.items()}
        for n in sessions:
            keep = (meta["session_index"] == n).to_numpy()
            xs, ys = X[keep], labels[keep]
            data = np.concatenate(list(xs), axis=1) * 1e-6  # (3, n_trials * 1000), volts
            info = mne.create_info(list(CHANNELS), SFREQ, ch_types="eeg")
            info["line_freq"] = 50.0
            info["description"] = (
                "BCIC IV 2b epoched export: 0-4 s after cue, band-passed ~6.7-25 Hz, trial "
                "order shuffled, trials concatenated without inter-trial signal"
            )
            raw = mne.io.RawArray(data, info, verbose=False)
            if montage is not None:
                raw.set_montage(montage, on_missing="ignore", verbose=False)
            onsets = np.arange(len(ys)) * N_TIMES_EXPORT / SFREQ
            raw.set_annotations(
                mne.Annotations(
                    onset=onsets,
                    duration=np.full(len(ys), N_TIMES_EXPORT / SFREQ),
                    description=[code_to_name[int(c)] for c in ys],
                )
            )
            out[SESSIONS[n - 1]] = {"0": raw}
        return out


# --------------------------------------------------------------------------- public API
def _export_epochs(X_uv: np.ndarray, labels: np.ndarray, meta: pd.DataFrame, tmin: float) -> Any:
    import mne

    info = mne.create_info(list(CHANNELS), SFREQ, ch_types="eeg")
    info["line_freq"] = 50.0
    montage = _montage()
    n_times = X_uv.shape[-1]
    events = np.column_stack(
        [np.arange(len(labels)) * (n_times + 1), np.zeros(len(labels), int), labels]
    ).astype(int)
    ep = mne.EpochsArray(
        X_uv * 1e-6, info, events=events, tmin=tmin, event_id=dict(EVENT_ID),
        metadata=meta.reset_index(drop=True), verbose=False,
    )
    if montage is not None:
        ep.set_montage(montage, on_missing="ignore", verbose=False)
    return ep


def load_bci2b(
    source: Literal["export", "bnci"] = "export",
    subjects: int | Iterable[int] | None = None,
    sessions: int | str | Sequence[int | str] | None = None,
    path: str | os.PathLike[str] | None = None,
    return_epochs: bool = False,
    *,
    units: Literal["V", "uV"] = "V",
    tmin: float = 0.0,
    tmax: float = 4.0,
) -> Any:
    """Load BCIC IV 2b trials for the chosen subjects and sessions.

    Parameters
    ----------
    source : {"export", "bnci"}
        ``"export"`` (default): the local epoched export (fast direct reader). ``"bnci"``: MOABB's
        ``BNCI2014_004`` on the original continuous files (see the module docstring).
    subjects : int or iterable of int, optional
        Subjects 1-9; default all.
    sessions : int, str or sequence, optional
        Competition sessions 1-5 or MOABB names ``"0train" ... "4test"``; default all.
    path : path-like, optional
        ``"export"``: folder containing ``epochs_mat/`` (else ``$EEGMTL_BCI2B_DIR`` /
        ``$EEGMTL_DATA_DIR``). ``"bnci"``: MNE data root (else ``$MNE_DATASETS_BNCI_PATH`` /
        ``$MNE_DATA`` / ``~/mne_data``).
    return_epochs : bool
        True: one :class:`mne.Epochs` (volts) with ``metadata`` and events 1 = left hand,
        2 = right hand. False (default): ``(X, y, metadata)``.
    units : {"V", "uV"}
        Units of the returned array ``X`` (ignored for Epochs, which are always in volts).
    tmin, tmax : float
        Half-open window ``[tmin, tmax)`` in seconds after the cue; default 0-4 s (1000
        samples). The export only holds 0-4 s.

    Returns
    -------
    mne.Epochs, or (X, y, metadata)
        ``X``: (n_trials, 3, n_times) float64 in ``units``; channels C3, Cz, C4; 250 Hz.
        ``y``: int64, 0 = left hand, 1 = right hand. ``metadata``: DataFrame with ``subject``,
        ``session`` (MOABB name), ``run``, ``session_index`` (1-5), ``trial``, ``label``.
        Trials are ordered by subject, then session, then file order.

    Examples
    --------
    >>> from eegmtl.eeg.datasets import load_bci2b
    >>> # needs the data: $EEGMTL_BCI2B_DIR or $EEGMTL_DATA_DIR (see `eegmtl data check`)
    >>> X, y, meta = load_bci2b(subjects=1, units="uV")  # doctest: +SKIP
    >>> X.shape, sorted(set(y.tolist()))  # doctest: +SKIP
    ((600, 3, 1000), [0, 1])
    >>> meta.groupby("session_index").size().tolist()  # doctest: +SKIP
    [120, 120, 120, 120, 120]
    """
    import mne

    if source not in ("export", "bnci"):
        raise ValueError(f"source must be 'export' or 'bnci'; got {source!r}.")
    if units not in ("V", "uV"):
        raise ValueError(f"units must be 'V' or 'uV'; got {units!r}.")
    if tmax <= tmin:
        raise ValueError(f"tmax ({tmax}) must be larger than tmin ({tmin}).")
    subs, sess = parse_subjects(subjects), parse_sessions(sessions)
    names = {v: k for k, v in EVENT_ID.items()}
    if source == "export":
        if tmin < 0 or tmax > N_TIMES_EXPORT / SFREQ + 1e-9:
            raise ValueError(
                f"the export only holds 0-4 s after the cue; got tmin={tmin}, tmax={tmax}. "
                "Use source='bnci' for other windows."
            )
        X, labels, meta = read_export(subs, sess, path)
        start, stop = int(round(tmin * SFREQ)), int(round(tmax * SFREQ))
        X = X[..., start:stop]
        meta["label"] = [names[int(c)] for c in labels]
        if return_epochs:
            return _export_epochs(X, labels, meta, tmin)
        y = (labels == EVENT_ID["right_hand"]).astype(np.int64)
        return (X if units == "uV" else X * 1e-6), y, meta
    epochs_list = bnci_epochs(subs, sess, path, tmin, tmax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        epochs = (
            epochs_list[0] if len(epochs_list) == 1
            else mne.concatenate_epochs(epochs_list, add_offset=True, verbose=False)
        )
    meta = epochs.metadata.reset_index(drop=True)
    meta["label"] = [names[int(c)] for c in epochs.events[:, 2]]
    with mne.utils.use_log_level("warning"):
        epochs.metadata = meta
    if return_epochs:
        return epochs
    X = epochs.get_data(copy=True)
    y = (epochs.events[:, 2] == EVENT_ID["right_hand"]).astype(np.int64)
    return (X * 1e6 if units == "uV" else X), y, meta
