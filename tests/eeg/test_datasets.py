"""eegmtl.eeg.datasets on the real 2b export: counts, balance, channels, MOABB, errors."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from eegmtl.config import DataNotFoundError
from eegmtl.eeg.datasets import (
    CHANNELS,
    SESSIONS,
    BCI2bExport,
    load_bci2b,
    parse_sessions,
    parse_subjects,
    read_export,
)


@pytest.mark.realdata
def test_all_45_files_trial_counts_and_balance(real_2b: Path) -> None:
    X, labels, meta = read_export(path=real_2b)
    assert X.shape == (9 * 5 * 120, 3, 1000)
    assert X.dtype == np.float64 and np.isfinite(X).all()
    counts = meta.groupby(["subject", "session"]).size()
    assert len(counts) == 45 and (counts == 120).all()
    per = meta.assign(label=labels).groupby(["subject", "session", "label"]).size()
    assert (per == 60).all() and len(per) == 90
    assert sorted(meta["session"].unique()) == list(SESSIONS)
    # microvolts as stored: session std of a few µV (README: about 1.3-3.4 µV)
    assert 0.5 < X.std() < 10


@pytest.mark.realdata
def test_load_units_labels_and_metadata(real_2b: Path) -> None:
    Xv, y, meta = load_bci2b(subjects=[2], sessions=[1, "3test"])
    Xu, yu, _ = load_bci2b(subjects=2, sessions=[4, 1], units="uV")
    assert Xv.shape == (240, 3, 1000)
    np.testing.assert_allclose(Xv * 1e6, Xu)
    np.testing.assert_array_equal(y, yu)
    assert set(np.unique(y)) == {0, 1} and y.sum() == 120
    assert list(meta.columns[:3]) == ["subject", "session", "run"]
    assert (meta["run"] == "0").all() and set(meta["session"]) == {"0train", "3test"}
    assert (meta.loc[y == 0, "label"] == "left_hand").all()


@pytest.mark.realdata
def test_window_option(real_2b: Path) -> None:
    X, _, _ = load_bci2b(subjects=1, sessions=1, tmin=0.5, tmax=2.5)
    full, _, _ = load_bci2b(subjects=1, sessions=1)
    assert X.shape == (120, 3, 500)
    np.testing.assert_array_equal(X, full[..., 125:625])
    with pytest.raises(ValueError, match="only holds 0-4 s"):
        load_bci2b(subjects=1, sessions=1, tmax=4.5)


@pytest.mark.realdata
def test_return_epochs(real_2b: Path) -> None:
    ep = load_bci2b(subjects=3, sessions=[5], return_epochs=True)
    assert isinstance(ep, mne.BaseEpochs)
    assert ep.ch_names == list(CHANNELS) and ep.info["sfreq"] == 250.0
    assert ep.get_data(copy=False).shape == (120, 3, 1000)
    assert ep.times[0] == 0.0 and np.isclose(ep.times[-1], 3.996)
    assert len(ep["left_hand"]) == len(ep["right_hand"]) == 60
    X, _, _ = load_bci2b(subjects=3, sessions=[5])
    np.testing.assert_allclose(ep.get_data(), X)  # volts in both
    assert set(ep.metadata["subject"]) == {3}


@pytest.mark.realdata
def test_moabb_paradigm_on_dataset_class(real_2b: Path) -> None:
    from moabb.paradigms import LeftRightImagery

    ds = BCI2bExport()
    X, y, meta = LeftRightImagery().get_data(ds, [1])
    assert X.shape == (600, 3, 1000)
    labels, counts = np.unique(y, return_counts=True)
    assert list(labels) == ["left_hand", "right_hand"] and list(counts) == [300, 300]
    assert sorted(meta["session"].unique()) == list(SESSIONS)
    # without MOABB's band-pass the epochs are exactly the exported trials (in µV, unit_factor)
    Xn, yn, _ = LeftRightImagery(fmin=None, fmax=None).get_data(ds, [1])
    Xr, yr, _ = load_bci2b(subjects=1, units="uV")
    np.testing.assert_allclose(Xn, Xr, atol=1e-9)
    assert (yn == np.where(yr == 1, "right_hand", "left_hand")).all()
    raw = ds.get_data([1])[1]["0train"]["0"]
    assert raw.ch_names == list(CHANNELS) and raw.info["sfreq"] == 250.0
    assert len(raw.annotations) == 120


@pytest.mark.realdata
def test_moabb_within_session_evaluation(real_2b: Path, tmp_path: Path) -> None:
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    from eegmtl.eeg.baselines import make_csp_lda

    ds = BCI2bExport(subjects=[1], sessions=[1, 2])
    ev = WithinSessionEvaluation(
        paradigm=LeftRightImagery(fmin=None, fmax=None), datasets=[ds], overwrite=True,
        hdf5_path=str(tmp_path), random_state=0,
    )
    res = ev.process({"CSP+LDA": make_csp_lda()})
    assert len(res) == 2 and set(res["session"]) == {"0train", "1train"}
    assert (res["samples"] == 120).all()
    assert 0.6 < res["score"].mean() <= 1.0  # ROC-AUC, subject 1 is above chance


def test_missing_data_directory_names_variable(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.delenv("EEGMTL_BCI2B_DIR", raising=False)
    monkeypatch.delenv("EEGMTL_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError, match="EEGMTL_BCI2B_DIR"):
        load_bci2b(subjects=1)
    with pytest.raises(DataNotFoundError, match="EEGMTL_BCI2B_DIR"):
        BCI2bExport().data_path(1)
    monkeypatch.setenv("EEGMTL_BCI2B_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="nowhere"):
        read_export(1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="epochs_mat"):
        load_bci2b(subjects=1, path=tmp_path / "empty")
    (tmp_path / "empty" / "epochs_mat").mkdir()
    with pytest.raises(DataNotFoundError, match="B0101T.mat"):
        load_bci2b(subjects=1, path=tmp_path / "empty")


@pytest.mark.parametrize("bad", [0, 10, -1, "1", 2.5, True, []])
def test_unknown_subject(bad: object) -> None:
    with pytest.raises(ValueError, match="subject"):
        parse_subjects(bad if isinstance(bad, list) else [bad])
    if not isinstance(bad, list):
        with pytest.raises(ValueError, match="valid subjects are"):
            load_bci2b(subjects=[bad])
        with pytest.raises(ValueError, match="subject"):
            BCI2bExport(subjects=[bad])


@pytest.mark.parametrize("bad", [0, 6, "5test", "train", 1.5])
def test_unknown_session(bad: object) -> None:
    with pytest.raises(ValueError, match="unknown session"):
        parse_sessions([bad])
    with pytest.raises(ValueError, match="0train"):
        load_bci2b(subjects=1, sessions=[bad])


def test_session_names_and_numbers_agree() -> None:
    assert parse_sessions(["4test", 1, "0train", 3]) == [1, 3, 5]
    assert parse_sessions(None) == [1, 2, 3, 4, 5]
    assert parse_subjects(None) == list(range(1, 10))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="source"):
        load_bci2b("gdf")
    with pytest.raises(ValueError, match="units"):
        load_bci2b(units="mV")


def test_integral_float_subjects_and_sessions_are_accepted() -> None:
    assert parse_subjects(4.0) == [4]
    assert parse_subjects([np.float64(2.0), 1]) == [1, 2]
    assert parse_sessions(1.0) == [1]
    with pytest.raises(ValueError, match="not integral"):
        parse_subjects(4.5)


# --------------------------------------------------------------------- corrupted copies
def _copy_sessions(real_2b: Path, tmp_path: Path) -> Path:
    """Copies of subject 1, sessions 1-2 of the real export in ``tmp_path/epochs_mat``."""
    import shutil

    (tmp_path / "epochs_mat").mkdir()
    for name in ("B0101T.mat", "B0102T.mat"):
        shutil.copy(real_2b / "epochs_mat" / name, tmp_path / "epochs_mat" / name)
        (tmp_path / "epochs_mat" / name).chmod(0o644)
    return tmp_path / "epochs_mat" / "B0102T.mat"


def _corrupt(f: Path, kind: str) -> None:
    data = f.read_bytes()
    if kind == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        f.write_bytes(b"")
    elif kind == "bitflip":  # in the first variable's tag, right after the 128-byte header
        flipped = bytearray(data)
        flipped[130] ^= 0xFF
        f.write_bytes(bytes(flipped))
    else:  # not a MATLAB file at all
        f.write_text("subject,session\n1,2\n")


@pytest.mark.parametrize("kind", ["truncated", "empty", "bitflip", "csv"])
def test_corrupted_export_file_is_named(real_2b: Path, tmp_path: Path, kind: str) -> None:
    from eegmtl.eeg.datasets import CorruptFileError

    bad = _copy_sessions(real_2b, tmp_path)
    _corrupt(bad, kind)
    with pytest.raises(CorruptFileError, match=r"B0102T\.mat.*(empty, truncated, corrupted)"):
        load_bci2b(subjects=1, sessions=[1, 2], path=tmp_path)
    with pytest.raises(CorruptFileError, match=r"B0102T\.mat"):
        BCI2bExport(path=tmp_path, sessions=[1, 2]).get_data([1])
    # the intact file next to it still loads
    X, _, _ = load_bci2b(subjects=1, sessions=[1], path=tmp_path)
    assert X.shape == (120, 3, 1000)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e12])
def test_nan_or_impossible_values_name_file_and_trials(
    real_2b: Path, tmp_path: Path, value: float
) -> None:
    import scipy.io

    from eegmtl.eeg.datasets import CorruptFileError

    bad = _copy_sessions(real_2b, tmp_path)
    mat = scipy.io.loadmat(bad)
    mat["data"][10, 1, 7] = value  # (time, channel, trial): trial 7
    mat["data"][0, 0, 42] = value
    scipy.io.savemat(bad, {"data": mat["data"], "label": mat["label"]})
    with pytest.raises(CorruptFileError, match=r"B0102T\.mat: 2 .* trials \[7, 42\]"):
        load_bci2b(subjects=1, sessions=[1, 2], path=tmp_path)


def test_wrong_variables_name_file(real_2b: Path, tmp_path: Path) -> None:
    import scipy.io

    from eegmtl.eeg.datasets import CorruptFileError

    bad = _copy_sessions(real_2b, tmp_path)
    scipy.io.savemat(bad, {"eeg": np.zeros((3, 3))})
    with pytest.raises(CorruptFileError, match=r"B0102T\.mat has no 'data'/'label'.*\['eeg'\]"):
        load_bci2b(subjects=1, sessions=[1, 2], path=tmp_path)
