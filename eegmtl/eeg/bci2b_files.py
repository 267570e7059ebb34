"""BCIC IV 2b export files: subject and session numbers, where the files are, and the fast
direct reader (:func:`read_export`, :func:`scipy.io.loadmat`; damaged files named in the error by
:mod:`eegmtl.eeg.datafiles`). Used by :mod:`eegmtl.eeg.datasets`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from eegmtl.config import DataNotFoundError, resolve_data_dir
from eegmtl.eeg.bci2b_meta import CHANNELS, EVENT_ID, N_TIMES_EXPORT, SESSIONS, SUBJECTS
from eegmtl.eeg.checks import check_subjects
from eegmtl.eeg.datafiles import read_export_file

__all__ = ["export_file", "export_root", "parse_sessions", "parse_subjects", "read_export"]

_EXPORT_CONTENT = (
    "epochs_mat/B0101T.mat ... B0905E.mat (45 files BSSNNX.mat; see "
    "shared/data/bcic_iv_2b/README.md)"
)


def parse_subjects(subjects: int | Iterable[int] | None) -> list[int]:
    """Validate subjects (1-9); None means all. Returns a sorted list without duplicates.

    Integral floats are accepted (``4.0`` -> ``[4]``); see
    :func:`eegmtl.eeg.checks.check_subjects`.
    """
    return check_subjects(subjects, SUBJECTS)


def parse_sessions(sessions: int | str | Iterable[int | str] | None) -> list[int]:
    """Validate sessions; None means all. Returns sorted competition indices 1-5.

    Accepts competition indices 1-5 (1-3 = training ``T`` files, 4-5 = evaluation ``E`` files)
    or MOABB names ``"0train" ... "4test"``.
    """
    if sessions is None:
        return [1, 2, 3, 4, 5]
    if isinstance(sessions, (str, bytes)) or not isinstance(sessions, Iterable):
        sessions = [sessions]
    out: list[int] = []
    for s in sessions:
        if isinstance(s, str) and s in SESSIONS:
            out.append(SESSIONS.index(s) + 1)
        elif (
            isinstance(s, (int, np.integer, float, np.floating))
            and not isinstance(s, (bool, np.bool_))
            and float(s) in (1.0, 2.0, 3.0, 4.0, 5.0)
        ):
            out.append(int(s))
        else:
            raise ValueError(
                f"unknown session {s!r} for BCIC IV 2b; use 1-5 (competition sessions; 1-3 = "
                f"training T files, 4-5 = evaluation E files) or MOABB names {list(SESSIONS)}."
            )
    if not out:
        raise ValueError("sessions is empty; give at least one of 1-5 (or None for all).")
    return sorted(set(out))


def export_file(root: str | os.PathLike[str], subject: int, session: int) -> Path:
    """Path of one export file: ``<root>/epochs_mat/B{subject:02d}{session:02d}{T|E}.mat``."""
    kind = "T" if session <= 3 else "E"
    return Path(root) / "epochs_mat" / f"B{subject:02d}{session:02d}{kind}.mat"


def export_root(path: str | os.PathLike[str] | None) -> Path:
    root = resolve_data_dir("bcic_iv_2b", path, expected=_EXPORT_CONTENT)
    if not (root / "epochs_mat").is_dir():
        raise DataNotFoundError(
            f"{root} has no 'epochs_mat/' folder. Set $EEGMTL_BCI2B_DIR (or pass path=...) to the "
            f"folder that contains epochs_mat/; expected content: {_EXPORT_CONTENT}."
        )
    return root


def read_export(
    subjects: int | Iterable[int] | None = None,
    sessions: int | str | Iterable[int | str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Read the export directly with :func:`scipy.io.loadmat` (all 45 files in about 1 s).

    Returns
    -------
    X : ndarray, shape (n_trials, 3, 1000), float64, **microvolts** (as stored)
    labels : ndarray, shape (n_trials,), int
        1 = left hand, 2 = right hand (as stored; see :data:`EVENT_ID`).
    metadata : DataFrame
        One row per trial: ``subject`` (int), ``session`` (MOABB name), ``run`` (``"0"``),
        ``session_index`` (1-5), ``trial`` (index in the file; the order is shuffled).
    """
    subs, sess = parse_subjects(subjects), parse_sessions(sessions)
    root = export_root(path)
    xs, ys, metas = [], [], []
    for s in subs:
        for n in sess:
            f = export_file(root, s, n)
            if not f.is_file():
                raise DataNotFoundError(
                    f"missing export file {f} (subject {s}, session {n}). The folder from "
                    f"$EEGMTL_BCI2B_DIR / path must hold {_EXPORT_CONTENT}."
                )
            data, lab = read_export_file(f, CHANNELS, N_TIMES_EXPORT, EVENT_ID)
            xs.append(data)
            ys.append(lab)
            metas.append(
                pd.DataFrame(
                    {
                        "subject": s,
                        "session": SESSIONS[n - 1],
                        "run": "0",
                        "session_index": n,
                        "trial": np.arange(len(lab)),
                    }
                )
            )
    return np.concatenate(xs), np.concatenate(ys), pd.concat(metas, ignore_index=True)
