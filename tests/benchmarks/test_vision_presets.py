"""Vision presets: run order, shards, --only, resume, claim verdicts, budget rule, and the
converged / fmtl-gpu presets end to end at a tiny size on the CPU."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from eegmtl.benchmarks.datasets import MultiTaskSplits, MultiTaskTensorDataset
from eegmtl.experiments import vision_grid
from eegmtl.experiments.vision_converged import (
    flattening_epoch,
    gain_fraction_epoch,
    paired_verdict,
    summarize_converged,
)
from eegmtl.experiments.vision_presets import (
    CONVERGED_EPOCHS,
    FLAT_PAIRS,
    LAST_DATASETS,
    NEW_METHODS,
    PRESETS,
    RAISED_BUDGETS,
    item_epochs,
    select_items,
    shard_items,
    stage_kwargs,
)


def _random_split(n: int, seed: int) -> MultiTaskTensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 36, 36, generator=g)
    return MultiTaskTensorDataset(x, {t: torch.randint(0, 10, (n,), generator=g)
                                      for t in ("left", "right")})


@pytest.fixture
def splits() -> MultiTaskSplits:
    return MultiTaskSplits(train=_random_split(96, 0), val=_random_split(32, 1),
                           test=_random_split(32, 2), task_names=("left", "right"))


def test_converged_grid_content_and_order():
    items = PRESETS["converged"].items
    assert len(items) == len(set(items)) == 3 * (2 + 2 * len(FLAT_PAIRS)) * 3 + 3 * len(NEW_METHODS)
    # complete seed triplets of the X / F-X pairs on MultiMNIST come first
    first = items[: 6 * len(FLAT_PAIRS)]
    assert {it[1] for it in first} == {"multimnist"}
    assert [(it[2], it[3]) for it in first[:6]] == [
        ("mgda", 0), ("f-mgda", 0), ("mgda", 1), ("f-mgda", 1), ("mgda", 2), ("f-mgda", 2)]
    assert {it[3] for it in items if it[2] in NEW_METHODS} == {0}
    # the data sets of LAST_DATASETS (budget raised: their runs extend finished ones) come
    # after every other run, each block in the same order (pairs, EW / RLW, newer methods)
    n_last = sum(it[1] in LAST_DATASETS for it in items)
    assert n_last and all(it[1] in LAST_DATASETS for it in items[-n_last:])
    rest = [it[1] for it in items[:-n_last] if it[2] not in NEW_METHODS]
    assert rest == sorted(rest, key=["multimnist", "multifashion_mnist"].index)
    assert items[-n_last][2:] == ("mgda", 0) and items[-1][2:] == (NEW_METHODS[-1], 0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_shards_partition_the_grid_in_order(n):
    preset = PRESETS["converged"]
    shards = [shard_items(preset, preset.items, k, n) for k in range(n)]
    assert sorted(it for s in shards for it in s) == sorted(preset.items)
    for s in shards:  # each shard keeps the preset's order
        assert s == sorted(s, key=preset.items.index)
    if n == 2:  # both shards start on the MultiMNIST pairs, so the first triplets finish early
        assert all(s[0][1] == "multimnist" and s[0][2] in ("mgda", "f-mgda") for s in shards)
    with pytest.raises(ValueError, match="k/n"):
        shard_items(preset, preset.items, 2, 2)


def test_only_selects_runs_and_rejects_bad_specs():
    preset = PRESETS["converged"]
    got = select_items(preset, ["multimnist:f-pcgrad:*", "multi_fashion:ew:1"])
    assert [it[1:] for it in got] == [("multimnist", "f-pcgrad", s) for s in (0, 1, 2)] + [
        ("multifashion", "ew", 1)]
    with pytest.raises(ValueError, match="dataset:method:seed"):
        select_items(preset, ["multimnist:ew"])
    with pytest.raises(ValueError, match="matches no run"):
        select_items(preset, ["multimnist:ew:7"])


def test_paired_verdict_rule():
    assert paired_verdict([1.0, 1.2, 0.8])[0] == "holds"
    assert paired_verdict([-1.0, -1.2, -0.8])[0] == "does not hold"
    verdict, mean, sd = paired_verdict([1.0, -0.5, 0.2])
    assert verdict == "within noise" and abs(mean) <= sd
    assert paired_verdict([0.5, 0.6])[0] == "holds (partial: 2 seeds)"
    assert paired_verdict([0.5])[0] == "1 seed"


def test_paired_verdict_counts_seed_to_seed_spread_as_noise():
    # consistent but tiny paired gains (a few test images) next to a 0.1-point seed spread:
    # SD(d) alone would call it "holds"
    diffs = [0.04, 0.021, 0.0]
    assert paired_verdict(diffs)[0] == "holds"
    assert paired_verdict(diffs, seed_sd=0.10)[0] == "within noise"
    assert paired_verdict([1.0, 1.2, 0.8], seed_sd=0.10)[0] == "holds"
    assert paired_verdict([-1.0, -1.2, -0.8], seed_sd=1.5)[0] == "within noise"


def test_summary_verdict_uses_the_pooled_seed_spread():
    rows = []
    for seed, (x, fx) in enumerate([(0.9762, 0.9766), (0.9772, 0.9775), (0.9782, 0.9784)]):
        for method, acc in (("pcgrad", x), ("f-pcgrad", fx)):
            rows.append({"task": "avg", "dataset": "multi_mnist", "method": method,
                         "seed": seed, "avg_accuracy": acc, "conflict_rate": 0.3, "time": 1.0,
                         "epochs": CONVERGED_EPOCHS["multi_mnist"], "n_train": 10, "n_val": 2,
                         "n_test": 4, "device": "cpu",
                         "config": json.dumps({"optimizer": "adam", "lr": 1e-3,
                                               "batch_size": 256, "selection": "best val",
                                               "conflict_every": 20})})
    text = summarize_converged(pd.DataFrame(rows))
    line = next(ln for ln in text.splitlines() if ln.startswith("| f-pcgrad > pcgrad"))
    # d = +0.04 / +0.03 / +0.02: mean 0.03 > SD(d) 0.01, but under the 0.10 seed spread
    assert "+0.03 ± 0.01 | 0.10 |" in line and line.endswith("| 3 of 3 | within noise |")


def test_flattening_epoch_rule():
    curve = [0.80, 0.88, 0.91, 0.925, 0.93, 0.931, 0.932, 0.9325]
    # best after e epochs -> after e + 2: e=4: 0.925 -> 0.931; e=5: 0.93 -> 0.932 (0.002, not
    # below 0.002); e=6: 0.931 -> 0.9325 (0.0015 < 0.002)
    assert flattening_epoch(curve, window=2) == 6
    assert flattening_epoch([0.5, 0.6, 0.7], window=2) is None
    assert flattening_epoch([0.9, 0.95, 0.8, 0.8], window=2) == 2  # drops are not gains
    # default window 4: a one-epoch pause in a still-rising curve is not a plateau
    noisy = [0.950, 0.960, 0.970, 0.9745, 0.9744, 0.9746, 0.9780, 0.9800, 0.9805, 0.9806,
             0.9807, 0.9808, 0.9809]
    assert flattening_epoch(noisy, window=2) == 4
    assert flattening_epoch(noisy) == 8


def test_gain_fraction_epoch_reads_the_plateau_off_the_whole_curve():
    # a 4-epoch pause at 0.90, then one more point of gain: the window rule stops at the pause
    curve = [0.80, 0.85, 0.88, 0.90, 0.9005, 0.900, 0.9008, 0.901, 0.91, 0.915, 0.91, 0.91]
    assert flattening_epoch(curve) == 4
    # whole gain 0.115 -> 95 %: best-so-far >= 0.90925, first reached after 9 epochs
    assert gain_fraction_epoch(curve) == 9
    assert gain_fraction_epoch(curve, fraction=0.5) == 3  # >= 0.8575
    assert gain_fraction_epoch([0.9]) is None
    assert gain_fraction_epoch([0.9, 0.8, 0.85]) == 1  # never above the first epoch


def test_summary_reports_the_budget_rule_on_the_curves():
    curve = [0.80, 0.88, 0.91, 0.925, 0.93, 0.931, 0.932, 0.9325, 0.9326, 0.9327]
    curves = pd.DataFrame({"dataset": "multi_mnist", "method": "ew", "seed": 0,
                           "epoch": range(len(curve)), "val_avg_accuracy": curve,
                           "config_hash": "h"})
    rising = curves.assign(dataset="multi_fashion", val_avg_accuracy=np.linspace(0.7, 0.85, 10),
                           config_hash="g")
    text = summarize_converged(pd.DataFrame(), None, pd.concat([curves, rising]))
    assert "| MultiMNIST | ew seed 0 | 10 | 80.00 88.00" in text
    assert "| 6 |" in text  # best after 6 epochs 93.10 -> after 10: 93.27 (< 0.2 points)
    budget = CONVERGED_EPOCHS["multi_mnist"]
    assert f"- MultiMNIST: rule 6, grid budget {budget} — meets the rule" in text
    assert (f"- MultiFashion: grid budget {CONVERGED_EPOCHS['multi_fashion']} — the curves have "
            "not flattened yet") in text
    former, why = RAISED_BUDGETS["multi_fashion"]
    assert f"; raised from {former} epochs: {why}" in text  # the raise is named
    assert f"MultiMNIST: rule 6, grid budget {budget} — meets the rule\n" in text  # not raised
    assert "Runs finished: **0 of" in text


def _args(tmp_path, **kw):
    base = dict(preset="converged", results=tmp_path / "x.csv", tiny=True, epochs=None,
                shard="0/1", only=[], summary_only=False, estimate=False, threads=1,
                device="cpu", progress=False, no_resume=False, checkpoint_dir=tmp_path / "ck",
                argv=["vision"])
    return argparse.Namespace(**{**base, **kw})


def test_converged_preset_end_to_end_tiny(splits, tmp_path, monkeypatch):
    preset = PRESETS["converged"]
    items = select_items(preset, ["multimnist:pcgrad:0", "multimnist:f-pcgrad:0",
                                  "multimnist:pcgrad:1", "multimnist:f-pcgrad:1"])
    over = {**vision_grid.TINY, "n_train": 64, "n_val": 32, "n_test": 32}
    n = vision_grid.run_preset(preset, items, tmp_path, overrides=over, splits=splits,
                               device="cpu", threads=1, checkpoint_dir=tmp_path / "ck")
    assert n == 4
    rec = pd.read_csv(tmp_path / "vision_converged.csv")
    avg = rec[rec["task"] == "avg"]
    assert sorted(avg["method"]) == ["f-pcgrad", "f-pcgrad", "pcgrad", "pcgrad"]
    cfg = avg[avg["method"] == "f-pcgrad"]["config"].iloc[0]
    assert '"rho": 2.0' in cfg and '"mode"' not in cfg  # exact: the default, not hashed
    hist = pd.read_csv(tmp_path / "vision_converged_epochs.csv")
    assert len(hist) == 4 and set(hist["epoch"]) == {0}
    assert vision_grid.done_items(preset, items, tmp_path, over) == items
    # resume: a second pass trains nothing
    monkeypatch.setattr("eegmtl.benchmarks.runner.Trainer.fit", lambda *a, **k: 1 / 0)
    vision_grid.run_preset(preset, items, tmp_path, overrides=over, splits=splits,
                           device="cpu", threads=1)
    assert "No records at the current budgets yet." in summarize_converged(rec, hist)
    text = summarize_converged(rec, hist, budgets=dict.fromkeys(CONVERGED_EPOCHS, 1))
    assert "Runs finished: **4 of" in text and "**partial**" in text
    assert "| f-pcgrad > pcgrad | MultiMNIST |" in text and "(partial: 2 seeds)" in text \
        or "within noise (partial: 2 seeds)" in text


def test_estimate_lists_todo_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("eegmtl.experiments.vision_bench.ew_step_seconds", lambda **k: 0.05)
    assert vision_grid.run_preset_command(
        _args(tmp_path, tiny=False, estimate=True, shard="1/2")) == 0
    out = capsys.readouterr().out
    hours = float(out.split("estimated CPU time ")[1].split(" h")[0])
    assert hours > 0 and "todo" in out and "0 done" in out


def test_estimate_is_calibrated_on_the_finished_runs_fit_times(tmp_path, capsys, monkeypatch):
    preset = PRESETS["converged"]
    (a, b) = preset.items[:2]  # mgda / f-mgda seed 0 on MultiMNIST
    unit = {it: vision_grid.estimate_seconds(preset, [it], 1.0) for it in (a, b)}
    rows = [{"task": "avg", "dataset": "multi_mnist", "method": it[2], "seed": it[3],
             "epochs": item_epochs(preset, it), "time": unit[it] * step, "config_hash": it[2]}
            for it, step in ((a, 0.03), (b, 0.05))]
    rows.append({**rows[0], "epochs": 3, "time": 1e9})  # another budget: not counted
    pd.DataFrame(rows).to_csv(tmp_path / "vision_converged.csv", index=False)
    assert vision_grid.recorded_ew_step(preset, [a], tmp_path) == pytest.approx(0.03)
    assert vision_grid.recorded_ew_step(preset, [a, b], tmp_path) == pytest.approx(0.04)
    assert vision_grid.recorded_ew_step(preset, preset.items[2:4], tmp_path) is None
    monkeypatch.setattr("eegmtl.experiments.vision_bench.ew_step_seconds", lambda **k: 1.0)
    assert vision_grid.run_preset_command(_args(tmp_path, tiny=False, estimate=True)) == 0
    out = capsys.readouterr().out
    left = vision_grid.estimate_seconds(preset, preset.items[2:], 0.04) / 3600
    assert (f"from the 2 finished runs' fit times: EW step 40.0 ms (median), {left:.1f} h left"
            in out)


def test_fmtl_gpu_preset_runs_tiny_on_cpu(splits, tmp_path):
    """ResNet-18 (F-MTL protocol) and its flat variant, a few batches, device-agnostic."""
    preset = PRESETS["fmtl-gpu"]
    assert preset.stages["resnet18"]["epochs"] == 200 and preset.stages["lenet100"]["epochs"] == 100
    assert len({it[3] for it in preset.items if it[0] == "resnet18"}) == 3
    items = select_items(preset, ["resnet18/multimnist:ew:0", "resnet18/multimnist:f-pcgrad:0"])
    over = {"epochs": 1, "n_train": 64, "n_val": 32, "n_test": 32, "batch_size": 32}
    vision_grid.run_preset(preset, items, tmp_path, overrides=over, splits=splits,
                           device="cpu", threads=1)
    rec = pd.read_csv(tmp_path / "vision_fmtl_gpu_resnet18.csv")
    avg = rec[rec["task"] == "avg"]
    assert set(avg["model"]) == {"resnet18"} and set(avg["device"]) == {"cpu"}
    assert np.isfinite(avg["avg_accuracy"]).all() and sorted(avg["method"]) == ["ew", "f-pcgrad"]


def test_summary_uses_the_epochs_of_finished_curve_runs_only(tmp_path):
    """A curve run restarted under another configuration leaves epochs of the old hash in the
    history; the summary reads those of the runs in vision_converged_curves.csv only."""
    import shutil

    from eegmtl.experiments.vision_converged import write_converged_summary

    src = Path(__file__).resolve().parents[2] / "pipelines" / "results"
    for name in ("vision_converged_curves.csv", "vision_converged_curves_epochs.csv"):
        shutil.copy(src / name, tmp_path / name)
    hist = pd.read_csv(tmp_path / "vision_converged_curves_epochs.csv")
    rec = pd.read_csv(tmp_path / "vision_converged_curves.csv")
    rec = rec[rec["task"] == "avg"].sort_values("epochs")
    done = set(rec.groupby(["dataset", "method", "seed"]).tail(1)["config_hash"])  # longest
    stale = hist[hist["config_hash"].isin(done)].iloc[[0]].assign(config_hash="0" * 16)
    pd.concat([hist, stale]).to_csv(tmp_path / "vision_converged_curves_epochs.csv",
                                    index=False)  # an epoch of a run restarted elsewhere
    text = write_converged_summary(tmp_path).read_text()
    names = {"multi_mnist": "MultiMNIST", "multi_fashion": "MultiFashion",
             "multi_fashion_mnist": "MultiFashion+MNIST"}
    for (d, method, seed), g in hist[hist["config_hash"].isin(done)].groupby(
            ["dataset", "method", "seed"]):
        assert f"| {names[d]} | {method} seed {seed} | {len(g)} |" in text


def test_epoch_budget_is_one_per_data_set():
    from eegmtl.benchmarks.protocols import canonical_benchmark

    preset = PRESETS["converged"]
    for item in preset.items:
        budget = CONVERGED_EPOCHS[canonical_benchmark(item[1])]
        assert item_epochs(preset, item) == stage_kwargs(preset, item)["epochs"] == budget
    assert item_epochs(preset, preset.items[0], {"epochs": 1}) == 1  # --epochs / --tiny


def _avg_row(dataset, method, seed, acc, epochs, chash):
    return {"task": "avg", "dataset": dataset, "method": method, "seed": seed,
            "avg_accuracy": acc, "conflict_rate": 0.3, "time": 1.0, "epochs": epochs,
            "n_train": 10, "n_val": 2, "n_test": 4, "device": "cpu", "config_hash": chash,
            "config": json.dumps({"optimizer": "adam", "lr": 1e-3, "batch_size": 256,
                                  "selection": "best val", "conflict_every": 20})}


def test_summary_keeps_other_budgets_apart_and_checks_the_budget_on_the_grid_curves():
    mf = CONVERGED_EPOCHS["multi_fashion"]
    rows, hist = [], []
    for seed in range(3):
        for method, acc in (("pcgrad", 0.85), ("f-pcgrad", 0.86)):
            h = f"{method}{seed}"
            rows.append(_avg_row("multi_fashion", method, seed, acc + seed / 1000, mf, h))
            rows.append(_avg_row("multi_fashion", method, seed, 1.7 - acc, 10, h + "old"))
            # a curve still rising 0.5 points per epoch at the end (never flat) for f-pcgrad
            for e in range(mf):
                v = 0.80 + 0.005 * e if method == "f-pcgrad" else min(0.80 + 0.02 * e, 0.85)
                hist.append({"dataset": "multi_fashion", "method": method, "seed": seed,
                             "epoch": e, "val_avg_accuracy": v, "config_hash": h})
    text = summarize_converged(pd.DataFrame(rows), pd.DataFrame(hist))
    assert "Runs finished: **6 of" in text
    main, other = text.split("## Records at another epoch budget")
    line = next(ln for ln in main.splitlines() if ln.startswith("| f-pcgrad > pcgrad"))
    assert "s0: +1.00" in line and line.endswith("| holds |")  # only the budget's records
    line = next(ln for ln in other.splitlines() if ln.startswith("| f-pcgrad > pcgrad"))
    assert "s0: -1.00" in line and line.endswith("| does not hold |")
    assert "**10 epochs**: MultiFashion 6 runs" in other
    check = next(ln for ln in main.splitlines() if ln.startswith("| MultiFashion | "))
    assert "pcgrad 4" in check and f"f-pcgrad >{mf - 2}" in check and "| **no** | 3 |" in check


def test_estimate_counts_only_the_epochs_an_extended_run_adds(splits, tmp_path):
    from eegmtl.experiments.vision_presets import estimate_seconds

    preset = PRESETS["converged"]
    item = select_items(preset, ["multimnist:pcgrad:0"])[0]
    over = {**vision_grid.TINY, "n_train": 64, "n_val": 32, "n_test": 32, "epochs": 2}
    ckpt = tmp_path / "checkpoints"
    vision_grid.run_preset(preset, [item], tmp_path, overrides=over,
                           splits=splits, device="cpu", threads=1, checkpoint_dir=ckpt)
    shorter = vision_grid.shorter_budget_epochs(preset, [item], tmp_path, ckpt)
    assert shorter == {item: 2}
    assert vision_grid.shorter_budget_epochs(preset, [item], tmp_path, ckpt,
                                             {"epochs": 2}) == {}
    # a record whose checkpoint is gone (another machine) is a run from scratch
    assert vision_grid.shorter_budget_epochs(preset, [item], tmp_path, tmp_path / "none") == {}
    full = estimate_seconds(preset, [item], 0.1)
    budget = CONVERGED_EPOCHS["multi_mnist"]
    assert estimate_seconds(preset, [item], 0.1, epochs_done=shorter) == pytest.approx(
        full * (budget - 2) / budget)


def test_shards_can_redraw_the_same_figure_at_once(tmp_path, monkeypatch):
    """Another shard process saving the same figure mid-write must not break this save."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eegmtl.experiments.vision_converged_plots import _save

    path = tmp_path / "curves.png"
    mine, theirs = plt.figure(figsize=(2, 2)), plt.figure(figsize=(2, 2))
    write = mine.savefig

    def write_while_another_shard_saves(*args, **kwargs):
        write(*args, **kwargs)
        with monkeypatch.context() as m:  # the other shard: a live process with its own pid
            m.setattr(os, "getpid", os.getppid)
            _save(theirs, path, dpi=40)

    monkeypatch.setattr(mine, "savefig", write_while_another_shard_saves)
    _save(mine, path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in tmp_path.iterdir()] == ["curves.png"]


def _readme_column_script():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "pipelines" / "readme_converged_column.py"
    spec = importlib.util.spec_from_file_location("_readme_converged_column", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_converged_column_formats_seeds_and_gaps():
    mod = _readme_column_script()
    avg = pd.DataFrame({
        "method": ["ew"] * 3 + ["ew", "famo", "pcgrad"],
        "dataset": ["multi_mnist"] * 3 + ["multi_fashion", "multi_mnist", "multi_mnist"],
        "avg_accuracy": [0.97, 0.98, 0.99, 0.85, 0.9712, 0.95],
    })
    assert mod.cell(avg, "ew") == "98.00 ± 1.00 · 85.00 (1 seed) · …"
    assert mod.cell(avg, "famo") == "97.12 · … · …"  # newer methods run one seed
    text = ("## MTL methods in `eegmtl.mtl`\n\n| name | method | paper | LibMTL | TorchJD |\n"
            "|---|---|---|---|---|\n| `ew` | sum | — | yes | yes |\n"
            "| `uw` | uncertainty | K | yes | yes |\n\n| flat variant | x |\n|---|---|\n"
            "| `f-pcgrad` | |\n\n## Next\n\n| `ew` | untouched |\n")
    once = mod.refresh(text, avg)
    assert mod.refresh(once, avg) == once  # idempotent
    lines = once.split("\n")
    assert lines[2].endswith(f"| {mod.HEAD} |") and lines[3] == "|---|---|---|---|---|---|"
    assert lines[4] == "| `ew` | sum | — | yes | yes | 98.00 ± 1.00 · 85.00 (1 seed) · … |"
    assert lines[5].endswith("| yes | — |")
    assert "| `f-pcgrad` | … · … · … |" in lines
    assert lines[-2] == "| `ew` | untouched |"


def test_readme_converged_column_falls_back_to_a_raised_budgets_former_runs():
    from eegmtl.experiments.vision_converged import split_budgets, with_former_budgets

    mod = _readme_column_script()
    (d, (former, _)), = RAISED_BUDGETS.items()
    mm = CONVERGED_EPOCHS["multi_mnist"]
    records = pd.DataFrame({
        "task": "avg",
        "method": ["ew"] * 4 + ["pcgrad"] * 2 + ["rlw"],
        "dataset": ["multi_mnist", d, d, d, d, d, "multi_mnist"],
        "epochs": [mm, former, former, former, former, CONVERGED_EPOCHS[d], mm - 1],
        "avg_accuracy": [0.97, 0.84, 0.85, 0.86, 0.5, 0.9, 0.1],
    })
    avg = with_former_budgets(*split_budgets(records, CONVERGED_EPOCHS))
    cells = mod.cell(avg, "ew").split(" · ")
    assert cells[0] == "97.00 (1 seed)"
    assert cells[mod.DATASETS.index(d)] == f"85.00 ± 1.00 ({former} ep)"  # no run at the new one
    # a run at the raised budget replaces the former ones (never mixed)
    assert mod.cell(avg, "pcgrad").split(" · ")[mod.DATASETS.index(d)] == "90.00 (1 seed)"
    assert mod.cell(avg, "rlw") == "… · … · …"  # other budgets of a data set not raised: out


def test_readme_converged_column_matches_the_committed_records():
    """The README's method tables show what ``vision_converged.csv`` holds; after committing
    grid records run ``python pipelines/readme_converged_column.py``."""
    mod = _readme_column_script()
    avg = mod.grid_results()
    readme = (mod.ROOT / "README.md").read_text(encoding="utf-8")
    assert mod.refresh(readme, avg) == readme, (
        "README's converged column is stale: run python pipelines/readme_converged_column.py")


def test_grid_curves_draw_a_raised_budgets_former_runs_labelled(tmp_path, monkeypatch):
    from eegmtl.experiments import vision_converged as vc
    from eegmtl.experiments import vision_converged_plots as vcp

    (d, (former, _)), = RAISED_BUDGETS.items()
    new = CONVERGED_EPOCHS[d]
    runs = [("ew", 0, former, "a"), ("ew", 1, former, "b"), ("pcgrad", 0, former, "c"),
            ("pcgrad", 0, new, "d")]  # pcgrad extended: only its run at the new budget counts
    records = pd.DataFrame([{"task": "avg", "dataset": d, "method": m, "seed": s,
                             "epochs": e, "avg_accuracy": 0.8, "config_hash": h}
                            for m, s, e, h in runs])
    hist = pd.DataFrame([{"dataset": d, "method": m, "seed": s, "epoch": k,
                          "val_avg_accuracy": 0.5 + k / 100, "config_hash": h}
                         for m, s, e, h in runs for k in range(e)])
    avg = vc.with_former_budgets(*vc.split_budgets(records, CONVERGED_EPOCHS))
    assert sorted(avg["config_hash"]) == ["a", "b", "d"]
    seen = {}
    monkeypatch.setattr(vcp, "_save", lambda fig, path, dpi: seen.setdefault("fig", fig))
    vcp.plot_grid_curves(hist, avg, tmp_path / "c.png")
    (ax,) = seen["fig"].axes
    lines = {ln.get_label(): len(ln.get_xdata()) for ln in ax.get_lines()}
    assert lines == {f"ew (n=2, {former} ep)": former, "pcgrad (n=1)": new}


def test_architectures_preset_content_and_cost():
    from eegmtl.experiments.vision_presets import ARCHITECTURES, MODEL_COST, item_cost

    preset = PRESETS["architectures"]
    assert [it[0] for it in preset.items] == list(ARCHITECTURES)
    assert {it[1:] for it in preset.items} == {("multimnist", "ew", 0)}
    for it in preset.items:
        kw = stage_kwargs(preset, it)
        assert kw["model"] == it[0] and kw["epochs"] == CONVERGED_EPOCHS["multi_mnist"]
        assert kw["protocol"] == "lenet" and kw["batch_size"] == 256
        assert item_cost(preset, it) == pytest.approx(16 * MODEL_COST[it[0]])
    # the same run of LeNet costs one EW epoch per epoch
    lenet = ("lenet", "multimnist", "ew", 0)
    assert item_cost(PRESETS["converged"], lenet) == 16.0
    assert select_items(preset, ["mmoe/multimnist:ew:0"]) == [("mmoe", "multimnist", "ew", 0)]


def test_architectures_preset_end_to_end_tiny_with_summary(splits, tmp_path):
    """Every architecture trains through the preset; the summary sets them beside LeNet
    hard sharing of the converged grid's records on the same budget."""
    from eegmtl.experiments.vision_architectures import (
        summarize_architectures,
        write_architectures_summary,
    )

    over = {**vision_grid.TINY, "n_train": 64, "n_val": 32, "n_test": 32}
    preset = PRESETS["architectures"]
    assert vision_grid.run_preset(preset, list(preset.items), tmp_path, overrides=over,
                                  splits=splits, device="cpu", threads=1,
                                  checkpoint_dir=tmp_path / "ck") == 4
    rec = pd.read_csv(tmp_path / "vision_architectures.csv")
    avg = rec[rec["task"] == "avg"]
    assert sorted(avg["model"]) == sorted(PRESETS["architectures"].stages)
    assert np.isfinite(avg["avg_accuracy"]).all()
    conv = PRESETS["converged"]
    vision_grid.run_preset(conv, select_items(conv, ["multimnist:ew:*"]), tmp_path,
                           overrides=over, splits=splits, device="cpu", threads=1,
                           checkpoint_dir=tmp_path / "ck")
    ref = pd.read_csv(tmp_path / "vision_converged.csv")
    text = summarize_architectures(rec, ref, "multi_mnist", epochs=1)
    lenet = ref[(ref["task"] == "avg")].set_index("seed")["avg_accuracy"] * 100
    for model in ("mmoe", "cgc", "ple", "cross_stitch"):
        a = 100 * float(avg[avg["model"] == model]["avg_accuracy"].iloc[0])
        assert f"- {model} seed 0: {a - lenet[0]:+.2f} — " in text
    assert f"Hard sharing over 3 seeds: {lenet.mean():.2f} ± {lenet.std(ddof=1):.2f} %" in text
    # at the real budget (16 epochs) none of these 1-epoch records counts
    assert "No architecture run has finished yet." in summarize_architectures(rec, ref)
    assert write_architectures_summary(tmp_path).read_text().startswith("# Multi-task")
