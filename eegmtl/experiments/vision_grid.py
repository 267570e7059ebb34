"""Run a named vision grid (``eegmtl vision --preset NAME``): shards, resume, estimate, summary.

See :mod:`eegmtl.experiments.vision_presets` for the presets and the sharding rule. Each run
goes through :func:`eegmtl.benchmarks.runner.run_benchmark` (finished runs skipped by
``config_hash``; interrupted runs continue from their per-epoch checkpoint); every shard
merges its records into the stage's one record file under a lock and appends its invocation
to ``vision_runs.csv``; the summary (:mod:`eegmtl.experiments.vision_converged`, or
:mod:`eegmtl.experiments.vision_architectures` for that preset) is rewritten from whatever
records are present after every run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eegmtl.experiments.vision_presets import (
    PRESETS,
    Item,
    Preset,
    estimate_seconds,
    item_epochs,
    select_items,
    shard_items,
    stage_kwargs,
)

__all__ = ["TINY", "done_items", "recorded_ew_step", "run_preset", "run_preset_command",
           "shorter_budget_epochs"]

#: ``--tiny``: a smoke-test size of any preset (1 epoch, a few batches).
TINY: dict[str, Any] = {"epochs": 1, "n_train": 256, "n_val": 128, "n_test": 128}


def _paths(preset: Preset, stage: str, folder: Path) -> tuple[Path, Path | None]:
    spec = preset.stages[stage]
    history = spec.get("history")
    return folder / spec["results"], (folder / history if history else None)


def _run_records(preset: Preset, items: Sequence[Item], folder: Path
                 ) -> Iterator[tuple[Item, Any]]:
    """Each item with the ``task="avg"`` records of the same run (data set, method, seed) in
    its stage's record file, at any epoch budget (items without any are skipped)."""
    from eegmtl.benchmarks.protocols import canonical_benchmark
    from eegmtl.benchmarks.records import load_records

    tables: dict[Path, Any] = {}
    for item in items:
        stage, ds, method, seed = item
        path, _ = _paths(preset, stage, folder)
        if path not in tables:
            tables[path] = load_records(path) if path.is_file() else None
        table = tables[path]
        if table is None or table.empty:
            continue
        hit = table[(table["task"] == "avg") & (table["dataset"] == canonical_benchmark(ds))
                    & (table["method"] == method) & (table["seed"] == seed)]
        if not hit.empty:
            yield item, hit


def done_items(preset: Preset, items: Sequence[Item], folder: Path,
               overrides: dict[str, Any] | None = None) -> list[Item]:
    """Items whose records are in the stage's record file (same data set, method, seed and
    epoch budget)."""
    return [item for item, hit in _run_records(preset, items, folder)
            if (hit["epochs"] == item_epochs(preset, item, overrides)).any()]


def recorded_ew_step(preset: Preset, items: Sequence[Item], folder: Path,
                     overrides: dict[str, Any] | None = None) -> float | None:
    """The EW step time (s) the finished runs of ``items`` imply: per run at its budget, its
    recorded fit time over :func:`estimate_seconds` with a 1-second step, the median over the
    runs; ``None`` when none has finished. It calibrates the estimate to the machine as the
    runs saw it (loaded cores included), where a step timed now sees it as it is now."""
    from statistics import median

    ratios = []
    for item, hit in _run_records(preset, items, folder):
        at_budget = hit[hit["epochs"] == item_epochs(preset, item, overrides)]["time"].dropna()
        units = estimate_seconds(preset, [item], 1.0)
        if len(at_budget) and units > 0:
            ratios.append(float(at_budget.iloc[-1]) / units)
    return float(median(ratios)) if ratios else None


def shorter_budget_epochs(preset: Preset, items: Sequence[Item], folder: Path,
                          checkpoint_dir: Path,
                          overrides: dict[str, Any] | None = None) -> dict[Item, int]:
    """Per item, the largest shorter epoch budget at which the same run (data set, method,
    seed) has a record and its checkpoint is still in ``checkpoint_dir``: the epochs an
    extended run will not repeat (a record whose checkpoint is gone, e.g. on another machine,
    does not count: that run starts from scratch)."""
    from eegmtl.benchmarks.single_run import run_checkpoint

    out: dict[Item, int] = {}
    for item, hit in _run_records(preset, items, folder):
        kept = hit["config_hash"].map(lambda h: run_checkpoint(checkpoint_dir, h).is_file())
        shorter = hit[kept & (hit["epochs"] < item_epochs(preset, item, overrides))]
        if not shorter.empty:
            out[item] = int(shorter["epochs"].max())
    return out


def run_preset(
    preset: Preset,
    items: Sequence[Item],
    folder: Path,
    *,
    overrides: dict[str, Any] | None = None,
    splits: Any = None,
    log: Callable[[str], None] | None = None,
    after_run: Callable[[Path], Any] | None = None,
    **kwargs: Any,
) -> int:
    """Run ``items`` of ``preset`` in order (records into the stage files under ``folder``);
    returns the number of runs finished here (skipped finished runs included).

    ``overrides`` replace stage arguments (e.g. :data:`TINY`); ``splits`` replaces the data
    sets (tests); ``kwargs`` go to run_benchmark (device, threads, checkpoint_dir, resume).
    """
    from eegmtl.benchmarks.multimnist import load_multimnist
    from eegmtl.benchmarks.protocols import canonical_benchmark
    from eegmtl.benchmarks.runner import run_benchmark

    loaded: dict[str, Any] = {}
    n = 0
    for i, item in enumerate(items):
        stage, ds, method, seed = item
        t0 = time.perf_counter()
        name = canonical_benchmark(ds)
        data = splits
        if data is None:
            if name not in loaded:
                loaded.clear()  # one data set in memory at a time
                loaded[name] = load_multimnist(name)
            data = loaded[name]
        results, history = _paths(preset, stage, folder)
        run_kw = {**stage_kwargs(preset, item), **(overrides or {}), **kwargs}
        rec = run_benchmark(ds, method=method, seed=seed, splits=data, results_path=results,
                            history_path=history, **run_kw)
        n += 1
        avg = rec[rec["task"] == "avg"].iloc[0]
        if log is not None:
            log(f"[{i + 1}/{len(items)}] {stage} {name} {method} seed={seed}: avg acc "
                f"{avg['avg_accuracy']:.4f} (best epoch {avg['best_epoch']}) conflict "
                f"{avg['conflict_rate']:.2f} fit {avg['time']:.0f}s (wall "
                f"{time.perf_counter() - t0:.0f}s) -> {results.name}")
        if after_run is not None:
            after_run(results)
    return n


def run_preset_command(args: argparse.Namespace) -> int:
    """``eegmtl vision --preset NAME [--shard k/n] [--only ...] [--estimate] [--tiny]``."""
    from eegmtl.benchmarks._cache import cache_dir
    from eegmtl.config import results_dir
    from eegmtl.experiments._common import (
        command_line,
        log_invocation,
        log_line,
        set_torch_threads,
    )
    from eegmtl.experiments.vision_architectures import write_architectures_summary
    from eegmtl.experiments.vision_converged import write_converged_summary

    preset = PRESETS[args.preset]
    folder = args.results.parent if args.results else results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    overrides = dict(TINY) if args.tiny else {}
    if args.epochs is not None:
        overrides["epochs"] = int(args.epochs)
    k, n = (int(v) for v in args.shard.split("/"))
    items = shard_items(preset, select_items(preset, args.only), k, n)

    def summary(results: Path) -> Any:
        if args.tiny:
            return None
        if preset.name in ("converged", "curves"):
            return write_converged_summary(folder)
        if preset.name == "architectures":
            return write_architectures_summary(folder)
        return None

    if args.summary_only:
        print(summary(folder / "vision_converged.csv"))
        return 0
    done = done_items(preset, items, folder, overrides)
    checkpoints = args.checkpoint_dir or cache_dir(None, "vision_runs")
    if args.estimate:
        from eegmtl.experiments.vision_bench import ew_step_seconds

        given = getattr(args, "ew_step_ms", None)
        step = given / 1000 if given else ew_step_seconds(device=args.device)
        todo = [it for it in items if it not in done]
        shorter = shorter_budget_epochs(preset, todo, folder, checkpoints, overrides)
        total = estimate_seconds(preset, items, step)
        left = estimate_seconds(preset, todo, step, epochs_done=shorter)
        print(f"preset {preset.name}, shard {k}/{n}: {len(items)} runs, {len(done)} done, "
              f"{len(todo)} to run ({len(shorter)} of them extended from a shorter budget's "
              f"run); EW step {1000 * step:.1f} ms ("
              f"{'given' if given else 'thread CPU time, measured now'}); estimated CPU "
              f"time {total / 3600:.1f} h in all, {left / 3600:.1f} h left "
              "(one thread per process)")
        recorded = recorded_ew_step(preset, done, folder, overrides)
        if recorded is not None:
            left_rec = estimate_seconds(preset, todo, recorded, epochs_done=shorter)
            print(f"from the {len(done)} finished runs' fit times: EW step {1000 * recorded:.1f}"
                  f" ms (median), {left_rec / 3600:.1f} h left")
        for it in todo:
            ext = (f" (extends {shorter[it]} epochs)" if it in shorter else "")
            print("  todo", ":".join(map(str, it[1:])), f"[{it[0]}]{ext}")
        return 0
    set_torch_threads(args.threads)
    start, command, log = time.time(), command_line(args), log_line
    log(f"start: {command}; {len(items)} runs in this shard, {len(done)} already done")
    ran = run_preset(
        preset, items, folder, overrides=overrides, log=log, after_run=summary,
        device=args.device, progress=args.progress, resume=not args.no_resume,
        checkpoint_dir=checkpoints,
    )
    results = folder / next(iter(preset.stages.values()))["results"]
    log_invocation(results, command, args.shard, start, ran)
    log(f"done: {ran} runs in {time.time() - start:.0f} s")
    return 0
