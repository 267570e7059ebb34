"""``eegmtl benchmark --preset tiny`` end to end (synthetic and real data), resume, estimate."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from eegmtl import cli
from eegmtl.experiments import benchmark
from eegmtl.parallel import WorkerDiedError

METHODS = ["CSP+LDA", "MixNet+ew"]


def _records(folder, stem):
    return pd.read_csv(folder / f"benchmark_{stem}.csv")


def test_tiny_preset_synthetic_runs_every_stage_and_resumes(tmp_path, capsys):
    argv = ["benchmark", "--preset", "tiny", "--synthetic", "--n-jobs", "1", "--no-progress",
            "--results", str(tmp_path), "--methods", *METHODS]
    assert cli.main(argv) == 0
    sd = _records(tmp_path, "tiny_synthetic_sd")
    si = _records(tmp_path, "tiny_synthetic_si")
    assert sorted(sd["pipeline"]) == sorted(METHODS) == sorted(si["pipeline"])
    assert set(sd["protocol"]) == {"subject_dependent"} and set(si["subject"]) == {1}
    assert (sd.loc[sd["pipeline"] == "MixNet+ew", "n_epochs_trained"] == 1).all()
    aligned = tmp_path / "benchmark_tiny_synthetic_si_transductive.csv"
    assert aligned.exists() == benchmark.runner_alignment()
    assert (tmp_path / "benchmark_tiny_synthetic_sd_summary.md").exists()
    capsys.readouterr()
    # a rerun finds every fit done: same records, no new fit
    assert cli.main(argv) == 0
    pd.testing.assert_frame_equal(_records(tmp_path, "tiny_synthetic_sd"), sd)
    assert "MixNet+ew S1" not in capsys.readouterr().err


@pytest.mark.realdata
def test_tiny_preset_real_data_sd(tmp_path, bci2b_dir):
    argv = ["benchmark", "--preset", "tiny", "--protocols", "sd", "--n-jobs", "1",
            "--no-progress", "--results", str(tmp_path), "--methods", *METHODS]
    assert cli.main(argv) == 0
    sd = _records(tmp_path, "tiny_sd")
    assert sorted(sd["pipeline"]) == sorted(METHODS)
    assert sd["accuracy"].between(0, 1).all() and (sd["samples_test"] == 240).all()


def test_time_limit_leaves_the_fits_that_would_not_end_in_time_for_the_next_run(
        tmp_path, capsys):
    """``--time-limit``: no fit starts that would end after the limit by its recorded fit time
    (here 1 h against 600 s); the stages say how many fits are left and the same command
    without the limit resumes them."""
    import pandas as pd

    ref = tmp_path / "ref.csv"
    pd.DataFrame([{"protocol": "subject_dependent", "pipeline": "CSP+LDA", "time": 3600.0,
                   "n_epochs_trained": float("nan")}]).to_csv(ref, index=False)
    argv = ["benchmark", "--preset", "tiny", "--synthetic", "--n-jobs", "1", "--no-progress",
            "--results", str(tmp_path), "--methods", "CSP+LDA", "--protocols", "sd",
            "--reference", str(ref)]
    assert cli.main([*argv, "--time-limit", "600"]) == 0
    out = capsys.readouterr().out
    assert "1 fits left for the next run (time limit)" in out
    assert "time limit: 1 fits not started; run the same command again" in out
    assert not (tmp_path / "benchmark_tiny_synthetic_sd.csv").exists()
    assert (tmp_path / "benchmark_tiny_synthetic_sd_summary.md").exists()
    # a recorded fit time that ends in time: the fit runs
    pd.DataFrame([{"protocol": "subject_dependent", "pipeline": "CSP+LDA", "time": 1.0,
                   "n_epochs_trained": float("nan")}]).to_csv(ref, index=False)
    assert cli.main([*argv, "--time-limit", "600"]) == 0
    assert len(_records(tmp_path, "tiny_synthetic_sd")) == 1
    for limit in ("0", "5"):  # not above the 10 s kept for the summaries
        with pytest.raises(SystemExit, match="--time-limit must be more than the 10 s"):
            cli.main([*argv, "--time-limit", limit])


@pytest.mark.parametrize("stop, status, says", [
    (KeyboardInterrupt, 130, "interrupted"),
    (lambda: WorkerDiedError("a worker process died during a fit"), 1,
     "error: a worker process died")])
def test_interrupted_benchmark_writes_the_summaries_of_what_it_recorded(tmp_path, monkeypatch,
                                                                        capsys, stop, status,
                                                                        says):
    """Ctrl-C (or SIGTERM), or a worker that died, in the second stage: status 130 (1), every
    stage's summary written, the command logged (as interrupted) only in the record file it
    added to."""
    import eegmtl.evaluation.runner as runner

    real, calls = runner.run_protocol, []

    def stopping(*args, **kwargs):
        calls.append(kwargs["protocol"] if "protocol" in kwargs else args[0])
        if len(calls) == 2:
            raise stop()
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_protocol", stopping)
    argv = ["benchmark", "--preset", "tiny", "--synthetic", "--n-jobs", "1", "--no-progress",
            "--results", str(tmp_path), "--methods", "CSP+LDA", "--alignment", "none"]
    assert cli.main(argv) == status
    assert says in capsys.readouterr().err
    sd_log = (tmp_path / "benchmark_tiny_synthetic_sd.csv.commands.log").read_text()
    assert sd_log.strip().endswith("# interrupted after 1 new records")
    assert (tmp_path / "benchmark_tiny_synthetic_si.csv.commands.log").read_text() == ""
    assert (tmp_path / "benchmark_tiny_synthetic_si_summary.md").exists()
    assert len(_records(tmp_path, "tiny_synthetic_sd")) == 1


def test_shards_of_a_time_limited_run_share_one_deadline():
    import argparse
    import time

    from eegmtl.experiments._common import elapsed_s, start_command

    # counted from the start of the command, less the summaries' margin: a command run after
    # others in the same process gets its whole limit
    start_command()
    start_command()
    started = time.time() - elapsed_s()
    assert elapsed_s() < 0.5
    end = benchmark.run_deadline(argparse.Namespace(time_limit=600.0, deadline=None))
    assert end == pytest.approx(started + 600 - benchmark.SUMMARY_MARGIN_S, abs=0.5)
    assert benchmark.run_deadline(argparse.Namespace(time_limit=600.0, deadline=123.0)) == 123.0
    assert benchmark.run_deadline(argparse.Namespace(time_limit=None, deadline=None)) is None


def test_shards_get_the_deadline_and_stop_with_the_interrupted_parent(monkeypatch):
    """A multi-GPU run: every shard's command carries the parent's one deadline; Ctrl-C or
    SIGTERM to the parent alone (here: raised where the parent waits for its shards, as the
    signal handler would) stops the shards before the parent goes on (no orphans)."""
    import argparse
    import signal
    import subprocess
    import sys

    started = []

    class Shard(subprocess.Popen):  # the parent's first wait for a shard is interrupted
        interrupted = False

        def wait(self, timeout=None):
            if timeout is None and not Shard.interrupted:
                Shard.interrupted = True
                raise KeyboardInterrupt
            return super().wait(timeout)

    def fake_popen(cmd, env):  # a shard that would run for a minute
        proc = Shard([sys.executable, "-c", "import time; time.sleep(60)"])
        started.append((cmd, env["CUDA_VISIBLE_DEVICES"], proc))
        return proc

    monkeypatch.setattr(benchmark.subprocess, "Popen", fake_popen)
    args = argparse.Namespace(argv=["--preset", "full"], time_limit=None, deadline=1234.5)
    with pytest.raises(KeyboardInterrupt):
        benchmark._run_shards(args, 2)
    assert [(c[-4:], gpu) for c, gpu, _ in started] == [
        (["--shard", "0/2", "--deadline", "1234.5"], "0"),
        (["--shard", "1/2", "--deadline", "1234.5"], "1")]
    # none left running: each was sent SIGTERM (a shard stops on it like on Ctrl-C)
    assert [proc.poll() for _, _, proc in started] == [-signal.SIGTERM] * 2


def test_unknown_method_is_a_clear_error():
    with pytest.raises(SystemExit, match="unknown method"):
        benchmark.select_methods(["NoSuchNet"], [])


def test_estimate_without_records_says_so(tmp_path, capsys):
    """No recorded fit time: the printed estimate says it has none (not "0.0 min")."""
    argv = ["benchmark", "--preset", "tiny", "--synthetic", "--estimate", "--n-jobs", "1",
            "--methods", *METHODS, "--reference", str(tmp_path / "none.csv")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "estimate: none (no recorded fit time" in out and "0.0 min" not in out
    # each pipeline's line says how many of its fits are recorded: none here; one SD fit, two
    # SI fits (with and without alignment) in the tiny preset
    assert "subject_dependent    CSP+LDA" in out
    line = next(x for x in out.splitlines() if "subject_independent  CSP+LDA" in x)
    assert "0/2    done,    2 fits" in line


def test_seed_free_pipelines_run_for_the_first_seed_only(tmp_path):
    plan = benchmark.stages(benchmark.PRESETS["full"], ["sd"], [0, 1, 2], tmp_path, "full", None)
    assert [benchmark.stage_methods(st, ["CSP+LDA", "EEGNet"], 0) for st in plan] == [
        ["CSP+LDA", "EEGNet"], ["EEGNet"], ["EEGNet"]]
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"protocol": ["subject_dependent"] * 2, "pipeline": ["CSP+LDA", "EEGNet"],
                  "time": [1.0, 10.0], "n_epochs_trained": [None, 5.0]}).to_csv(ref, index=False)
    _, rows = benchmark.estimate(plan, {"subject_dependent": ["CSP+LDA", "EEGNet"]}, 9, 1, [ref])
    assert {r[1]: r[2] for r in rows} == {"CSP+LDA": 45, "EEGNet": 135}


@pytest.mark.realdata
def test_seed_free_pipelines_give_the_same_records_for_every_seed(tmp_path, bci2b_dir):
    """What lets the benchmark fit SEED_FREE pipelines once: two seeds, same fits."""
    from eegmtl.evaluation.runner import run_protocol

    df = run_protocol("sd", list(benchmark.SEED_FREE), subjects=[1], folds=[1], seeds=(0, 1),
                      progress=False, predictions_dir=tmp_path)
    assert df["fit_seed"].nunique() == 2  # the seeds differ...
    metrics = ["accuracy", "f1_macro", "kappa", "roc_auc", "val_accuracy"]
    a, b = (df[df["seed"] == s].set_index("pipeline")[metrics].sort_index() for s in (0, 1))
    pd.testing.assert_frame_equal(a, b)  # ...the records do not
    for m in benchmark.SEED_FREE:
        preds = [pd.read_csv(p).drop(columns=["seed", "fit_seed"], errors="ignore")
                 for p in sorted(tmp_path.glob(f"*_{m}_S1_F1_seed*"))]
        assert len(preds) == 2 and len(preds[0]) == 240  # the two test sessions' trials
        pd.testing.assert_frame_equal(preds[0], preds[1])


def test_durations_are_printed_in_units_people_read():
    from eegmtl.experiments._common import minutes

    assert minutes(750) == "12.5 min"
    assert minutes(9000) == "150 min (2.5 h)"
    assert minutes(47204 * 60) == "47204 min (787 h, 32.8 days)"


def test_tiny_preset_with_batched_fits(tmp_path):
    """``--batch-fits``: the braindecode pipeline's fits go through fit_batched (recorded in
    step_config), MixNet's are fitted as before."""
    argv = ["benchmark", "--preset", "tiny", "--synthetic", "--protocols", "sd", "--n-jobs",
            "1", "--no-progress", "--results", str(tmp_path), "--methods", "EEGNet[val]",
            "MixNet+ew", "--batch-fits", "4"]
    assert cli.main(argv) == 0
    sd = _records(tmp_path, "tiny_synthetic_sd").set_index("pipeline")
    assert json.loads(sd.loc["EEGNet[val]", "step_config"]) == {"batched_fits": 1}
    assert "batched_fits" not in str(sd.loc["MixNet+ew", "step_config"])


@pytest.mark.realdata
def test_config_hash_does_not_depend_on_the_protocols_run(tmp_path, bci2b_dir):
    """An SD-only run records its SD fits under the same config hash as a run of both
    protocols (it once let run_protocol load the data and name them differently)."""
    hashes = []
    for i, protocols in enumerate((["sd"], ["sd", "si"])):
        out = tmp_path / str(i)
        argv = ["benchmark", "--preset", "tiny", "--protocols", *protocols, "--n-jobs", "1",
                "--no-progress", "--results", str(out), "--methods", "CSP+LDA",
                "--alignment", "none"]
        assert cli.main(argv) == 0
        hashes.append(set(_records(out, "tiny_sd")["config_hash"]))
    assert hashes[0] == hashes[1] and len(hashes[0]) == 1


def test_cpu_fill_pipelines_are_registered_and_left_out_of_the_gpu_lane():
    """``pipelines/full_cpu_fill.sh --list`` (the CPU share of the full preset, which ``.ci/gpu
    stage`` writes as the GPU lane's default --exclude) names registered pipelines only."""
    import subprocess
    from pathlib import Path

    from eegmtl.evaluation.methods import available_methods

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["bash", "pipelines/full_cpu_fill.sh", "--list"], cwd=root,
                         capture_output=True, text=True, check=True, timeout=30)
    names = out.stdout.split()
    assert len(names) == 13 and len(set(names)) == 13
    assert set(names) <= set(available_methods())
    assert benchmark.select_methods(None, ["CSP+LDA", "FBCSP+SVM", "TS+SVM", *names])
    assert "full_cpu_fill.sh --list" in (root / ".ci" / "gpu").read_text()


@pytest.mark.parametrize("extra, expected", [
    ([], "cache"), (["--checkpoint-dir", "CKPT"], "CKPT"), (["--no-fit-checkpoints"], None)])
def test_benchmark_fits_write_epoch_checkpoints_where_asked(tmp_path, monkeypatch, extra,
                                                            expected):
    """Like the protocol scripts, the benchmark hands its fits an epoch-checkpoint folder (the
    cache's ``eeg_fits`` by default), so that stopping it loses no fit in progress."""
    import eegmtl.evaluation.runner as runner

    real, seen = runner.run_protocol, []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("checkpoint_dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_protocol", spy)
    monkeypatch.setenv("EEGMTL_CACHE_DIR", str(tmp_path / "cache"))
    extra = [str(tmp_path / e) if e == "CKPT" else e for e in extra]
    argv = ["benchmark", "--preset", "tiny", "--synthetic", "--n-jobs", "1", "--no-progress",
            "--results", str(tmp_path), "--methods", "CSP+LDA", "--alignment", "none",
            "--protocols", "sd", *extra]
    assert cli.main(argv) == 0
    want = {"cache": tmp_path / "cache" / "eeg_fits", "CKPT": tmp_path / "CKPT",
            None: None}[expected]
    assert seen and all(s == want for s in seen)
