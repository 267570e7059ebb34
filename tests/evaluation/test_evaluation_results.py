"""Record I/O, config hashes, mean ± SD aggregation, markdown, MOABB export, selection."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from eegmtl._io import config_hash
from eegmtl.evaluation.records import (
    combine_records,
    load_records,
    merge_records,
    write_records,
)
from eegmtl.evaluation.tables import (
    per_subject,
    select_on_validation,
    summarize,
    to_markdown,
    to_moabb,
)


def _records(n_subjects: int = 4, n_folds: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for pipe, base in (("A", 0.7), ("B", 0.6)):
        for s in range(1, n_subjects + 1):
            for f in range(1, n_folds + 1):
                acc = float(np.clip(base + 0.05 * s + rng.normal(0, 0.03), 0, 1))
                rows.append({"dataset": "BNCI2014_004-export", "protocol": "subject_dependent",
                             "pipeline": pipe, "subject": s, "fold": f, "seed": 0,
                             "accuracy": acc, "f1_macro": acc - 0.01, "kappa": 2 * acc - 1,
                             "roc_auc": acc + 0.02, "score": acc + 0.02, "samples": 288,
                             "samples_test": 240, "time": 0.1, "session": "3test+4test",
                             "channels": 3, "n_sessions": 5, "n_classes": 2,
                             "val_accuracy": acc - 0.05, "config_hash": f"h{pipe}"})
    return pd.DataFrame(rows)


def test_config_hash_is_stable_and_sensitive():
    a = {"lr": 1e-3, "layers": (4, 8), "name": "x", "nested": {"b": 1, "a": 2}}
    b = {"nested": {"a": 2, "b": 1}, "name": "x", "layers": [4, 8], "lr": 0.001}
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 12 and all(c in "0123456789abcdef" for c in config_hash(a))
    assert config_hash(a) != config_hash({**a, "lr": 2e-3})
    assert config_hash({"x": np.float64(0.5)}) == config_hash({"x": 0.5})
    with pytest.raises(TypeError, match="JSON-like"):
        config_hash({"f": object()})


def test_summarize_matches_hand_computation():
    df = _records()
    out = summarize(df).set_index("pipeline")
    for pipe in ("A", "B"):
        v = df.loc[df.pipeline == pipe, "accuracy"].to_numpy()
        n = len(v)  # 4 subjects x 3 folds = 12 rows, all used (the paper's aggregation)
        mean = sum(v) / n
        sd = (sum((x - mean) ** 2 for x in v) / (n - 1)) ** 0.5  # ddof = 1
        assert out.loc[pipe, "n"] == n == 12
        assert out.loc[pipe, "accuracy_mean"] == pytest.approx(mean, abs=1e-12)
        assert out.loc[pipe, "accuracy_std"] == pytest.approx(sd, abs=1e-12)
        assert out.loc[pipe, "n_subjects"] == 4 and out.loc[pipe, "n_folds"] == 3
    # subject level: mean over folds first, then mean and SD over 4 subjects
    sub = summarize(df, level="subject").set_index("pipeline")
    per = df[df.pipeline == "A"].groupby("subject").accuracy.mean().to_numpy()
    m = per.sum() / 4
    assert sub.loc["A", "accuracy_mean"] == pytest.approx(m)
    assert sub.loc["A", "accuracy_std"] == pytest.approx(
        np.sqrt(((per - m) ** 2).sum() / 3))


def test_per_subject_and_markdown_come_from_records():
    df = _records()
    tab = per_subject(df, "accuracy")
    assert list(tab.columns) == [1, 2, 3, 4]
    hand = df[(df.pipeline == "B") & (df.subject == 2)].accuracy.mean()
    assert tab.loc[("subject_dependent", "B"), 2] == pytest.approx(hand)
    md = to_markdown(df, metrics=("accuracy", "f1_macro"), per_subject_metric="accuracy")
    v = df.loc[df.pipeline == "A", "accuracy"]
    assert f"| subject_dependent | A | {100 * v.mean():.2f} ± {100 * v.std(ddof=1):.2f} |" in md
    assert f"{100 * hand:.2f}" in md
    assert "| protocol | pipeline | S1 | S2 | S3 | S4 |" in md


def test_write_is_atomic_and_roundtrips(tmp_path):
    df = _records().assign(config=json.dumps({"a": 1}))
    path = tmp_path / "sub" / "r.csv"
    write_records(df, path)
    assert os.listdir(path.parent) == ["r.csv"]  # no temporary file left behind
    back = load_records(path)
    assert list(back.columns[:6]) == ["dataset", "protocol", "pipeline", "subject", "fold", "seed"]
    pd.testing.assert_series_equal(back["accuracy"], df["accuracy"])
    assert back["config_hash"].tolist() == df["config_hash"].tolist()
    assert load_records(tmp_path / "missing.csv").empty


def test_select_on_validation_uses_validation_only():
    df = _records()
    # make B better on validation while A stays better on test
    df.loc[df.pipeline == "B", "val_accuracy"] += 0.5
    best, table = select_on_validation(df, "pipeline")
    assert best == "B" and bool(table.loc["B", "selected"])
    assert table.loc["A", "mean"] == pytest.approx(df[df.pipeline == "A"].val_accuracy.mean())
    for metric in ("accuracy", "roc_auc", "score", "f1_macro"):
        with pytest.raises(ValueError, match="validation folds only"):
            select_on_validation(df, "pipeline", metric=metric)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::UserWarning")
def test_moabb_analysis_accepts_to_moabb_output():
    pytest.importorskip("moabb")
    import matplotlib

    matplotlib.use("Agg")
    from moabb.analysis.meta_analysis import compute_dataset_statistics
    from moabb.analysis.plotting import score_plot

    df = _records()
    mo = to_moabb(df)
    for col in ("score", "time", "samples", "subject", "session", "channels", "n_sessions",
                "dataset", "pipeline"):
        assert col in mo.columns
    assert len(mo) == 8  # folds averaged per (pipeline, subject)
    expected = df[(df.pipeline == "A") & (df.subject == 1)].roc_auc.mean()
    assert mo[(mo.pipeline == "A") & (mo.subject == 1)].score.item() == pytest.approx(expected)
    stats = compute_dataset_statistics(mo)
    assert set(stats.pipe1) == {"A", "B"} and (stats.nsub == 4).all()
    fig, _ = score_plot(mo)
    assert fig is not None
    matplotlib.pyplot.close("all")
    acc = to_moabb(df, score="accuracy")
    expected = df[(df.pipeline == "B") & (df.subject == 3)].accuracy.mean()
    assert acc[(acc.pipeline == "B") & (acc.subject == 3)].score.item() == pytest.approx(expected)


def test_merge_records_keeps_rows_of_concurrent_writers(tmp_path):
    """Two runs appending to one file: neither loses the other's rows; same key is replaced."""
    from concurrent.futures import ProcessPoolExecutor

    from eegmtl.evaluation.records import load_records, merge_records

    df = _records(n_subjects=4, n_folds=3)
    path = tmp_path / "r.csv"
    halves = [df.iloc[i::2] for i in range(2)]
    with ProcessPoolExecutor(2) as ex:
        futures = [ex.submit(_merge_rows_one_by_one, h, path) for h in halves]
        for f in futures:
            f.result()
    out = load_records(path)
    assert len(out) == len(df)
    changed = df.iloc[:1].copy()
    changed["accuracy"] = 0.123
    merge_records(changed, path)
    out = load_records(path)
    assert len(out) == len(df)
    key = changed.iloc[0]
    row = out[(out.pipeline == key.pipeline) & (out.subject == key.subject)
              & (out.fold == key.fold)]
    assert row.accuracy.tolist() == [0.123]


def _merge_rows_one_by_one(rows, path):
    from eegmtl.evaluation.records import merge_records

    for i in range(len(rows)):
        merge_records(rows.iloc[i:i + 1], path)


@pytest.mark.parametrize("name", ["sd.csv", "si.csv", "ablations_sd.csv"])
def test_merging_into_committed_records_changes_no_byte(tmp_path, name):
    """A committed record merged again (same key) leaves the file byte for byte the same, and
    every committed row is found as done (resume)."""
    import shutil
    from pathlib import Path

    from eegmtl.evaluation.records import done_keys

    committed = Path(__file__).resolve().parents[2] / "pipelines" / "results" / name
    if not committed.is_file():
        pytest.skip(f"{name} is not in this checkout")
    path = tmp_path / name
    shutil.copy2(committed, path)
    df = load_records(path)
    merge_records(df.iloc[[3, 0]], path)
    assert path.read_bytes() == committed.read_bytes()
    assert len(done_keys(df)) == len(df)


def test_combine_records_tags_alignment_filters_folds_and_keeps_each_run_once(tmp_path):
    def rows(pipeline, acc, config="{}", folds=(1, 2)):
        return pd.DataFrame({"protocol": "subject_dependent", "pipeline": pipeline,
                             "subject": 1, "fold": list(folds), "seed": 0, "accuracy": acc,
                             "config_hash": "h" + pipeline, "config": config})

    aligned = json.dumps({"alignment": "transductive"})
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.concat([rows("MixNet", 0.7), rows("MixNet", 0.8, aligned)]).to_csv(a, index=False)
    # b repeats MixNet's fold 1 (another value: the first file wins) and adds EEGNet
    pd.concat([rows("MixNet", 0.1, folds=(1,)), rows("EEGNet", 0.6)]).to_csv(b, index=False)
    df = combine_records([a, b])
    assert sorted(df["pipeline"].unique()) == ["EEGNet", "MixNet", "MixNet+EA"]
    assert len(df) == 6 and (df.loc[df["pipeline"] == "MixNet", "accuracy"] == 0.7).all()
    assert set(combine_records([a, b], folds=[2])["fold"]) == {2}
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        combine_records([a, tmp_path / "missing.csv"])


def test_signed_differences_never_read_minus_zero():
    from eegmtl.evaluation.tables import signed

    assert [signed(v) for v in (0.0125, -0.004, -0.00001, 0.0, float("nan"))] == [
        "+1.25", "-0.40", "0.00", "0.00", "–"]
    assert signed(-0.0004, scale=1000, decimals=1) == "-0.4"
