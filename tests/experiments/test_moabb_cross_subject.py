"""``eegmtl moabb-si``: registry pipelines plain and +EA through MOABB's cross-subject modes,
on the real 2b export; tidy CSV, summary, resume from MOABB's cache, rows of other runs kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("moabb")

from eegmtl.experiments import main  # noqa: E402
from eegmtl.experiments.moabb_cross_subject import summarise  # noqa: E402


@pytest.mark.realdata
def test_moabb_si_runs_resumes_and_merges(bci2b_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "moabb_si.csv"
    base = ["--subjects", "1", "4", "--bci2b-dir", str(bci2b_dir), "--results", str(out)]
    assert main("moabb-si", [*base, "--methods", "CSP+LDA",
                             "--cs-modes", "train", "train_and_target_unlabeled_20p"]) == 0
    df = pd.read_csv(out)
    # 2 target subjects x 5 sessions x (plain, +EA) x 2 modes
    assert len(df) == 40 and set(df["pipeline"]) == {"CSP+LDA", "CSP+LDA+EA"}
    assert set(df["cs_mode"]) == {"train", "train_and_target_unlabeled_20p"}
    calib = df[df["cs_mode"] == "train_and_target_unlabeled_20p"]
    assert (calib["samples_test"] == 96).all()  # 20 % of each 120-trial session went to fit
    assert (df["score"] > 0.3).all() and df["score"].mean() > 0.5
    assert (df["score"] == df["score_accuracy"]).all() and df["score_roc_auc"].between(0, 1).all()
    summary = (tmp_path / "moabb_si_summary.md").read_text()
    assert "| CSP+LDA+EA |" in summary and "Wilcoxon p" in summary
    assert "**accuracy** in %" in summary and "**ROC-AUC** in %" in summary
    assert "eegmtl moabb-si" in summary  # the command that made it
    assert (tmp_path / "moabb_si_accuracy.png").stat().st_size > 0
    assert "`moabb_si_accuracy.png`" in summary
    # a second run (cached by MOABB) with an EA-only pipeline keeps the first run's rows
    assert main("moabb-si", [*base, "--methods", "CSP+LDA", "--alignment", "ea",
                             "--cs-modes", "train"]) == 0
    again = pd.read_csv(out)
    assert len(again) == 40
    pd.testing.assert_series_equal(
        again.sort_values(["cs_mode", "pipeline", "subject", "session"])["score"]
        .reset_index(drop=True),
        df.sort_values(["cs_mode", "pipeline", "subject", "session"])["score"]
        .reset_index(drop=True))


def test_moabb_si_rejects_bad_names_and_one_subject(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="ATCnet"):
        main("moabb-si", ["--methods", "ATCnet", "--results", str(tmp_path / "x.csv")])
    with pytest.raises(SystemExit, match="at least two subjects"):
        main("moabb-si", ["--subjects", "3", "--results", str(tmp_path / "x.csv")])


def test_summary_table_and_alignment_effect() -> None:
    rows = []
    for s in range(1, 6):
        for sess in ("0train", "1train"):
            rows.append({"pipeline": "A", "cs_mode": "train", "subject": s, "session": sess,
                         "score": 0.6 + 0.01 * s})
            rows.append({"pipeline": "A+EA", "cs_mode": "train", "subject": s, "session": sess,
                         "score": 0.7 + 0.01 * s})
    text = summarise(pd.DataFrame(rows))
    assert "| A | 63.00 ± 1.58 (n=5) |" in text
    assert "| A | train | +10.00 | 5/5 | 0.0625 |" in text
