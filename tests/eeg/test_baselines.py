"""Baseline factories (golden per-subject numbers from docs/baselines-2b.md), optional imports,
and the main job pipelines/csp_lda.py."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegmtl.eeg import baselines

REPO = Path(__file__).resolve().parents[2]


def _split(subject: int) -> tuple[np.ndarray, ...]:
    from eegmtl.eeg.datasets import load_bci2b

    X, y, meta = load_bci2b(subjects=subject, units="uV")
    tr = meta["session_index"].isin([1, 2, 3]).to_numpy()
    return X[tr], y[tr], X[~tr], y[~tr]


@pytest.mark.realdata
@pytest.mark.parametrize(("subject", "golden"), [(1, 0.642), (4, 0.938)])
def test_csp_lda_golden(real_2b: Path, subject: int, golden: float) -> None:
    Xtr, ytr, Xte, yte = _split(subject)
    acc = baselines.make_csp_lda().fit(Xtr, ytr).score(Xte, yte)
    assert abs(acc - golden) < 0.005


@pytest.mark.realdata
def test_ts_svm_golden(real_2b: Path) -> None:
    pytest.importorskip("pyriemann")
    Xtr, ytr, Xte, yte = _split(1)
    acc = baselines.make_ts_svm().fit(Xtr, ytr).score(Xte, yte)
    assert abs(acc - 0.654) < 0.005


def test_fbcsp_svm_structure_and_small_fit() -> None:
    est = baselines.make_fbcsp_svm(cv_splits=2)
    steps = [name for name, _ in est.estimator.steps]
    assert steps == ["resample", "filterbank", "csp", "select", "svc"]
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 3, 500))
    X[y == 1, 0] *= 2
    est.set_params(param_grid={"svc__kernel": ["linear"], "svc__C": [1.0]})
    est.fit(X, y)
    assert est.best_estimator_.named_steps["csp"].transform(
        est.best_estimator_[:2].transform(X)).shape == (40, 18)
    assert est.predict(X).shape == (40,)


@pytest.mark.slow
@pytest.mark.realdata
def test_fbcsp_svm_real_subject4(real_2b: Path) -> None:
    Xtr, ytr, Xte, yte = _split(4)
    acc = baselines.make_fbcsp_svm().fit(Xtr, ytr).score(Xte, yte)
    assert acc > 0.9  # reference 0.950 (docs/baselines-2b.md)


def test_eegmtl_imports_without_braindecode() -> None:
    code = (
        "import sys, eegmtl, eegmtl.eeg.datasets, eegmtl.eeg.preprocessing, "
        "eegmtl.eeg.filterbank, eegmtl.eeg.baselines, eegmtl._compat\n"
        "assert 'braindecode' not in sys.modules and 'torchaudio' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_import_braindecode_explains_torchaudio_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from eegmtl import _compat

    real = importlib.import_module

    def fake(name: str, *a, **k):
        if name == "braindecode":
            raise OSError("Could not load this library: /x/torchaudio/lib/_torchaudio.abi3.so")
        return real(name, *a, **k)

    monkeypatch.setattr(_compat.importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"rm -f .*torchaudio.*\.so.*install_baselines"):
        _compat.import_braindecode()

    def missing(name: str, *a, **k):
        raise ModuleNotFoundError("No module named 'braindecode'", name="braindecode")

    monkeypatch.setattr(_compat.importlib, "import_module", missing)
    with pytest.raises(ImportError, match=r"eegmtl\[baselines\]"):
        _compat.import_braindecode()


def test_eegnet_builds_and_runs_forward(capsys: pytest.CaptureFixture[str]) -> None:
    from eegmtl._compat import import_braindecode

    try:
        import_braindecode()
    except ImportError as err:
        pytest.skip(str(err))
    import torch

    clf = baselines.make_eegnet(n_times=500, max_epochs=2, batch_size=8, patience=1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 3, 500)).astype(np.float32)
    y = np.repeat([0, 1], 12)
    clf.fit(X, y)
    # quiet by default: no skorch epoch table nor early-stopping lines (parallel fits would
    # interleave them in the run's log)
    out = capsys.readouterr().out
    assert not any(w in out for w in ("train_loss", "valid_loss", "Stopping", "Restoring")), out
    assert clf.predict_proba(X).shape == (24, 2)
    net = clf.module_
    with torch.no_grad():
        assert net(torch.from_numpy(X[:2])).shape == (2, 2)
    shallow = baselines.make_shallow_fbcsp_net(n_times=500)
    assert shallow.get_params()["module__n_chans"] == 3


def test_deep_baselines_autotune_convolutions_at_fit_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every skorch fit asks for cuDNN's autotuner on its device when training starts (the
    MTL trainer's rule; a no-op on the CPU)."""
    pytest.importorskip("braindecode")
    import eegmtl.mtl.runtime as runtime

    asked: list[str] = []
    monkeypatch.setattr(runtime, "autotune_convolutions", lambda d: asked.append(str(d)))
    clf = baselines.make_eegnet(n_times=250, max_epochs=1, batch_size=8, patience=None)
    rng = np.random.default_rng(0)
    clf.fit(rng.standard_normal((16, 3, 250)).astype(np.float32), np.repeat([0, 1], 8))
    assert asked == ["cpu"]


@pytest.mark.realdata
def test_main_job_writes_records(real_2b: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("csp_lda_job", REPO / "pipelines" / "csp_lda.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    out = tmp_path / "sd.csv"
    assert job.main(["--subjects", "1", "8", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    design = ["dataset", "protocol", "pipeline", "subject", "fold", "seed", "accuracy",
              "f1_macro", "kappa", "roc_auc", "score", "samples", "time", "n_epochs_trained",
              "config_hash", "config", "versions"]
    assert all(c in df.columns for c in design)
    assert df["subject"].tolist() == [1, 8] and (df["samples"] == 360).all()
    np.testing.assert_allclose(df["accuracy"], [0.642, 0.883], atol=0.005)
    assert (df["score"] == df["roc_auc"]).all()
    printed = capsys.readouterr().out
    assert "mean+-SD" in printed and "wall time" in printed


def _synthetic(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes differing in 10 Hz power on channel 0 vs 2; µV scale, 250 Hz, 2 s."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    t = np.arange(500) / 250.0
    X = rng.standard_normal((n, 3, 500)) * 5.0
    alpha = 4.0 * np.sin(2 * np.pi * 10.0 * t)
    X[y == 0, 0] += alpha
    X[y == 1, 2] += alpha
    return X, y


@pytest.mark.parametrize("factory", ["csp_lda", "ts_svm", "fbcsp_svm"])
def test_float32_input_gives_float64_predictions(factory: str) -> None:
    make = {
        "csp_lda": lambda: baselines.make_csp_lda(n_components=2),
        "ts_svm": baselines.make_ts_svm,
        "fbcsp_svm": lambda: baselines.make_fbcsp_svm(k=4, cv_splits=2),
    }[factory]
    if factory == "ts_svm":
        pytest.importorskip("pyriemann")
    X, y = _synthetic()
    X32 = X.astype(np.float32)
    ref = make().fit(X32.astype(np.float64), y)
    low = make().fit(X32, y)
    np.testing.assert_array_equal(low.predict(X32), ref.predict(X32.astype(np.float64)))
    np.testing.assert_allclose(
        low.decision_function(X32), ref.decision_function(X32.astype(np.float64)),
        rtol=1e-4, atol=1e-6,
    )


def test_import_braindecode_silences_only_its_own_import_noise() -> None:
    """braindecode's import-time MNE montage deprecation stays out of the logs, nothing else."""
    code = ("import warnings\n"
            "from eegmtl._compat import import_braindecode\n"
            "try:\n    import_braindecode()\nexcept ImportError:\n    raise SystemExit(3)\n"
            "warnings.warn('still shown', FutureWarning)\n")
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=REPO, timeout=300,
                         capture_output=True, text=True)
    if out.returncode == 3:
        pytest.skip("braindecode not importable here")
    assert out.returncode == 0, out.stderr
    assert "standard_1020" not in out.stderr
    assert "still shown" in out.stderr
