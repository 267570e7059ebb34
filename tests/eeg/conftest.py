"""Fixtures for the eeg tests, incl. a writer of tiny BNCI 2014-004 `.mat` files (offline).

The format is the one moabb's ``_convert_mi`` reads (see docs/eeg-ecosystem.md §2): a MATLAB
file with a ``data`` cell array of runs, each a struct with ``X`` (n_samples x 6 channels
C3, Cz, C4, EOG1-3, microvolts), ``trial`` (1-based sample index of each trial start, the cue
follows 3 s later), ``y`` (1 = left, 2 = right), ``fs``, ``classes``, ``artifacts``, ``gender``
and ``age``. ``B0sT.mat`` holds 3 runs (MOABB sessions 0train-2train), ``B0sE.mat`` 2 runs
(3test, 4test). The class signal is weak on purpose (a 12 Hz rhythm slightly damped
contralaterally after the cue), so classifiers do not trivially reach AUC 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

FS = 250
TRIAL_SPACING_S = 8.0  # trial start every 8 s; cue at +3 s, imagery until +7 s


def _run(rng: np.random.Generator, n_trials: int, contrast: float) -> dict:
    n = int((n_trials * TRIAL_SPACING_S + 2.0) * FS)
    X = rng.standard_normal((n, 6)) * 5.0
    t = np.arange(n) / FS
    rhythm = 4.0 * np.sin(2 * np.pi * 12.0 * t)
    X[:, 0] += rhythm
    X[:, 2] += rhythm
    y = np.tile([1, 2], n_trials // 2 + 1)[:n_trials]
    rng.shuffle(y)
    starts = (np.arange(n_trials) * TRIAL_SPACING_S * FS + FS).astype(int)
    for s, lab in zip(starts, y):
        cue = s + 3 * FS
        ch = 2 if lab == 1 else 0  # left imagery damps C4 (right hemisphere), right damps C3
        X[cue : cue + 4 * FS, ch] -= contrast * rhythm[cue : cue + 4 * FS]
    return {
        "X": X,
        "trial": (starts + 1).astype(np.int32),
        "y": y.astype(np.uint8),
        "fs": FS,
        "classes": np.array(["left hand", "right hand"], dtype=object),
        "artifacts": np.zeros(n_trials, dtype=np.uint8),
        "gender": "f",
        "age": 24,
    }


def write_bnci_2014_004(
    root: Path, subjects: tuple[int, ...] = (1,), n_trials: int = 6, contrast: float = 0.3,
    seed: int = 0,
) -> list[Path]:
    """Write ``B0sT.mat``/``B0sE.mat`` for ``subjects`` into moabb 1.7's layout under ``root``.

    Returns the written paths (``<root>/MNE-bnci-data/~bci/database/004-2014/B01T.mat`` ...).
    """
    folder = Path(root) / "MNE-bnci-data" / "~bci" / "database" / "004-2014"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in subjects:
        rng = np.random.default_rng(seed + s)
        for kind, n_runs in (("T", 3), ("E", 2)):
            runs = np.empty((n_runs,), dtype=object)
            for i in range(n_runs):
                runs[i] = _run(rng, n_trials, contrast)
            f = folder / f"B{s:02d}{kind}.mat"
            scipy.io.savemat(f, {"data": runs})
            out.append(f)
    return out


@pytest.fixture
def bnci_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tiny BNCI2014_004 files for subjects 1 and 2 under ``tmp_path``; MOABB pointed at them."""
    write_bnci_2014_004(tmp_path, subjects=(1, 2))
    monkeypatch.setenv("MNE_DATASETS_BNCI_PATH", str(tmp_path))
    monkeypatch.setenv("MOABB_DOWNLOAD_PROVIDER", "upstream")
    return tmp_path


@pytest.fixture
def real_2b(bci2b_dir: Path) -> Path:
    """The real export's folder (skips when absent), also exported as $EEGMTL_BCI2B_DIR."""
    return bci2b_dir
