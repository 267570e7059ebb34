"""BCIC IV 2b from the original BNCI files through MOABB's ``BNCI2014_004``: where the files
are expected, reading them (damaged files named in the error) and epoching 0-4 s after the cue.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegmtl.config import DataNotFoundError
from eegmtl.eeg.bci2b_meta import CHANNELS, CUE_OFFSET_BNCI, EVENT_ID, SESSIONS
from eegmtl.eeg.datafiles import CorruptFileError, check_finite_raws

__all__ = ["bnci_epochs", "bnci_expected_file"]


@contextlib.contextmanager
def _env(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is not None:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bnci_expected_file(subject: int, kind: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Where moabb 1.7 keeps ``B{subject:02d}{kind}.mat`` (``kind`` = ``"T"`` or ``"E"``)."""
    if path is not None:
        root = Path(path)
    else:
        root_s = (
            os.environ.get("MNE_DATASETS_BNCI_PATH")
            or os.environ.get("MNE_DATA")
            or _mne_config("MNE_DATASETS_BNCI_PATH")
            or _mne_config("MNE_DATA")
            or str(Path("~/mne_data").expanduser())
        )
        root = Path(root_s)
    return root / "MNE-bnci-data" / "~bci" / "database" / "004-2014" / f"B{subject:02d}{kind}.mat"


def _mne_config(key: str) -> str | None:
    import mne

    return mne.get_config(key)


def bnci_epochs(
    subjects: list[int], sessions: list[int], path: str | os.PathLike[str] | None,
    tmin: float, tmax: float,
) -> Any:
    import mne
    from moabb.datasets import BNCI2014_004

    kinds = sorted({"T" if n <= 3 else "E" for n in sessions}, reverse=True)
    env = {"MOABB_DOWNLOAD_PROVIDER": "upstream",
           "MNE_DATASETS_BNCI_PATH": None if path is None else str(path)}
    dataset = BNCI2014_004()
    epochs_list = []
    with _env(**env):
        for s in subjects:
            missing = [bnci_expected_file(s, k, path) for k in kinds]
            missing = [f for f in missing if not f.is_file()]
            if missing:
                try:  # downloads when online
                    dataset.data_path(s, path=None if path is None else str(path))
                except Exception as err:  # requests/pooch/OSError when offline
                    raise DataNotFoundError(
                        f"BNCI2014_004 subject {s}: file(s) {[str(f) for f in missing]} not found "
                        f"and the download failed ({type(err).__name__}: {err}). Put the original "
                        "BNCI files B0sT.mat/B0sE.mat there (layout "
                        "<root>/MNE-bnci-data/~bci/database/004-2014/), with <root> from path=..., "
                        "$MNE_DATASETS_BNCI_PATH or $MNE_DATA, or go online."
                    ) from err
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                try:
                    data = dataset.get_data([s])[s]
                except DataNotFoundError:
                    raise
                except Exception as err:  # whatever a damaged .mat raises inside MOABB/scipy
                    files = [str(bnci_expected_file(s, k, path)) for k in kinds]
                    raise CorruptFileError(
                        f"BNCI2014_004 subject {s}: reading {files} failed ({type(err).__name__}: "
                        f"{err}); one of these files is damaged or not a BNCI .mat file. Delete "
                        "it so MOABB downloads it again, or restore it from the original download."
                    ) from err
            check_finite_raws(
                data, f"BNCI2014_004 subject {s}", [bnci_expected_file(s, k, path) for k in kinds]
            )
            for n in sessions:
                name = SESSIONS[n - 1]
                if name not in data:
                    raise ValueError(f"BNCI2014_004 subject {s} has no session {name!r}.")
                for run_name, raw in data[name].items():
                    events = mne.find_events(raw, stim_channel="STI", shortest_event=0,
                                             verbose=False)
                    events = events[np.isin(events[:, 2], list(EVENT_ID.values()))]
                    sf = raw.info["sfreq"]
                    ep = mne.Epochs(
                        raw, events, EVENT_ID, tmin=CUE_OFFSET_BNCI + tmin,
                        tmax=CUE_OFFSET_BNCI + tmax - 1.0 / sf, baseline=None,
                        picks=list(CHANNELS), preload=True, verbose=False,
                    )
                    with mne.utils.use_log_level("warning"):
                        ep.metadata = pd.DataFrame({
                            "subject": s, "session": name, "run": run_name,
                            "session_index": n, "trial": np.arange(len(ep)),
                        })
                    ep.shift_time(-CUE_OFFSET_BNCI, relative=True)
                    epochs_list.append(ep)
    return epochs_list
