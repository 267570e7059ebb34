"""The whole-benchmark estimate (``eegmtl benchmark --estimate``): fits counted per stage, their
cost from recorded fit times (CPU, GPU, own speed-ups, cross-protocol scaling), what a time
limit lets through, and the printed table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eegmtl.evaluation.estimate import timed_on_gpu
from eegmtl.experiments import benchmark_estimate as est
from eegmtl.experiments.benchmark_plan import PRESETS, stages


def test_stages_are_seed_major_and_estimate_counts_fits(tmp_path):
    preset = PRESETS["full"]
    plan = stages(preset, ["sd", "si"], [0, 1, 2], tmp_path, "full", "transductive")
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
    wall, rows = est.estimate(plan, methods, 9, 10, [ref])
    fits = {r[0]: r[2] for r in rows}
    assert fits == {"subject_dependent": 9 * 5 * 3, "subject_independent": 9 * 1 * 3 * 2}
    assert wall == pytest.approx((135 * 10 + 54 * 100) / 10)
    half, _ = est.estimate(plan, methods, 9, 10, [ref], max_epochs=10)
    assert half == pytest.approx(wall / 2)


def test_default_reference_reads_every_protocol_record_file(tmp_path):
    for name in ("sd.csv", "sd_sota.csv", "si_sota_ea.csv", "vision_x.csv", "sd_summary.md",
                 "benchmark_full_sd.csv", "benchmark_full_synthetic_sd.csv",
                 "benchmark_tiny_sd.csv"):
        (tmp_path / name).write_text("protocol,pipeline,time\n")
    assert [p.name for p in est.default_reference(tmp_path)] == [
        "sd.csv", "sd_sota.csv", "si_sota_ea.csv", "benchmark_full_sd.csv"]
    # a modern baseline recorded only in sd_sota.csv gets its own fit time, not the pool's
    pd.DataFrame({"protocol": ["subject_dependent"] * 2, "pipeline": ["EEGNet", "IFNet"],
                  "time": [30.0, 1500.0], "n_epochs_trained": [50.0, 200.0]}).to_csv(
        tmp_path / "sd_sota.csv", index=False)
    plan = stages(PRESETS["full"], ["sd"], [0], tmp_path, "full", None)
    _, rows = est.estimate(plan, {"subject_dependent": ["IFNet"]}, 9, 1,
                           est.default_reference(tmp_path))
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
    plan = stages(PRESETS["full"], ["sd"], [0], tmp_path, "full", None)
    methods = {"subject_dependent": ["TCFormer", "EEGNet"]}
    # a CPU estimate ignores the GPU times
    _, rows = est.estimate(plan, methods, 9, 1, [tmp_path / "sd.csv"])
    assert {r[1]: (r[3], r[5]) for r in rows} == {"TCFormer": (1500.0, "cpu"),
                                                   "EEGNet": (300.0, "cpu")}
    # a GPU estimate takes the GPU-recorded time as is and divides the CPU-recorded ones
    _, rows = est.estimate(plan, methods, 9, 1, [tmp_path / "sd.csv"], gpu_speedup=10)
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
    assert est.measured_speedups(ref[~on_gpu], ref[on_gpu]) == pytest.approx(
        {"TCFormer": 75.0, "ATCNet": 3.0, "IFNet": 2000 / 70})
    # per trained epoch: GPU fits that stopped after half the epochs are not twice as fast
    halved = ref.assign(n_epochs_trained=np.where(on_gpu, 25.0, 50.0))
    assert est.measured_speedups(halved[~on_gpu], halved[on_gpu]) == pytest.approx(
        {"TCFormer": 37.5, "ATCNet": 1.5, "IFNet": 1000 / 70})
    plan = stages(PRESETS["full"], ["si"], [0], tmp_path, "full", None)
    methods = {"subject_independent": ["TCFormer", "ATCNet", "EEGNet", "IFNet"]}
    _, rows = est.estimate(plan, methods, 9, 1, [tmp_path / "r.csv"], gpu_speedup=10)
    assert {r[1]: (r[3], r[5]) for r in rows} == {
        "TCFormer": (pytest.approx(40.0), "own"), "ATCNet": (pytest.approx(300.0), "own"),
        "EEGNet": (pytest.approx(50.0), "cpu"), "IFNet": (70.0, "gpu")}
    # a CPU estimate ignores every GPU record and speed-up, given or not (a CPU run with
    # --gpu-speedup), and a GPU one uses its records and measured speed-ups at --gpu-speedup 1
    for kw in ({}, {"gpu_speedup": 10, "gpu": False}):
        _, rows = est.estimate(plan, methods, 9, 1, [tmp_path / "r.csv"], **kw)
        assert {r[1]: (r[3], r[5]) for r in rows}["ATCNet"] == (900.0, "cpu")
    _, rows = est.estimate(plan, methods, 9, 1, [tmp_path / "r.csv"], gpu_speedup=1,
                           gpu=True)
    assert {r[1]: (r[3], r[5]) for r in rows} == {
        "TCFormer": (pytest.approx(40.0), "own"), "ATCNet": (pytest.approx(300.0), "own"),
        "EEGNet": (pytest.approx(500.0), "cpu"), "IFNet": (70.0, "gpu")}


def test_fits_within_a_time_limit_follow_the_runners_rule(tmp_path):
    """Two workers, 10 s: stage 1's three 6-s fits — two run, the third would end at 12 s;
    stage 2 starts when stage 1's last fit ends (6 s): its 5-s fit would end at 11 s, its
    3-s fits run on both workers (one of them also after the other), its fit without a cost
    starts while time is left."""
    plan = stages(PRESETS["full"], ["sd"], [0, 1], tmp_path, "full", None)
    todo = [(plan[0], {"A": 3}), (plan[1], {"B": 1, "C": 3, "D": 1})]
    cost = {("subject_dependent", "A"): 6.0, ("subject_dependent", "B"): 5.0,
            ("subject_dependent", "C"): 3.0}
    got = est.fits_within(todo, cost, 2, 10.0)
    assert got == {("subject_dependent", "A"): 2, ("subject_dependent", "C"): 2,
                   ("subject_dependent", "D"): 1}
    assert est.fits_within(todo, cost, 2, 1e9) == {
        ("subject_dependent", m): n for m, n in {"A": 3, "B": 1, "C": 3, "D": 1}.items()}
    # stage_fits counts each stage's fits (both seeds of A, B; no record folder given)
    counts = est.stage_fits(plan, {"subject_dependent": ["A", "B"]}, 9)
    assert [c for _, c in counts] == [{"A": 45, "B": 45}, {"A": 45, "B": 45}]


def test_estimate_of_a_rerun_counts_only_fits_without_a_record(tmp_path):
    plan = stages(PRESETS["full"], ["sd"], [0, 1], tmp_path, "full", None)
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
    assert est.done_fits(plan[0], ["A", "B"], [1, 2, 3]) == {"A": 10}
    assert est.done_fits(plan[1], ["A", "B"], [1, 2, 3]) == {}
    _, total = est.estimate(plan, methods, 3, 1, [ref])
    wall, todo = est.estimate(plan, methods, 3, 1, [ref], remaining_of=[1, 2, 3])
    assert {r[1]: r[2] for r in total} == {"A": 30, "B": 30}
    assert {r[1]: r[2] for r in todo} == {"A": 20, "B": 30}
    assert wall == pytest.approx(20 * 10.0 + 30 * 20.0)


def test_estimate_scales_a_pipeline_missing_in_one_protocol_by_the_cross_protocol_ratio(
        tmp_path):
    # A and B recorded in both protocols (SI fits 4x and 6x their SD fits), C only SD, D nowhere
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"protocol": ["subject_dependent"] * 3 + ["subject_independent"] * 2,
                  "pipeline": ["A", "B", "C", "A", "B"],
                  "time": [10.0, 20.0, 30.0, 40.0, 120.0],
                  "n_epochs_trained": [5.0] * 5}).to_csv(ref, index=False)
    plan = stages(PRESETS["full"], ["sd", "si"], [0], tmp_path, "full", None)
    methods = {"subject_dependent": ["C", "D"], "subject_independent": ["C", "D"]}
    _, rows = est.estimate(plan, methods, 9, 1, [ref])
    cost = {(r[0], r[1]): (r[3], r[5]) for r in rows}
    assert cost[("subject_independent", "C")] == (pytest.approx(30.0 * 5.0), "scaled")
    assert cost[("subject_dependent", "C")] == (30.0, "cpu")
    # no record in any protocol: the median of the protocol's deep pipelines
    assert cost[("subject_independent", "D")] == (pytest.approx(80.0), "pool")
    assert cost[("subject_dependent", "D")] == (pytest.approx(20.0), "pool")


def test_printed_estimate_gives_the_speedup_a_budget_needs_and_what_a_time_limit_runs(
        tmp_path, capsys):
    """Two workers, 45 SD fits of a 100-s deep pipeline and 45 of a 2-s classical one: the
    deep fits take 2250 s of the workers; within a 600-s budget they get 600 s less the
    classical share (45 s), so they must run 2250 / 555 x faster; a 310-s limit (300 s after
    the summaries' margin) runs three deep fits on each worker and then the classical fits."""
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"protocol": ["subject_dependent"] * 2, "pipeline": ["EEGNet", "CSP+LDA"],
                  "time": [100.0, 2.0], "n_epochs_trained": [50.0, None]}).to_csv(
        ref, index=False)
    plan = stages(PRESETS["full"], ["sd"], [0], tmp_path, "full", None)
    methods = {"subject_dependent": ["EEGNet", "CSP+LDA"]}
    _, rows = est.estimate(plan, methods, 9, 2, [ref], remaining_of=list(range(1, 10)))
    est.print_estimate(rows, plan, methods, list(range(1, 10)), 2, 600.0, time_limit=310)
    out = capsys.readouterr().out
    assert "subject_dependent    EEGNet                          0/45   done,   45 fits x" in out
    assert "(CPU only)" in out.splitlines()[1]
    assert f"must run {4500 / 2 / (600 - 45):.1f}x faster" in out
    assert "with --time-limit 310: 6 of the 90 fits would run: SD EEGNet 6" in out
    # without a known cost: the table only
    unknown = [r._replace(cost=float("nan")) for r in rows]
    est.print_estimate(unknown, plan, methods, list(range(1, 10)), 2, 600.0, time_limit=310)
    assert "must run" not in capsys.readouterr().out
