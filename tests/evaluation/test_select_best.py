"""Validation-only choice of the best MixNet-family pipeline and the ``MixNet[best]`` alias."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from eegmtl.evaluation.catalog import BEST_MIXNET
from eegmtl.evaluation.methods import default_config, get_method, lookup
from eegmtl.experiments.select_best import choose

SELECTION = Path(__file__).resolve().parents[2] / "pipelines/results/mixnet_best_selection.md"


def _records(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"pipeline": p, "subject": s, "fold": 1, "seed": 0,
                          "val_accuracy": v, "accuracy": a} for p, s, v, a in rows])


def test_choice_uses_validation_on_common_subjects_only() -> None:
    df = _records([
        ("A", 1, 0.70, 0.99), ("A", 2, 0.70, 0.99),            # best on test, not on validation
        ("B", 1, 0.80, 0.50), ("B", 2, 0.78, 0.50),
        ("C", 1, 0.60, 0.50), ("C", 2, 0.60, 0.50), ("C", 3, 1.00, 0.50),  # subject 3: C only
    ])
    best, table, subjects = choose(df, ["A", "B", "C"], [1])
    assert best == "B" and subjects == [1, 2]
    assert table.loc["C", "n"] == 2  # subject 3 is not used for C either


def test_missing_candidate_is_a_clear_error() -> None:
    df = _records([("A", 1, 0.7, 0.7)])
    with pytest.raises(ValueError, match="no records on folds"):
        choose(df, ["A", "B"], [1])


def test_alias_resolves_to_the_winner_config() -> None:
    assert lookup("MixNet[best]")[0] is lookup(BEST_MIXNET)[0]
    assert default_config("MixNet[best]") == default_config(BEST_MIXNET)
    assert get_method("MixNet[best]").config == get_method(BEST_MIXNET).config
    # the SD choice has no SI defaults: the error names the alias and what it stands for
    with pytest.raises(ValueError, match=r"'MixNet\[best\]' stands for .*no "
                                         r"subject_independent defaults"):
        default_config("MixNet[best]", "si")


def test_alias_matches_the_committed_selection() -> None:
    if not SELECTION.is_file():
        pytest.skip("no committed selection file")
    winner = re.search(r"Winner: `([^`]+)`", SELECTION.read_text()).group(1)
    assert winner == BEST_MIXNET


def test_aligned_runs_are_their_own_candidates(tmp_path: Path) -> None:
    """Records with and without alignment share a pipeline name; the choice sees them as
    ``NAME`` and ``NAME+EA`` (from the config), and writes which won."""
    import argparse

    from eegmtl.experiments.select_best import run

    plain = _records([("M", 1, 0.70, 0.9), ("M", 2, 0.72, 0.9)]).assign(config="{}")
    aligned = _records([("M", 1, 0.75, 0.1), ("M", 2, 0.74, 0.1)]).assign(
        config='{"alignment": "transductive"}')
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    plain.to_csv(a, index=False)
    aligned.to_csv(b, index=False)
    out = tmp_path / "choice.md"
    run(argparse.Namespace(records=[a, b], candidates=["M", "M+EA"], folds=[1], seed=0, out=out,
                           command_prefix=["eegmtl", "select-best"], argv=[]))
    text = out.read_text()
    assert "Winner: `M+EA`." in text and "MixNet[best]" not in text


def test_leave_target_out_choice_reads_no_trial_of_the_target() -> None:
    """SI: the choice for target T comes only from fits whose validation subjects exclude T.
    A wins the pooled choice through fits validated on subject 1; without them (target 1)
    B wins; test columns play no part (A's are perfect, B's poor)."""
    from eegmtl.experiments.select_best import leave_target_out

    val = {1: "2", 2: "1", 3: "1"}  # target -> its fit's validation subjects
    rows = [{"protocol": "subject_independent", "pipeline": p, "subject": t, "fold": 1,
             "seed": 0, "val_subjects": val[t], "val_accuracy": v, "accuracy": a}
            for p, scores, a in (("A", (0.5, 0.9, 0.9), 1.0), ("B", (0.6, 0.6, 0.6), 0.1))
            for t, v in zip((1, 2, 3), scores)]
    df = pd.DataFrame(rows)
    assert choose(df, ["A", "B"], [1])[0] == "A"
    lto = leave_target_out(df, ["A", "B"], [1])
    assert lto["chosen"].tolist() == ["B", "A", "A"]
    assert lto["n_fits"].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="val_subjects"):
        leave_target_out(df.drop(columns="val_subjects"), ["A", "B"], [1])
    # one protocol's records at a time
    mixed = pd.concat([df, df.assign(protocol="subject_dependent", subject=df.subject + 3)])
    with pytest.raises(ValueError, match="mix protocols"):
        choose(mixed, ["A", "B"], [1])
