"""``eegmtl benchmark --preset tiny`` end to end (synthetic and real data), resume, estimate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eegmtl import cli
from eegmtl.evaluation.estimate import timed_on_gpu
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


def test_stages_are_seed_major_and_estimate_counts_fits(tmp_path):
    preset = benchmark.PRESETS["full"]
    plan = benchmark.stages(preset, ["sd", "si"], [0, 1, 2], tmp_path, "full", "transductive")
    assert [(s.protocol, s.alignment) for s in plan[:3]] == [
        ("subject_dependent", None), ("subject_independent", None),
        ("subject_independent", "transductive")]
    assert [s.seed for s in plan] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert plan[2].records.name == "benchmark_full_si_transductive.csv"
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"protocol": ["subject_dependent", "subject_independent"],
                  "pipeline": ["A", "A"], "time": [10.0, 100.0],
                  "n_epochs_trained": [20.0, 20.0]}).to_csv(ref, index=False)
    methods = {"subject_dependent": ["A"], "subject_independent": ["A"]}
    wall, rows = benchmark.estimate(plan, methods, 9, 10, [ref])
    fits = {r[0]: r[2] for r in rows}
    assert fits == {"subject_dependent": 9 * 5 * 3, "subject_independent": 9 * 1 * 3 * 2}
    assert wall == pytest.approx((135 * 10 + 54 * 100) / 10)
    half, _ = benchmark.estimate(plan, methods, 9, 10, [ref], max_epochs=10)
    assert half == pytest.approx(wall / 2)


def test_default_reference_reads_every_protocol_record_file(tmp_path):
    for name in ("sd.csv", "sd_sota.csv", "si_sota_ea.csv", "vision_x.csv", "sd_summary.md",
                 "benchmark_full_sd.csv", "benchmark_full_synthetic_sd.csv",
                 "benchmark_tiny_sd.csv"):
        (tmp_path / name).write_text("protocol,pipeline,time\n")
    assert [p.name for p in benchmark.default_reference(tmp_path)] == [
        "sd.csv", "sd_sota.csv", "si_sota_ea.csv", "benchmark_full_sd.csv"]
    # a modern baseline recorded only in sd_sota.csv gets its own fit time, not the pool's
    pd.DataFrame({"protocol": ["subject_dependent"] * 2, "pipeline": ["EEGNet", "IFNet"],
                  "time": [30.0, 1500.0], "n_epochs_trained": [50.0, 200.0]}).to_csv(
        tmp_path / "sd_sota.csv", index=False)
    plan = benchmark.stages(benchmark.PRESETS["full"], ["sd"], [0], tmp_path, "full", None)
    _, rows = benchmark.estimate(plan, {"subject_dependent": ["IFNet"]}, 9, 1,
                                 benchmark.default_reference(tmp_path))
    assert rows[0][3] == 1500.0


def test_estimate_keeps_gpu_recorded_fit_times_apart(tmp_path):
    # TCFormer: 1500 s per fit on one CPU thread, 20 s when recorded on a GPU; EEGNet only CPU
    cfg = {dev: json.dumps({"method_config": {"device": dev}}) for dev in ("cpu", "cuda")}
    pd.DataFrame({"protocol": ["subject_dependent"] * 5,
                  "pipeline": ["TCFormer"] * 3 + ["EEGNet"] * 2,
                  "time": [1500.0, 20.0, 20.0, 300.0, 300.0],
                  "n_epochs_trained": [50.0] * 5,
                  "config": [cfg["cpu"], cfg["cuda"], cfg["cuda"], cfg["cpu"], None]}).to_csv(
        tmp_path / "sd.csv", index=False)
    assert timed_on_gpu(pd.read_csv(tmp_path / "sd.csv")).tolist() == [
        False, True, True, False, False]
    plan = benchmark.stages(benchmark.PRESETS["full"], ["sd"], [0], tmp_path, "full", None)
    methods = {"subject_dependent": ["TCFormer", "EEGNet"]}
    # a CPU estimate ignores the GPU times
    _, rows = benchmark.estimate(plan, methods, 9, 1, [tmp_path / "sd.csv"])
    assert {r[1]: (r[3], r[5]) for r in rows} == {"TCFormer": (1500.0, "cpu"),
                                                   "EEGNet": (300.0, "cpu")}
    # a GPU estimate takes the GPU-recorded time as is and divides the CPU-recorded ones
    _, rows = benchmark.estimate(plan, methods, 9, 1, [tmp_path / "sd.csv"], gpu_speedup=10)
    assert {r[1]: (r[3], r[5]) for r in rows} == {"TCFormer": (20.0, "gpu"),
                                                   "EEGNet": (30.0, "cpu")}


def test_gpu_estimate_divides_cpu_times_by_each_pipelines_own_measured_speedup(tmp_path):
    """A pipeline recorded on both devices in SD (TCFormer 75x, ATCNet 3x) has its SI
    CPU-recorded fit time divided by its own speed-up; EEGNet, never on a GPU, by the
    default; a GPU-recorded SI time is used as is."""
    cfg = {dev: json.dumps({"method_config": {"device": dev}}) for dev in ("cpu", "cuda")}
    rows = [("subject_dependent", "TCFormer", 1500.0, "cpu"),
            ("subject_dependent", "TCFormer", 20.0, "cuda"),
            ("subject_dependent", "ATCNet", 60.0, "cpu"),
            ("subject_dependent", "ATCNet", 20.0, "cuda"),
            ("subject_dependent", "ATCNet", 20.0, "cuda"),
            ("subject_independent", "TCFormer", 3000.0, "cpu"),
            ("subject_independent", "ATCNet", 900.0, "cpu"),
            ("subject_independent", "EEGNet", 500.0, "cpu"),
            ("subject_independent", "IFNet", 2000.0, "cpu"),
            ("subject_independent", "IFNet", 70.0, "cuda")]
    pd.DataFrame([{"protocol": p, "pipeline": m, "time": t, "n_epochs_trained": 50.0,
                   "config": cfg[d]} for p, m, t, d in rows]).to_csv(tmp_path / "r.csv",
                                                                     index=False)
    ref = pd.read_csv(tmp_path / "r.csv")
    on_gpu = timed_on_gpu(ref)
    assert benchmark.measured_speedups(ref[~on_gpu], ref[on_gpu]) == pytest.approx(
        {"TCFormer": 75.0, "ATCNet": 3.0, "IFNet": 2000 / 70})
    # per trained epoch: GPU fits that stopped after half the epochs are not twice as fast
    halved = ref.assign(n_epochs_trained=np.where(on_gpu, 25.0, 50.0))
    assert benchmark.measured_speedups(halved[~on_gpu], halved[on_gpu]) == pytest.approx(
        {"TCFormer": 37.5, "ATCNet": 1.5, "IFNet": 1000 / 70})
    plan = benchmark.stages(benchmark.PRESETS["full"], ["si"], [0], tmp_path, "full", None)
    methods = {"subject_independent": ["TCFormer", "ATCNet", "EEGNet", "IFNet"]}
    _, rows = benchmark.estimate(plan, methods, 9, 1, [tmp_path / "r.csv"], gpu_speedup=10)
    assert {r[1]: (r[3], r[5]) for r in rows} == {
        "TCFormer": (pytest.approx(40.0), "own"), "ATCNet": (pytest.approx(300.0), "own"),
        "EEGNet": (pytest.approx(50.0), "cpu"), "IFNet": (70.0, "gpu")}
    # a CPU estimate ignores every GPU record and speed-up, given or not (a CPU run with
    # --gpu-speedup), and a GPU one uses its records and measured speed-ups at --gpu-speedup 1
    for kw in ({}, {"gpu_speedup": 10, "gpu": False}):
        _, rows = benchmark.estimate(plan, methods, 9, 1, [tmp_path / "r.csv"], **kw)
        assert {r[1]: (r[3], r[5]) for r in rows}["ATCNet"] == (900.0, "cpu")
    _, rows = benchmark.estimate(plan, methods, 9, 1, [tmp_path / "r.csv"], gpu_speedup=1,
                                 gpu=True)
    assert {r[1]: (r[3], r[5]) for r in rows} == {
        "TCFormer": (pytest.approx(40.0), "own"), "ATCNet": (pytest.approx(300.0), "own"),
        "EEGNet": (pytest.approx(500.0), "cpu"), "IFNet": (70.0, "gpu")}


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


def test_fits_within_a_time_limit_follow_the_runners_rule(tmp_path):
    """Two workers, 10 s: stage 1's three 6-s fits — two run, the third would end at 12 s;
    stage 2 starts when stage 1's last fit ends (6 s): its 5-s fit would end at 11 s, its
    3-s fits run on both workers (one of them also after the other), its fit without a cost
    starts while time is left."""
    plan = benchmark.stages(benchmark.PRESETS["full"], ["sd"], [0, 1], tmp_path, "full", None)
    todo = [(plan[0], {"A": 3}), (plan[1], {"B": 1, "C": 3, "D": 1})]
    cost = {("subject_dependent", "A"): 6.0, ("subject_dependent", "B"): 5.0,
            ("subject_dependent", "C"): 3.0}
    got = benchmark.fits_within(todo, cost, 2, 10.0)
    assert got == {("subject_dependent", "A"): 2, ("subject_dependent", "C"): 2,
                   ("subject_dependent", "D"): 1}
    assert benchmark.fits_within(todo, cost, 2, 1e9) == {
        ("subject_dependent", m): n for m, n in {"A": 3, "B": 1, "C": 3, "D": 1}.items()}
    # stage_fits counts each stage's fits (both seeds of A, B; no record folder given)
    counts = benchmark.stage_fits(plan, {"subject_dependent": ["A", "B"]}, 9)
    assert [c for _, c in counts] == [{"A": 45, "B": 45}, {"A": 45, "B": 45}]


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


def test_estimate_of_a_rerun_counts_only_fits_without_a_record(tmp_path):
    plan = benchmark.stages(benchmark.PRESETS["full"], ["sd"], [0, 1], tmp_path, "full", None)
    assert plan[0].records == plan[1].records  # one SD file, seeds told apart by the rows
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"protocol": ["subject_dependent"] * 2, "pipeline": ["A", "B"],
                  "time": [10.0, 20.0], "n_epochs_trained": [5.0, 5.0]}).to_csv(ref, index=False)
    # A: seed 0 of subjects 1-2 done (fold 1 twice: counted once), a subject and a seed
    # outside the run, another protocol; B: nothing done
    rows = [("subject_dependent", "A", s, f, 0) for s in (1, 2) for f in range(1, 6)]
    rows += [("subject_dependent", "A", 1, 1, 0), ("subject_dependent", "A", 7, 1, 0),
             ("subject_dependent", "A", 1, 1, 5), ("subject_independent", "A", 3, 1, 0)]
    pd.DataFrame(rows, columns=["protocol", "pipeline", "subject", "fold", "seed"]).to_csv(
        plan[0].records, index=False)
    methods = {"subject_dependent": ["A", "B"]}
    assert benchmark.done_fits(plan[0], ["A", "B"], [1, 2, 3]) == {"A": 10}
    assert benchmark.done_fits(plan[1], ["A", "B"], [1, 2, 3]) == {}
    _, total = benchmark.estimate(plan, methods, 3, 1, [ref])
    wall, todo = benchmark.estimate(plan, methods, 3, 1, [ref], remaining_of=[1, 2, 3])
    assert {r[1]: r[2] for r in total} == {"A": 30, "B": 30}
    assert {r[1]: r[2] for r in todo} == {"A": 20, "B": 30}
    assert wall == pytest.approx(20 * 10.0 + 30 * 20.0)


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


def test_estimate_scales_a_pipeline_missing_in_one_protocol_by_the_cross_protocol_ratio(
        tmp_path):
    # A and B recorded in both protocols (SI fits 4x and 6x their SD fits), C only SD, D nowhere
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"protocol": ["subject_dependent"] * 3 + ["subject_independent"] * 2,
                  "pipeline": ["A", "B", "C", "A", "B"],
                  "time": [10.0, 20.0, 30.0, 40.0, 120.0],
                  "n_epochs_trained": [5.0] * 5}).to_csv(ref, index=False)
    plan = benchmark.stages(benchmark.PRESETS["full"], ["sd", "si"], [0], tmp_path, "full", None)
    methods = {"subject_dependent": ["C", "D"], "subject_independent": ["C", "D"]}
    _, rows = benchmark.estimate(plan, methods, 9, 1, [ref])
    cost = {(r[0], r[1]): (r[3], r[5]) for r in rows}
    assert cost[("subject_independent", "C")] == (pytest.approx(30.0 * 5.0), "scaled")
    assert cost[("subject_dependent", "C")] == (30.0, "cpu")
    # no record in any protocol: the median of the protocol's deep pipelines
    assert cost[("subject_independent", "D")] == (pytest.approx(80.0), "pool")
    assert cost[("subject_dependent", "D")] == (pytest.approx(20.0), "pool")


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
