"""``eegmtl bench si``: the FBCSP + SVM parts are timed where they run and the classes are
restored afterwards; end to end on the real data (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.svm import SVC

from eegmtl import cli
from eegmtl.eeg.baselines import BandwiseTransformer, make_fbcsp_svm
from eegmtl.experiments._fit_profile import FitTimer
from eegmtl.experiments.bench_si import fbcsp_targets


def test_fbcsp_parts_timed_and_classes_restored() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    X = rng.normal(size=(60, 3, 500)) * (1.0 + 0.5 * y[:, None, None] * np.array([1, 0, 0])[
        None, :, None])
    fit_before, bw_before = SVC.fit, BandwiseTransformer.__dict__["fit"]
    with FitTimer(fbcsp_targets()) as timer:
        make_fbcsp_svm(250.0).fit(X, y)
    assert set(timer.seconds) == {"preprocessing", "csp", "feature_selection", "svm_fit",
                                  "svm_score"}
    assert all(v > 0 for v in timer.seconds.values())
    assert timer.calls["svm_fit"] == 10 * 5 + 1  # kernel x C grid x inner folds + refit
    # per inner fold: fit + transform of the training part, transform of the held-out part;
    # the refit: fit + transform
    assert timer.calls["csp"] == 3 * 5 + 2
    assert SVC.fit is fit_before and "fit" not in SVC.__dict__  # inherited: attribute removed
    assert BandwiseTransformer.__dict__["fit"] is bw_before


@pytest.mark.slow
@pytest.mark.realdata
def test_bench_si_fbcsp_on_real_data(tmp_path: Path, bci2b_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EEGMTL_BCI2B_DIR", str(bci2b_dir))
    out = tmp_path / "bench_si.md"
    assert cli.main(["bench", "si", "--methods", "FBCSP+SVM", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## FBCSP+SVM: fit" in text and "target <= 30 s" in text
    assert "| svm_fit |" in text and "| csp |" in text
