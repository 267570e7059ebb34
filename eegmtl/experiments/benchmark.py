"""The whole BCIC IV 2b benchmark in one command (``eegmtl benchmark --preset full|tiny``).

Every pipeline of the method registry (:func:`eegmtl.evaluation.methods.available_methods`,
read at run time; ``--methods`` filters it) under both protocols of
:func:`eegmtl.evaluation.run_protocol`:

- subject-dependent (SD): 9 subjects x 5 folds;
- subject-independent (SI): 9 held-out subjects x fold 1, without alignment and, when the
  runner takes ``alignment=``, with Euclidean alignment (``--alignment``, default the
  transductive per-recording setting of :mod:`eegmtl.eeg.alignment`);

each for 3 seeds (the pipelines of :data:`SEED_FREE`, whose fits draw no random number, for
the first seed only: the others would repeat its records). Stages run seed-major (seed 0 of
SD, SI, SI-aligned first), so a run stopped by a time limit has complete seeds. Fits run in
parallel through the runner's joblib ``n_jobs`` (loky worker processes), each worker with a
fixed number of torch/OpenMP threads (``--threads``, default cores // workers); on a CUDA
machine every worker trains on the GPU (several workers share one GPU), and with several GPUs
the subjects are sharded over one child process per GPU, each seeing its GPU alone through
``CUDA_VISIBLE_DEVICES``. Within a stage the fits start longest first (the estimate's costs).
Records go to ``<results>/benchmark_<preset>_{sd,si,si_<alignment>}.csv`` through the runner's
record store, merged after every fit, so a rerun (or a second run after a time-out) skips
finished fits.

``--adopt CSV ...`` first takes over the records of other files that are fits of the run (same
pipeline, split, seed and settings, e.g. made by ``eegmtl sd``, which labels the same data
otherwise; :mod:`eegmtl.evaluation.adopt`), so that they are not refitted; with ``--estimate``
it only counts them.

``--preset tiny`` runs the same code path on 1 subject, 1 fold, 1 seed and 1 epoch on the CPU;
``--synthetic`` replaces the data by random BCIC-IV-2b-shaped trials (a smoke test without
the data). ``--estimate`` prints the planned fits and the wall time predicted from the fit times
of earlier records (:mod:`eegmtl.experiments.benchmark_estimate`) and exits; the plan of a
run (presets, stages, their pipelines) is :mod:`eegmtl.experiments.benchmark_plan`.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.experiments._common import (
    SUMMARY_MARGIN_S,
    add_checkpoint_arguments,
    add_scheduling_arguments,
    command_line,
    deadline_after,
    elapsed_s,
    fit_checkpoint_dir,
    minutes,
    non_negative_int,
    parse_subjects,
    positive_int,
)
from eegmtl.experiments.benchmark_estimate import (
    GPU_SPEEDUP,
    EstimateRow,
    default_reference,
    done_fits,
    estimate,
    fits_within,
    measured_speedups,
    print_estimate,
    stage_fits,
)
from eegmtl.experiments.benchmark_plan import (
    PRESETS,
    SEED_FREE,
    Preset,
    Stage,
    method_overrides,
    runner_alignment,
    select_methods,
    stage_call,
    stage_methods,
    stages,
    synthetic_2b,
)
from eegmtl.parallel import WorkerDiedError

# the plan and the estimate live in their own modules; their names stay importable from here
__all__ = ["GPU_SPEEDUP", "PRESETS", "SEED_FREE", "SUMMARY_MARGIN_S", "EstimateRow", "Preset",
           "Stage", "add_arguments", "adopt", "default_reference", "done_fits", "estimate",
           "fits_within", "measured_speedups", "method_overrides", "print_estimate",
           "record_keys_before", "run", "run_deadline", "runner_alignment", "select_methods",
           "stage_call", "stage_fits", "stage_methods", "stages", "synthetic_2b",
           "worker_layout", "write_summaries"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl benchmark``."""
    parser.description = (__doc__ or "").split("\n\n")[0] + f" {RESULTS_DIR_HELP}."
    p = parser
    p.add_argument("--preset", choices=sorted(PRESETS), default="full",
                   help="full: 9 subjects, SD 5 folds, SI fold 1, 3 seeds; tiny: 1 subject, "
                        "1 fold, 1 seed, 1 epoch, CPU")
    p.add_argument("--methods", nargs="+", default=None,
                   help="registry names (default: every registered pipeline)")
    p.add_argument("--exclude", nargs="+", default=[], help="registry names to leave out")
    p.add_argument("--protocols", nargs="+", choices=["sd", "si"], default=["sd", "si"])
    p.add_argument("--subjects", nargs="+", default=None, help="override the preset's")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=None,
                   help="override the preset's")
    p.add_argument("--max-epochs", type=positive_int, default=None,
                   help="epoch cap of the deep pipelines (default: the preset's)")
    p.add_argument("--alignment", default="transductive", type=str.lower,
                   choices=["transductive", "inductive", "none"],
                   help="alignment of the second SI stage when the runner offers it "
                        "(transductive or inductive; 'none' skips it)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the preset's)")
    p.add_argument("--n-jobs", type=positive_int, default=None,
                   help="parallel fits per device (default: cores, or cores per GPU, capped "
                        "by GPU memory / --gpu-mem-per-worker)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch/OpenMP threads per worker (default cores // workers, >= 1)")
    p.add_argument("--gpu-mem-per-worker", type=float, default=2.0, help="GiB (default 2)")
    add_scheduling_arguments(p, expected="by the estimate's time for its pipeline, as "
                                          "--estimate prints it")
    add_checkpoint_arguments(p)
    p.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # "i/n", set per GPU
    p.add_argument("--deadline", type=float, default=None,
                   help=argparse.SUPPRESS)  # time.time() by which to end, set per GPU
    p.add_argument("--results", type=Path, default=None,
                   help="record folder (default: the results folder)")
    p.add_argument("--synthetic", action="store_true",
                   help="random 2b-shaped data instead of the export (smoke test)")
    p.add_argument("--estimate", action="store_true",
                   help="print the planned fits and the predicted wall time, then exit")
    p.add_argument("--reference", type=Path, nargs="+", default=None,
                   help="records whose fit times feed --estimate (default every sd*.csv and "
                        "si*.csv record file of the results folder)")
    p.add_argument("--gpu-speedup", type=float, default=None,
                   help="assumed speed-up of a deep fit over its CPU-recorded time, for "
                        "pipelines without a measured speed-up of their own (default "
                        f"{GPU_SPEEDUP:g} when the run is on a GPU); with --estimate on a "
                        "CPU, a value > 1 estimates a GPU run. A run on a CPU ignores it")
    p.add_argument("--adopt", type=Path, nargs="+", default=None, metavar="CSV",
                   help="first take over the records of these files that are fits of this run "
                        "(same pipeline, split, seed and settings; made e.g. by `eegmtl sd`, "
                        "which labels the same data otherwise: eegmtl.evaluation.adopt) "
                        "instead of refitting them; with --estimate only count them")
    p.add_argument("--budget", type=float, default=540.0,
                   help="--estimate: wall-time budget in s (default 540)")
    p.add_argument("--no-progress", action="store_true")


# --------------------------------------------------------------------------- workers
def worker_layout(device: str, n_jobs: int | None, threads: int | None,
                  gpu_mem_per_worker: float) -> tuple[str, int, int, int]:
    """(device, workers per device, threads per worker, GPUs) for this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(int(cores or 1), 1)
    gpus, gpu_mem = 0, 0.0
    if device in ("auto", "cuda") or device.startswith("cuda:"):
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus:
            gpu_mem = torch.cuda.get_device_properties(0).total_memory / 2**30
        elif device != "auto":
            raise SystemExit(f"--device {device}: torch sees no CUDA GPU (torch "
                             f"{torch.__version__}); use --device cpu or auto")
        device = "cuda" if gpus else "cpu"
    per_device = cores // max(gpus, 1)
    if n_jobs is None:
        n_jobs = per_device
        if gpus:
            n_jobs = min(n_jobs, max(1, int(gpu_mem // gpu_mem_per_worker)))
    n_jobs = max(1, int(n_jobs))
    threads = threads or max(1, per_device // n_jobs)
    return device, n_jobs, int(threads), gpus


def _run_shards(args: argparse.Namespace, gpus: int) -> int:
    """One child process per GPU, each on its own subjects and GPU; the highest exit status.

    Interrupted (Ctrl-C, or SIGTERM sent to this process only, as ``kill`` or a scheduler
    does), it sends SIGTERM to the shards still running — each stops like Ctrl-C, its finished
    fits recorded — and waits for them (at most a minute each, then kills them) before the
    interruption goes on, so that no shard outlives the summaries.
    """
    procs: list[subprocess.Popen] = []
    end = run_deadline(args)  # one deadline for every shard, counted from this start
    try:
        for i in range(gpus):
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(i)}
            cmd = [sys.executable, "-m", "eegmtl", "benchmark", *args.argv,
                   "--shard", f"{i}/{gpus}",
                   *(["--deadline", repr(end)] if end is not None else [])]
            procs.append(subprocess.Popen(cmd, env=env))
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        raise


def adopt(plan: list[Stage], calls: list[dict[str, Any]], data: Any, files: list[Path], *,
          write: bool) -> int:
    """Take over the records of ``files`` that are fits still to make in ``plan``
    (:func:`eegmtl.evaluation.adopt.adoptable`; ``calls``: :func:`stage_call` of each stage);
    merged into the stages' record files when ``write``, else only counted. Prints what per
    stage and pipeline; returns the number of records."""
    from eegmtl.evaluation.adopt import adoptable, read_candidates
    from eegmtl.evaluation.records import merge_records
    from eegmtl.evaluation.runner import run_protocol

    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise SystemExit(f"--adopt: no such record file(s): {', '.join(missing)}")
    own = {st.records.resolve() for st in plan}
    candidates = read_candidates([f for f in files if Path(f).resolve() not in own])
    total = 0
    for st, call in zip(plan, calls, strict=True):
        if not call["methods"]:
            continue
        todo = run_protocol(data=data, plan_only=True, progress=False, **call)
        rows = adoptable(todo, candidates, call["dataset"])
        if rows.empty:
            continue
        if write:
            merge_records(rows, st.records)
        total += len(rows)
        counts = rows.groupby("pipeline").size()
        print(f"{'adopted' if write else 'adoptable'}: {st.protocol} seed {st.seed}"
              f"{' aligned ' + st.alignment if st.alignment else ''}: {len(rows)} records ("
              + ", ".join(f"{m} {n}" for m, n in counts.items()) + f") into {st.records}")
    return total


def record_keys_before(plan: list[Stage], methods: list[str]) -> dict[Path, set[tuple]]:
    """Keys of the records of ``methods`` in each record file of ``plan`` now (before a run)."""
    from eegmtl.experiments.summaries import record_keys

    return {path: record_keys(path, methods) for path in sorted({st.records for st in plan})}


def write_summaries(plan: list[Stage], args: argparse.Namespace,
                    before: dict[Path, set[tuple]] | None,
                    methods: list[str] | None = None) -> None:
    """The summary of every record file of ``plan``, the command logged in each; ``before``
    (:func:`record_keys_before` of ``methods`` at the start) marks an interrupted run, whose
    command is logged only where it added records of ``methods``."""
    from eegmtl.experiments.summaries import write_interrupted_summary, write_summary

    for path in sorted({st.records for st in plan}):
        protocol = "subject_dependent" if path.stem.endswith("_sd") else "subject_independent"
        kw = {"title": f"BCIC IV 2b benchmark ({args.preset}), {path.stem}"}
        out, wall = path.with_name(f"{path.stem}_summary.md"), elapsed_s()
        if before is not None:
            write_interrupted_summary(path, out, protocol, command_line(args), wall,
                                      keys_before=before.get(path, set()),
                                      pipelines=methods, **kw)
        else:
            write_summary(path, out, protocol, command_line(args), wall, **kw)


def run_deadline(args: argparse.Namespace) -> float | None:
    """``time.time()`` by which the run's last fit should end: ``--deadline`` when given (a
    shard of a multi-GPU run), else ``--time-limit`` seconds after the process started, less
    :data:`SUMMARY_MARGIN_S`; None without a limit."""
    if getattr(args, "deadline", None) is not None:
        return float(args.deadline)
    limit = getattr(args, "time_limit", None)
    return None if limit is None else deadline_after(limit)


# --------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    """Run the benchmark as parsed by :func:`add_arguments`."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    preset = PRESETS[args.preset]
    subjects = (parse_subjects(args.subjects, valid=PRESETS["full"].subjects)  # 2b's
                if args.subjects else list(preset.subjects))
    seeds = list(args.seeds) if args.seeds is not None else list(preset.seeds)
    max_epochs = args.max_epochs if args.max_epochs is not None else preset.max_epochs
    methods = select_methods(args.methods, args.exclude)
    folder = args.results or results_dir()
    name = args.preset + ("_synthetic" if args.synthetic else "")
    align = None if args.alignment == "none" else args.alignment
    if align and "si" in args.protocols and not runner_alignment():
        print("note: run_protocol takes no alignment= in this version; the aligned SI stage is "
              "skipped")
        align = None
    plan = stages(preset, list(args.protocols), seeds, folder, name, align)
    if args.shard:
        i, n = (int(v) for v in args.shard.split("/"))
        subjects = subjects[i::n]
    device, n_jobs, threads, gpus = worker_layout(args.device or preset.device, args.n_jobs,
                                                  args.threads, args.gpu_mem_per_worker)
    if gpus > 1 and not args.shard and not args.estimate:
        print(f"{gpus} GPUs: one process per GPU, subjects sharded")
        before = record_keys_before(plan, methods)
        try:
            status = _run_shards(args, gpus)
        except KeyboardInterrupt:
            write_summaries(plan, args, before, methods)
            raise
        # a failed shard: the command is logged as an interrupted run, where it added records
        write_summaries(plan, args, before if status else None, methods)
        return status
    wanted = {"max_epochs": max_epochs, "device": device}
    overrides = {p: {m: method_overrides(m, p, wanted) for m in methods}
                 for p in {st.protocol for st in plan}}
    runnable = {p: [m for m in methods if o[m] is not None] for p, o in overrides.items()}
    calls = [stage_call(st, stage_methods(st, runnable[st.protocol], plan[0].seed),
                        overrides[st.protocol], subjects, args.synthetic) for st in plan]
    data = None
    before_adopt = record_keys_before(plan, methods)
    if args.adopt:
        from eegmtl.evaluation.runner import load_default_data

        data = synthetic_2b() if args.synthetic else load_default_data()
        adopt(plan, calls, data, args.adopt, write=not args.estimate)
    reference = args.reference or default_reference(results_dir())
    workers = n_jobs * max(gpus, 1)
    n_fits = sum(len(subjects) * len(st.folds)
                 for st in plan for _ in stage_methods(st, runnable[st.protocol], plan[0].seed))
    # GPU costs for a run on a GPU, or for an --estimate of one (--gpu-speedup > 1) made here
    gpu = device == "cuda" or bool(args.estimate and (args.gpu_speedup or 1.0) > 1)
    speedup = (args.gpu_speedup or GPU_SPEEDUP) if gpu else 1.0
    wall_est, rows = estimate(plan, runnable, len(subjects), workers, reference,
                              max_epochs=max_epochs, gpu_speedup=speedup, gpu=gpu,
                              remaining_of=subjects)
    n_todo = sum(r.fits for r in rows)
    print(f"benchmark --preset {args.preset}: {len(methods)} pipelines, subjects {subjects}, "
          f"seeds {seeds}, {len(plan)} stages, {n_fits} fits ({n_fits - n_todo} with a record, "
          f"{n_todo} to run); device {device}, {n_jobs} "
          f"workers x {threads} threads{f' per GPU x {gpus} GPUs' if gpus > 1 else ''}; "
          f"max_epochs {max_epochs or 'registry default'}")
    sources = (", ".join(str(p) for p in reference) or "no record files"
               if len(reference) <= 3 else
               f"{len(reference)} record files in {Path(reference[0]).parent}")
    known = any(math.isfinite(r.cost) for r in rows)
    if known:
        scaling = (f"; CPU-recorded deep fits / their own measured GPU speed-up, else / "
                   f"{speedup:g}" if gpu else "")
        print(f"estimate: {minutes(wall_est)} on {workers} workers for the {n_todo} fits "
              f"to run (median fit times of {sources}{scaling})")
    else:
        print(f"estimate: none (no recorded fit time of these pipelines in {sources}; "
              "--reference names record files to estimate from)")
    if args.estimate:
        print_estimate(rows, plan, runnable, subjects, workers, args.budget, args.time_limit)
        return 0

    from eegmtl.evaluation.runner import load_default_data, run_protocol

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)  # loky workers inherit these
    # loaded once here and shared by every stage, whichever protocols run: the records'
    # config hash names the data by the dataset label when the data are given, so an SD-only
    # run must not let run_protocol load (and name) them itself
    if data is None:
        data = synthetic_2b() if args.synthetic else load_default_data()
    expected = {(r.protocol, r.pipeline): r.cost for r in rows if math.isfinite(r.cost)}
    deadline, deferred = run_deadline(args), 0
    before = before_adopt  # adopted records count as this run's (logged with its command)

    def summaries(interrupted: bool) -> None:
        if not args.shard:  # a shard's parent process writes them
            write_summaries(plan, args, before if interrupted else None, methods)

    try:
        for st, call in zip(plan, calls, strict=True):
            chosen = call["methods"]
            if not chosen:
                continue
            # the estimate's costs order each stage's fits longest first (no long fit last)
            expected_fit_s = {m: expected[(st.protocol, m)] for m in chosen
                              if (st.protocol, m) in expected}
            t0 = time.perf_counter()
            df = run_protocol(
                data=data, n_jobs=n_jobs, progress=not args.no_progress,
                torch_threads=threads, batch_fits=args.batch_fits, deadline=deadline,
                batch_speedup=args.batch_speedup, expected_fit_s=expected_fit_s,
                checkpoint_dir=fit_checkpoint_dir(args), **call)
            left = int(df.attrs.get("n_deferred", 0))
            deferred += left
            print(f"[{elapsed_s():7.1f} s] {st.protocol} seed {st.seed}"
                  f"{' aligned ' + st.alignment if st.alignment else ''}: {len(df)} records in "
                  f"{st.records} ({time.perf_counter() - t0:.1f} s)"
                  f"{f'; {left} fits left for the next run (time limit)' if left else ''}")
    except (KeyboardInterrupt, WorkerDiedError):  # Ctrl-C, SIGTERM, a dead worker: the
        # summaries of what is recorded so far
        summaries(interrupted=True)
        raise
    summaries(interrupted=False)
    if deferred:
        print(f"time limit: {deferred} fits not started; run the same command again to resume")
    print(f"benchmark done in {elapsed_s():.1f} s")
    return 0
