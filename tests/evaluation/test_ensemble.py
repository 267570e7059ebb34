"""Fold-model ensembles: averaged probabilities and metrics against hand computations, the
single-member case, the alignment checks and an end-to-end run on committed predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from eegmtl.evaluation.ensemble import (
    ENSEMBLE_FOLD,
    ENSEMBLE_SEED,
    average_members,
    ensemble_records,
    load_predictions,
)
from eegmtl.evaluation.records import load_records, tag_alignment
from eegmtl.evaluation.scoring import fold_predictions

RESULTS = Path(__file__).resolve().parents[2] / "pipelines" / "results"
REAL = "subject_dependent_MixNet_val-tuned__S1_F{}_seed0_271583fba2b2_predictions.csv"

#: P(class 1) of three members (folds 1-3) on test trials 10-13, labels y
Y = np.array([0, 1, 1, 0])
P1 = {1: [0.2, 0.9, 0.4, 0.6], 2: [0.4, 0.5, 0.7, 0.2], 3: [0.3, 0.4, 0.46, 0.95]}


def _write(folder: Path, fold: int, p1, *, subject: int = 1, trials=(10, 11, 12, 13), y=Y,
           pipeline: str = "Net[a]", cfg: str = "abc123", scores: bool = True,
           seed: int = 0) -> None:
    """One prediction file as the runner writes it (fold_predictions with a task)."""
    task = SimpleNamespace(protocol="subject_dependent", pipeline=pipeline, subject=subject,
                           fold=fold, seed=seed, config_hash=cfg)
    p1 = np.asarray(p1, dtype=float)
    proba = np.column_stack([1 - p1, p1])
    y_all = np.zeros(max(trials) + 1, dtype=int)
    y_all[list(trials)] = y
    df = fold_predictions(y_all, np.array(trials), (p1 > 0.5).astype(int),
                          proba if scores else p1 - 0.5, np.array([0, 1]), task)
    name = pipeline.replace("[", "_").replace("]", "_")
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"subject_dependent_{name}_S{subject}_F{fold}_seed{seed}_{cfg}"
                       "_predictions.csv", index=False)


def _synthetic(folder: Path, folds=(1, 2, 3), subjects=(1,)) -> None:
    for s in subjects:
        for f in folds:
            _write(folder, f, P1[f], subject=s)


def _member_records(times=(10.0, 20.0, 30.0)) -> pd.DataFrame:
    acc = [float(((np.asarray(P1[f]) > 0.5).astype(int) == Y).mean()) for f in (1, 2, 3)]
    return pd.DataFrame({
        "dataset": "D", "protocol": "subject_dependent", "pipeline": "Net[a]", "subject": 1,
        "fold": [1, 2, 3], "seed": 0, "accuracy": acc, "config_hash": "abc123",
        "config": json.dumps({"lr": 0.1}), "time": list(times), "n_epochs_trained": [5, 6, 7],
        "samples": 8, "versions": "v", "session": "test", "channels": 3, "n_sessions": 5,
        "n_classes": 2})


def test_average_and_metrics_equal_hand_computation(tmp_path: Path) -> None:
    _synthetic(tmp_path)
    preds = load_predictions(tmp_path, ["Net[a]"])
    avg = average_members(preds)
    # mean P(1) = [0.3, 0.6, 0.52, 0.5833...] -> predictions [0, 1, 1, 1]
    np.testing.assert_allclose(avg["score_1"], [0.3, 0.6, 0.52, 1.75 / 3])
    np.testing.assert_allclose(avg["score_0"], 1 - avg["score_1"])
    assert avg["y_pred"].tolist() == [0, 1, 1, 1]
    assert avg["trial"].tolist() == [10, 11, 12, 13]
    rec = ensemble_records(preds, _member_records()).iloc[0]
    assert rec.pipeline == "Net[a]+ens3" and rec.fold == ENSEMBLE_FOLD and rec.n_members == 3
    assert rec.accuracy == pytest.approx(3 / 4)
    assert rec.kappa == pytest.approx((0.75 - 0.5) / (1 - 0.5))  # p_e = .5*.25 + .5*.75
    assert rec.f1_macro == pytest.approx((2 / 3 + 0.8) / 2)  # F1(0) = 2/3, F1(1) = 0.8
    assert rec.roc_auc == pytest.approx(3 / 4) and rec.score == rec.roc_auc  # 3 of 4 pairs
    assert rec.time == pytest.approx(60.0) and rec.n_epochs_trained == 18
    cfg = json.loads(rec.config)
    assert cfg["member_config_hashes"] == ["abc123"] * 3 and cfg["member_folds"] == [1, 2, 3]
    assert cfg["member_config"] == {"lr": 0.1} and rec.dataset == "D"
    assert rec.member_accuracy_mean == pytest.approx(np.mean([0.5, 0.75, 0.25]))


def test_seed_ensembles_average_the_seeds_of_each_fold(tmp_path: Path) -> None:
    """``over="seed"``: the three seeds of one fold are averaged (here the P1 rows play
    seeds 0-2 of fold 1 and, shifted, of fold 2); the record keeps its fold, seed -1."""
    for seed, f in enumerate((1, 2, 3)):
        _write(tmp_path, 1, P1[f], seed=seed)
        _write(tmp_path, 2, P1[4 - f], seed=seed)
    preds = load_predictions(tmp_path, ["Net[a]"])
    avg = average_members(preds, over="seed")
    assert sorted(set(avg["fold"])) == [1, 2] and "seed" not in avg.columns
    for fold in (1, 2):  # the same three rows in another order: the same mean
        np.testing.assert_allclose(avg[avg.fold == fold]["score_1"], [0.3, 0.6, 0.52, 1.75 / 3])
    assert avg["seeds"].iloc[0] == "0;1;2" and avg["folds"].iloc[0] == "1;1;1"
    records = []
    for fold, order in ((1, (1, 2, 3)), (2, (3, 2, 1))):
        r = _member_records().assign(fold=fold, seed=[0, 1, 2])
        acc = [float(((np.asarray(P1[f]) > 0.5).astype(int) == Y).mean()) for f in order]
        records.append(r.assign(accuracy=acc))
    members = pd.concat(records, ignore_index=True)
    rec = ensemble_records(preds, members, over="seed")
    assert rec.pipeline.tolist() == ["Net[a]+seeds3"] * 2 and rec.fold.tolist() == [1, 2]
    assert set(rec.seed) == {ENSEMBLE_SEED} and set(rec.n_members) == {3}
    assert rec.accuracy.tolist() == pytest.approx([0.75, 0.75])
    assert json.loads(rec.config.iloc[0])["member_seeds"] == [0, 1, 2]
    assert rec.time.tolist() == pytest.approx([60.0, 60.0])
    with pytest.raises(ValueError, match=r"missing seed\(s\) \[3\]"):
        average_members(preds, over="seed", seeds=[0, 3])
    assert set(average_members(preds, over="seed", seeds=[0, 2])["n_members"]) == {2}
    with pytest.raises(ValueError, match="over must be one of"):
        average_members(preds, over="subject")
    # members of an axis not averaged over: refused, not ignored
    with pytest.raises(ValueError, match=r"seeds=\[0\] picks the members of an ensemble over "
                                         r"seeds, but over='fold' averages over folds"):
        average_members(preds, over="fold", seeds=[0])
    with pytest.raises(ValueError, match=r"folds=\[1\] .* over='seed' averages over seeds"):
        average_members(preds, over="seed", folds=[1])

    both = ensemble_records(preds, members, over="fold+seed")
    assert both.pipeline.tolist() == ["Net[a]+ens2+seeds3"] and both.n_members[0] == 6
    assert both.fold[0] == ENSEMBLE_FOLD and both.seed[0] == ENSEMBLE_SEED
    (tmp_path / "subject_dependent_Net_a__S1_F2_seed1_abc123_predictions.csv").unlink()
    with pytest.raises(ValueError, match=r"no predictions for fold/seed \[\(2, 1\)\]"):
        average_members(load_predictions(tmp_path, ["Net[a]"]), over="fold+seed")


def test_seed_ensembles_pair_with_the_single_fits_of_their_fold() -> None:
    """A seed ensemble (seed -1) is matched to the other pipeline's fits without the seed, by
    subject and fold; a fold ensemble (fold 0) without the fold."""
    from eegmtl.evaluation.stats import matched_runs

    single = pd.DataFrame({"pipeline": "B", "subject": [1, 1, 1, 1], "fold": [1, 1, 2, 2],
                           "seed": [0, 1, 0, 1], "accuracy": 0.5})
    seeds = pd.DataFrame({"pipeline": "A", "subject": [1, 1], "fold": [1, 2],
                          "seed": ENSEMBLE_SEED, "accuracy": 0.7})
    rows, n = matched_runs(pd.concat([seeds, single]), "A", "B")
    assert n == 2 and len(rows) == 6
    folds = pd.DataFrame({"pipeline": "A", "subject": [1], "fold": [ENSEMBLE_FOLD],
                          "seed": [1], "accuracy": 0.7})
    rows, n = matched_runs(pd.concat([folds, single]), "A", "B")
    assert n == 1 and sorted(rows[rows.pipeline == "B"].fold) == [1, 2]


def test_aligned_members_name_the_ensemble_ea(tmp_path: Path) -> None:
    """Members run with Euclidean alignment give an ensemble that tag_alignment calls +EA;
    members without it keep the plain name (and no alignment key in the config)."""
    _synthetic(tmp_path)
    preds = load_predictions(tmp_path, ["Net[a]"])
    aligned = _member_records()
    aligned["config"] = json.dumps({"lr": 0.1, "alignment": "transductive"})
    rec = ensemble_records(preds, aligned)
    assert json.loads(rec.config.iloc[0])["alignment"] == "transductive"
    assert tag_alignment(rec).pipeline.tolist() == ["Net[a]+ens3+EA"]
    from eegmtl.experiments.ensemble import comparison
    aligned = aligned.assign(kappa=0.0, roc_auc=0.5)
    text = comparison(tag_alignment(rec), tag_alignment(aligned))
    assert "Net[a]+ens3+EA (soft vote of 3 fold models) vs Net[a]+EA (single models)" in text
    assert "Net[a]+EA (one model; mean of 3 fits)" in text
    plain = ensemble_records(preds, _member_records())
    assert "alignment" not in json.loads(plain.config.iloc[0])
    assert tag_alignment(plain).pipeline.tolist() == ["Net[a]+ens3"]


def test_single_member_equals_its_record(tmp_path: Path) -> None:
    shutil.copy(RESULTS / "predictions" / REAL.format(1), tmp_path)
    sd = load_records(RESULTS / "sd.csv")
    member = sd[(sd.pipeline == "MixNet[val-tuned]") & (sd.subject == 1) & (sd.fold == 1)
                & (sd.seed == 0)].iloc[0]
    rec = ensemble_records(load_predictions(tmp_path, ["MixNet[val-tuned]"]), sd).iloc[0]
    assert rec.pipeline == "MixNet[val-tuned]+ens1"
    for m in ("accuracy", "f1_macro", "kappa", "roc_auc"):
        assert rec[m] == pytest.approx(member[m], abs=1e-12), m
    assert rec.time == pytest.approx(member.time)


def test_misaligned_trials_and_labels_raise(tmp_path: Path) -> None:
    _write(tmp_path / "a", 1, P1[1])
    _write(tmp_path / "a", 2, P1[2], trials=(10, 11, 12, 14))
    with pytest.raises(ValueError, match="different test trials"):
        average_members(load_predictions(tmp_path / "a", ["Net[a]"]))
    _write(tmp_path / "b", 1, P1[1])
    _write(tmp_path / "b", 2, P1[2], y=np.array([0, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"y_true differs .* trial\(s\) \[13\]"):
        average_members(load_predictions(tmp_path / "b", ["Net[a]"]))


def test_members_from_runs_that_loaded_other_subjects_align(tmp_path: Path) -> None:
    """``trial`` is a row of the loaded data: a fold run with ``--subjects 3..9`` numbers
    subject 3's trials from 0, a run with 1..9 from 480. With the trials' subject and session
    the members still pair trial by trial; a member scored on another session does not."""
    def write(folder: Path, fold: int, first_row: int, session: str = "3test") -> None:
        task = SimpleNamespace(protocol="subject_dependent", pipeline="Net[a]", subject=3,
                               fold=fold, seed=0, config_hash="abc123")
        rows = np.arange(first_row, first_row + 4)
        y_all = np.zeros(first_row + 4, dtype=int)
        y_all[rows] = Y
        meta = pd.DataFrame({"subject": 3, "session": session}, index=range(first_row + 4))
        p1 = np.asarray(P1[fold])
        df = fold_predictions(y_all, rows, (p1 > 0.5).astype(int), np.column_stack([1 - p1, p1]),
                              np.array([0, 1]), task, trial_meta=meta)
        folder.mkdir(parents=True, exist_ok=True)
        df.to_csv(folder / f"subject_dependent_Net_a__S3_F{fold}_seed0_abc123_predictions.csv",
                  index=False)

    write(tmp_path / "ok", 1, 0)
    write(tmp_path / "ok", 2, 480)
    avg = average_members(load_predictions(tmp_path / "ok", ["Net[a]"]))
    np.testing.assert_allclose(avg["score_1"], (np.asarray(P1[1]) + P1[2]) / 2)
    write(tmp_path / "bad", 1, 0)
    write(tmp_path / "bad", 2, 480, session="3train")
    with pytest.raises(ValueError, match="different test trials"):
        average_members(load_predictions(tmp_path / "bad", ["Net[a]"]))


def test_missing_folds_raise(tmp_path: Path) -> None:
    _synthetic(tmp_path, folds=(1, 2, 3), subjects=(1,))
    _synthetic(tmp_path, folds=(1, 3), subjects=(2,))
    preds = load_predictions(tmp_path, ["Net[a]"])
    with pytest.raises(ValueError, match=r"miss fold.*\[2\]"):
        average_members(preds)
    with pytest.raises(ValueError, match=r"subject=2.*missing fold\(s\) \[2\]"):
        average_members(preds, folds=[1, 2, 3])
    assert set(average_members(preds, folds=[1, 3])["n_members"]) == {2}


def test_bad_inputs_raise(tmp_path: Path) -> None:
    _synthetic(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="no prediction files of pipeline 'Other'"):
        load_predictions(tmp_path / "a", ["Other"])
    _write(tmp_path / "b", 1, P1[1], scores=False)
    with pytest.raises(ValueError, match="predict_proba"):
        average_members(load_predictions(tmp_path / "b", ["Net[a]"]))
    _synthetic(tmp_path / "c", folds=(1, 2))
    _write(tmp_path / "c", 2, P1[2], cfg="def456")
    with pytest.raises(ValueError, match="several fits per fold"):
        average_members(load_predictions(tmp_path / "c", ["Net[a]"]))
    preds = load_predictions(tmp_path / "a", ["Net[a]"])
    with pytest.raises(ValueError, match="no record of member"):
        ensemble_records(preds, _member_records().iloc[:2])
    wrong = _member_records().assign(accuracy=0.1)
    with pytest.raises(ValueError, match="different runs"):
        ensemble_records(preds, wrong)
    _write(tmp_path / "d", 1, [0.2, 1.3, 0.4, 0.6])
    with pytest.raises(ValueError, match="not class probabilities"):
        average_members(load_predictions(tmp_path / "d", ["Net[a]"]))


def test_cli_on_two_committed_prediction_files(tmp_path: Path) -> None:
    from eegmtl.experiments import main

    files = [RESULTS / "predictions" / REAL.format(f) for f in (1, 2)]
    for f in files:
        shutil.copy(f, tmp_path)
    out = tmp_path / "ens.csv"
    assert main("ensemble", ["--predictions-dir", str(tmp_path), "--pipelines",
                             "MixNet[val-tuned]", "--results", str(out), "--member-records",
                             str(RESULTS / "sd.csv")]) == 0
    rec = load_records(out)
    assert len(rec) == 1 and rec.pipeline[0] == "MixNet[val-tuned]+ens2"
    a, b = (pd.read_csv(f) for f in files)
    cols = ["score_0", "score_1"]
    pred = ((a[cols].to_numpy() + b[cols].to_numpy()) / 2).argmax(axis=1)
    assert rec.accuracy[0] == pytest.approx((pred == a["y_true"].to_numpy()).mean())
    sd = load_records(RESULTS / "sd.csv")
    members = sd[(sd.pipeline == "MixNet[val-tuned]") & (sd.subject == 1) & sd.fold.isin([1, 2])]
    assert rec.time[0] == pytest.approx(members.time.sum())
    summary = (tmp_path / "ens_summary.md").read_text()
    assert "MixNet[val-tuned]+ens2" in summary and "eegmtl ensemble" in summary
    assert "Wilcoxon" in summary and "eegmtl sd --methods EEGNet" in summary


def test_cli_reads_member_records_from_several_files(tmp_path: Path) -> None:
    from eegmtl.experiments import main

    for f in (1, 2):
        shutil.copy(RESULTS / "predictions" / REAL.format(f), tmp_path)
    sd = load_records(RESULTS / "sd.csv")
    fold2 = sd.fold == 2
    sd[~fold2].to_csv(tmp_path / "a.csv", index=False)  # fold 1 in one file ...
    sd[fold2].to_csv(tmp_path / "b.csv", index=False)  # ... fold 2 in another
    args = ["--predictions-dir", str(tmp_path), "--pipelines", "MixNet[val-tuned]",
            "--results", str(tmp_path / "ens.csv"), "--member-records"]
    with pytest.raises(SystemExit, match="no record of member"):
        main("ensemble", args + [str(tmp_path / "a.csv")])
    with pytest.raises(SystemExit, match=r"\['.*missing.csv'\] not found"):
        main("ensemble", args + [str(tmp_path / "a.csv"), str(tmp_path / "missing.csv")])
    assert main("ensemble", args + [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]) == 0
    rec = load_records(tmp_path / "ens.csv")
    members = sd[(sd.pipeline == "MixNet[val-tuned]") & (sd.subject == 1) & sd.fold.isin([1, 2])]
    assert rec.time[0] == pytest.approx(members.time.sum())


def test_cli_seed_ensembles_of_committed_predictions(tmp_path: Path) -> None:
    """``eegmtl ensemble --over seed`` on the committed aligned EEGTCNet fits of subject 1,
    folds 1-2, seeds 0-2: one record per fold, equal to the hand-averaged probabilities."""
    from eegmtl.experiments import main

    files = {(f, s): RESULTS / "predictions_ea" / (
        f"subject_dependent_EEGTCNet_S1_F{f}_seed{s}_7ea4ac552075_predictions.csv")
        for f in (1, 2) for s in (0, 1, 2)}
    for path in files.values():
        shutil.copy(path, tmp_path)
    out = tmp_path / "seeds.csv"
    assert main("ensemble", ["--over", "seed", "--predictions-dir", str(tmp_path),
                             "--pipelines", "EEGTCNet", "--results", str(out),
                             "--member-records", str(RESULTS / "sd_sota_ea.csv"),
                             str(RESULTS / "sd_seeds_ea.csv")]) == 0
    rec = load_records(out).sort_values("fold")
    assert rec.pipeline.tolist() == ["EEGTCNet+seeds3"] * 2 and rec.fold.tolist() == [1, 2]
    assert (rec.seed == ENSEMBLE_SEED).all()
    for fold, acc in zip((1, 2), rec.accuracy):
        frames = [pd.read_csv(files[(fold, s)]) for s in (0, 1, 2)]
        mean = np.mean([f[["score_0", "score_1"]].to_numpy() for f in frames], axis=0)
        classes = np.array([0, 1])
        truth = frames[0]["y_true"].to_numpy()
        assert acc == pytest.approx((classes[mean.argmax(axis=1)] == truth).mean())
    summary = (tmp_path / "seeds_summary.md").read_text()
    assert "# Seed ensembles (SD)" in summary
    assert "EEGTCNet+seeds3+EA (soft vote of 3 seeds) vs EEGTCNet+EA" in summary
    assert "mean of 6 fits" in summary
