"""load_bci2b(source="bnci") through MOABB's BNCI2014_004 on tiny synthetic BNCI-format files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from eegmtl.config import DataNotFoundError
from eegmtl.eeg.datasets import CHANNELS, SESSIONS, load_bci2b


def test_bnci_arrays_match_the_files(bnci_root: Path) -> None:
    X, y, meta = load_bci2b("bnci", subjects=[1, 2])
    # 2 subjects x 5 runs x 6 trials; window 0-4 s after the cue, 250 Hz
    assert X.shape == (60, 3, 1000)
    assert list(meta.groupby(["subject", "session"]).size()) == [6] * 10
    assert sorted(meta["session"].unique()) == list(SESSIONS)
    assert set(np.unique(y)) == {0, 1}
    # the values are the file's µV samples from cue (trial + 3 s) on, converted to volts
    f = bnci_root / "MNE-bnci-data" / "~bci" / "database" / "004-2014" / "B02E.mat"
    runs = scipy.io.loadmat(f, squeeze_me=True, struct_as_record=False)["data"]
    run = runs[1]  # session "4test"
    sel = ((meta["subject"] == 2) & (meta["session"] == "4test")).to_numpy()
    start = run.trial[0] - 1 + 3 * 250
    np.testing.assert_allclose(X[sel][0], run.X[start : start + 1000, :3].T * 1e-6, rtol=1e-12)
    np.testing.assert_array_equal(y[sel], run.y - 1)
    Xu, _, _ = load_bci2b("bnci", subjects=[1, 2], units="uV")
    np.testing.assert_allclose(Xu, X * 1e6)


def test_bnci_epochs_and_session_subset(bnci_root: Path) -> None:
    ep = load_bci2b("bnci", subjects=1, sessions=["3test", 5], return_epochs=True)
    assert ep.ch_names == list(CHANNELS)
    assert ep.get_data(copy=False).shape == (12, 3, 1000)
    assert ep.times[0] == 0.0 and np.isclose(ep.times[-1], 3.996)
    assert set(ep.metadata["session"]) == {"3test", "4test"}
    assert set(ep.metadata["label"]) <= {"left_hand", "right_hand"}


def test_bnci_missing_files_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing files + failed download -> DataNotFoundError naming the expected path."""
    import requests
    from moabb.datasets import BNCI2014_004

    def offline(self, *args, **kwargs):  # never touch the network in tests
        raise requests.exceptions.ConnectionError("Name or service not known (test: offline)")

    monkeypatch.setattr(BNCI2014_004, "data_path", offline)
    monkeypatch.setenv("MNE_DATASETS_BNCI_PATH", str(tmp_path))
    expected = str(tmp_path / "MNE-bnci-data" / "~bci" / "database" / "004-2014" / "B01T.mat")
    with pytest.raises(DataNotFoundError) as info:
        load_bci2b("bnci", subjects=[1])
    assert expected in str(info.value) and "ConnectionError" in str(info.value)
    # the path argument wins over the environment
    other = tmp_path / "other"
    with pytest.raises(DataNotFoundError, match="other"):
        load_bci2b("bnci", subjects=[1], path=other)


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_bnci_corrupted_file_is_named(bnci_root: Path, kind: str) -> None:
    from eegmtl.eeg.datasets import CorruptFileError

    f = bnci_root / "MNE-bnci-data" / "~bci" / "database" / "004-2014" / "B01E.mat"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 3] if kind == "truncated" else b"not a mat file\n" * 20)
    with pytest.raises(CorruptFileError, match=r"subject 1: reading .*B01E\.mat.*damaged"):
        load_bci2b("bnci", subjects=[1])


def test_bnci_nan_samples_are_named(bnci_root: Path) -> None:
    from eegmtl.eeg.datasets import CorruptFileError

    f_e = bnci_root / "MNE-bnci-data" / "~bci" / "database" / "004-2014" / "B02E.mat"
    runs = scipy.io.loadmat(f_e, squeeze_me=False, struct_as_record=False)["data"]
    runs[0, 1][0, 0].X[100, 0] = np.nan
    scipy.io.savemat(f_e, {"data": runs})
    with pytest.raises(CorruptFileError, match=r"subject 2, session 4test.*NaN.*B02E\.mat"):
        load_bci2b("bnci", subjects=[2])
