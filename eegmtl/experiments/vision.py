"""MultiMNIST-family benchmarks for the MTL methods: run a grid, write records and a summary.

Thin layer over :func:`eegmtl.benchmarks.runner.run_grid` (``eegmtl vision``). Writes

- ``<results>`` (default ``<results folder>/vision_lenet.csv``): tidy records, one row per
  data set × method × seed × task (+ ``avg``), the vision record schema;
- ``vision_runs.csv`` next to it: one row per invocation (command, shard, wall time);
- ``vision_summary.md`` next to it (:mod:`eegmtl.experiments.vision_summary`): tables
  generated from the records (avg accuracy, Δp vs
  EW, conflict rate, calibration) and the comparison with the papers' claims (flat variants
  beat their plain versions, F-MTL Table 1; RLW ≥ EW, RLW paper).

Usage::

    # the committed CPU grid (two shards in parallel, 1 thread each)
    eegmtl vision --epochs 3 --n-train 15000 --threads 1 --shard 0/2 &
    eegmtl vision --epochs 3 --n-train 15000 --threads 1 --shard 1/2 &
    eegmtl vision --summary-only        # regenerate vision_summary.md
    # flat ablation: plain SAM with the core's default radius (labelled apart in the summary)
    eegmtl vision --epochs 3 --n-train 15000 --threads 1 --benchmarks multimnist \
        --methods f-mgda f-pcgrad f-cagrad f-imtl_g --flat-preset sam --flat-rho 0.05
    # F-MTL Table 1 protocol (ResNet-18, Adam 1e-3, bs 256, 100 epochs) on a GPU
    eegmtl vision --gpu-protocol resnet18 --seeds 0 1 2 \\
        --results vision_resnet18.csv
    # named grids (eegmtl.experiments.vision_presets), resumable, sharded, one record file
    eegmtl vision --preset converged --estimate
    OMP_NUM_THREADS=1 eegmtl vision --preset converged --threads 1 --shard 0/2 &
    OMP_NUM_THREADS=1 eegmtl vision --preset converged --threads 1 --shard 1/2 &
    eegmtl vision --preset converged --summary-only
    eegmtl vision --preset fmtl-gpu --device cuda
    # where the time of one run goes (data, steps, evaluation, probes, I/O)
    eegmtl vision --bench --benchmarks multimnist --methods ew --epochs 2 --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.experiments._common import (
    add_parallel_arguments,
    command_line,
    log_invocation,
    log_line,
    non_negative_int,
    positive_int,
    set_torch_threads,
)
from eegmtl.experiments.vision_presets import PRESETS
from eegmtl.experiments.vision_summary import DATASETS, METHODS, write_summary

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl vision``."""
    parser.description = (__doc__ or "").split("\n\n")[0] + f" {RESULTS_DIR_HELP}."
    p = parser
    p.add_argument("--benchmarks", nargs="+", default=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=non_negative_int, default=[0])
    p.add_argument("--epochs", type=int, default=None, help="default: the protocol's (100)")
    p.add_argument("--model", default=None,
                   help="lenet | resnet18 | mmoe | cgc | ple | cross_stitch (LeNet experts; "
                        "default: the protocol's)")
    p.add_argument("--protocol", default="lenet", help="lenet | paretomtl-lenet | resnet18")
    p.add_argument("--gpu-protocol", choices=["resnet18"], default=None,
                   help="F-MTL Table 1 settings (ResNet-18, Adam 1e-3, bs 256, 100 epochs)")
    p.add_argument("--n-train", type=int, default=None, help="training subset (first n rows)")
    p.add_argument("--n-val", type=int, default=None)
    p.add_argument("--n-test", type=int, default=None)
    p.add_argument("--conflict-every", type=int, default=5)
    p.add_argument("--flat-preset", choices=["fmtl", "sam"], default="fmtl",
                   help="flat setting of f- methods: fmtl = F-MTL MultiMNIST (ASAM, rho 2, joint "
                        "norm); sam = plain SAM, separate norms (eegmtl core default, rho 0.05)")
    p.add_argument("--flat-rho", type=float, default=None, help="override the preset's rho")
    p.add_argument("--results", type=Path, default=None,
                   help="CSV (default <results folder>/vision_<model>.csv)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (of each worker with --n-jobs/--backend: default 1)")
    add_parallel_arguments(p, threads=False)
    p.add_argument("--shard", default="0/1", help="k/n: run every n-th grid item from k")
    p.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="per-run trainer checkpoints (default ~/.cache/eegmtl/vision_runs)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--summary-only", action="store_true", help="only regenerate the summary")
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="a named grid (eegmtl.experiments.vision_presets): converged = LeNet, "
                        "full sets, converged epoch budget, 3 seeds (CPU); curves = the "
                        "validation curves the budget is chosen from; fmtl-gpu = F-MTL "
                        "MultiMNIST protocol (ResNet-18, 200 epochs, 3 seeds) + LeNet grid at "
                        "100 epochs (GPU); architectures = MMoE / CGC / PLE / Cross-stitch "
                        "of LeNet on MultiMNIST at the converged budget (CPU). Resumable; "
                        "--shard k/n or --only pick runs; all shards write to one record file")
    p.add_argument("--only", action="append", default=[], metavar="DATASET:METHOD:SEED",
                   help="with --preset: run only these (repeatable; '*' matches anything; "
                        "STAGE/DATASET:METHOD:SEED picks one stage, e.g. mmoe/multimnist:ew:0)")
    p.add_argument("--estimate", action="store_true",
                   help="with --preset: print the estimated CPU time of the selected runs "
                        "(from a measured EW step) and which are done, then exit")
    p.add_argument("--ew-step-ms", type=float, default=None,
                   help="with --estimate: EW step time to use instead of measuring it now")
    p.add_argument("--tiny", action="store_true",
                   help="with --preset: 1 epoch on 256/128/128 pairs (smoke test of the preset)")
    p.add_argument("--bench", action="store_true",
                   help="time one run (--benchmarks[0], --methods[0], --epochs, default 2): "
                        "data, steps, evaluation, probes, I/O and the ratio epoch wall / the "
                        "same steps timed alone")


def _flat_config(preset: str, rho: float | None) -> Any:
    from dataclasses import replace

    from eegmtl.mtl.flat import FMTL_MULTIMNIST, FlatConfig

    base = FMTL_MULTIMNIST if preset == "fmtl" else FlatConfig()
    return base if rho is None else replace(base, rho=float(rho))


def run(args: argparse.Namespace) -> int:
    """Run the grid (or regenerate the summary) as parsed by :func:`add_arguments`."""
    if args.gpu_protocol:
        args.protocol = args.gpu_protocol
    model = args.model or ("resnet18" if args.protocol == "resnet18" else "lenet")
    results = args.results or results_dir() / f"vision_{model}.csv"
    results.parent.mkdir(parents=True, exist_ok=True)
    if args.bench:
        set_torch_threads(args.threads)
        from eegmtl.experiments.vision_bench import bench_run

        bench_run(args.benchmarks[0], args.methods[0], args.epochs or 2, n_train=args.n_train,
                  conflict_every=args.conflict_every, device=args.device,
                  flat=_flat_config(args.flat_preset, args.flat_rho))
        return 0
    if args.preset:
        from eegmtl.experiments.vision_grid import run_preset_command

        return run_preset_command(args)
    preset_only = [f for f, on in (("--tiny", args.tiny), ("--only", args.only),
                                   ("--estimate", args.estimate)) if on]
    if preset_only:
        raise SystemExit(
            f"eegmtl vision: {', '.join(preset_only)} applies with --preset only (e.g. "
            "--preset converged --tiny); this run would ignore it. For a small plain run give "
            "the sizes, e.g. --epochs 1 --n-train 256 --n-val 128 --n-test 128.")
    if args.summary_only:
        print(write_summary(results))
        return 0
    set_torch_threads(args.threads)
    from eegmtl.benchmarks._cache import cache_dir
    from eegmtl.benchmarks.runner import run_grid

    k, n = (int(v) for v in args.shard.split("/"))
    start = time.time()
    command = command_line(args)

    log = log_line
    log(f"start: {command}")
    recs = run_grid(
        args.benchmarks, args.methods, args.seeds, shard=(k, n), log=log, model=model,
        n_jobs=args.n_jobs, backend=args.backend, address=args.address,
        protocol=args.protocol, epochs=args.epochs, n_train=args.n_train, n_val=args.n_val,
        n_test=args.n_test, conflict_every=args.conflict_every, device=args.device,
        flat=_flat_config(args.flat_preset, args.flat_rho),
        results_path=results, resume=not args.no_resume, progress=args.progress,
        checkpoint_dir=args.checkpoint_dir or cache_dir(None, "vision_runs"),
    )
    n_runs = int((recs["task"] == "avg").sum()) if not recs.empty else 0
    log_invocation(results, command, args.shard, start, n_runs)
    log(f"done: {n_runs} runs in {time.time() - start:.0f} s; summary {write_summary(results)}")
    return 0
