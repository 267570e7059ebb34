"""Records of the same fits made by another command are taken over, and only those."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from eegmtl import cli
from eegmtl._io import config_hash, stable_json
from eegmtl.evaluation.adopt import adoptable, relabel
from eegmtl.evaluation.records import load_records
from eegmtl.evaluation.runner import DEFAULT_DATA_SOURCE, DEFAULT_DATASET


def _config(data: str, **method) -> str:
    return stable_json({"protocol": "subject_dependent", "n_folds": 5, "split_seed": 42,
                        "data": data, "method_config": {"lr": 0.001, "device": "cuda",
                                                        **method}})


def _hash(config: str) -> str:
    full = json.loads(config)
    full["method_config"].pop("device")  # an unhashed key
    return config_hash(full)


def _record(data: str, acc: float, step_config: str = "", **method) -> dict:
    cfg = _config(data, **method)
    return {"protocol": "subject_dependent", "pipeline": "EEGNet", "subject": 1, "fold": 1,
            "seed": 0, "config_hash": _hash(cfg), "config": cfg, "accuracy": acc,
            "step_config": step_config, "adopted_from": f"x.csv:{_hash(cfg)}"}


def test_relabel_computes_the_runners_hash():
    mine = _config(DEFAULT_DATASET)
    assert relabel(_config(DEFAULT_DATA_SOURCE)) == (mine, _hash(mine))
    assert relabel(_config("load_bci2b(source='moabb')")) is None  # other data: never


def test_only_the_exact_planned_fit_is_adopted_and_a_fit_trained_alone_is_preferred():
    planned = _hash(_config(DEFAULT_DATASET))
    todo = pd.DataFrame([{"protocol": "subject_dependent", "pipeline": "EEGNet", "subject": 1,
                          "fold": 1, "seed": 0, "config_hash": planned, "checkpoint": False}])
    candidates = pd.DataFrame([
        _record(DEFAULT_DATA_SOURCE, 0.5, step_config='{"batched_fits": 5}'),
        _record(DEFAULT_DATA_SOURCE, 0.7, lr=0.01),          # another setting: not this fit
        _record("load_bci2b(source='moabb')", 0.8),          # other data: not this fit
        _record(DEFAULT_DATA_SOURCE, 0.6),                   # trained alone: preferred
    ])
    got = adoptable(todo, candidates)
    assert len(got) == 1
    row = got.iloc[0]
    assert row["accuracy"] == 0.6 and row["config_hash"] == planned
    assert json.loads(row["config"])["data"] == DEFAULT_DATASET
    assert row["adopted_from"].startswith("x.csv:") and row["adopted_from"] != f"x.csv:{planned}"
    # the batched record is taken when it is the only one; the others never
    assert adoptable(todo, candidates.iloc[[0]]).iloc[0]["accuracy"] == 0.5
    assert adoptable(todo, candidates.iloc[[1, 2]]).empty
    assert adoptable(todo.iloc[:0], candidates).empty


@pytest.mark.realdata
def test_benchmark_adopts_the_records_of_eegmtl_sd(tmp_path, bci2b_dir, capsys):
    """A fit recorded by `eegmtl sd` (the runner loading the data: another data label, another
    hash) is taken over by `eegmtl benchmark --adopt` instead of being refitted, and the run
    then has nothing left to fit; without --adopt the benchmark would refit it."""
    sd = tmp_path / "sd.csv"
    assert cli.main(["sd", "--methods", "CSP+LDA", "--subjects", "1", "--only-folds", "1",
                     "--results", str(sd), "--no-progress"]) == 0
    made = load_records(sd)
    out = tmp_path / "bench"
    argv = ["benchmark", "--preset", "tiny", "--protocols", "sd", "--n-jobs", "1",
            "--no-progress", "--results", str(out), "--methods", "CSP+LDA"]
    assert cli.main([*argv, "--estimate", "--adopt", str(sd)]) == 0  # a dry run writes nothing
    assert "adoptable: subject_dependent seed 0: 1 records (CSP+LDA 1)" in capsys.readouterr().out
    assert not (out / "benchmark_tiny_sd.csv").exists()
    assert cli.main([*argv, "--adopt", str(sd)]) == 0
    printed = capsys.readouterr().out
    assert "adopted: subject_dependent seed 0: 1 records (CSP+LDA 1)" in printed
    assert "(1 with a record, 0 to run)" in printed  # adopted before the run counts its fits
    got = load_records(out / "benchmark_tiny_sd.csv")
    assert len(got) == 1 and got["adopted_from"].iloc[0] == f"sd.csv:{made['config_hash'].iloc[0]}"
    assert got["accuracy"].iloc[0] == made["accuracy"].iloc[0]
    assert got["config_hash"].iloc[0] != made["config_hash"].iloc[0]
    # the adopted record is the benchmark's own fit: a rerun has nothing to fit
    assert cli.main(argv) == 0
    assert "(1 with a record, 0 to run)" in capsys.readouterr().out
    assert len(load_records(out / "benchmark_tiny_sd.csv")) == 1
    # and a benchmark of its own computes the same record under the same hash
    own = tmp_path / "own"
    assert cli.main([*argv[:-4], "--results", str(own), "--methods", "CSP+LDA"]) == 0
    mine = load_records(own / "benchmark_tiny_sd.csv")
    assert mine["config_hash"].iloc[0] == got["config_hash"].iloc[0]
    assert mine["accuracy"].iloc[0] == got["accuracy"].iloc[0]


def test_adopt_names_a_missing_file(tmp_path):
    with pytest.raises(SystemExit, match="no such record file"):
        cli.main(["benchmark", "--preset", "tiny", "--synthetic", "--protocols", "sd",
                  "--methods", "CSP+LDA", "--results", str(tmp_path), "--adopt",
                  str(tmp_path / "nope.csv")])


def test_a_taken_over_record_and_its_original_count_once(tmp_path):
    """Reports and estimates read several record files: a record adopted into one of them is
    the same run as its original in the other, not a second run."""
    from eegmtl.evaluation.records import combine_records, drop_repeated_runs, write_records

    original = pd.DataFrame([_record(DEFAULT_DATA_SOURCE, 0.6)]).drop(columns="adopted_from")
    planned = _hash(_config(DEFAULT_DATASET))
    todo = original[["protocol", "pipeline", "subject", "fold", "seed"]].assign(
        config_hash=planned)
    taken = adoptable(todo, original.assign(adopted_from="a.csv:" + original["config_hash"]))
    other = pd.DataFrame([{**_record(DEFAULT_DATA_SOURCE, 0.9, lr=0.1), "adopted_from": None}])
    both = pd.concat([original, taken, other], ignore_index=True)
    assert len(both) == 3 and len(drop_repeated_runs(both)) == 2
    write_records(original, tmp_path / "a.csv")
    write_records(taken, tmp_path / "b.csv")
    assert len(combine_records([tmp_path / "a.csv", tmp_path / "b.csv"])) == 1
