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
of earlier records (see :func:`estimate`) and exits.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.experiments._common import (
    SUMMARY_MARGIN_S,
    add_scheduling_arguments,
    check_time_limit,
    command_line,
    deadline_after,
    elapsed_s,
    minutes,
    parse_subjects,
)
from eegmtl.parallel import WorkerDiedError

__all__ = ["GPU_SPEEDUP", "PRESETS", "SEED_FREE", "SUMMARY_MARGIN_S", "EstimateRow", "Preset",
           "add_arguments",
           "default_reference", "done_fits", "estimate", "fits_within", "measured_speedups",
           "run", "run_deadline", "stage_fits", "stage_methods", "stages", "synthetic_2b"]


@dataclass(frozen=True)
class Preset:
    """Size of a benchmark run: subjects, folds per protocol, seeds, epoch cap, device."""

    subjects: tuple[int, ...]
    sd_folds: tuple[int, ...]
    si_folds: tuple[int, ...]
    seeds: tuple[int, ...]
    max_epochs: int | None  # None: the registry's own (early-stopped) schedule
    device: str


PRESETS: dict[str, Preset] = {
    "full": Preset(tuple(range(1, 10)), (1, 2, 3, 4, 5), (1,), (0, 1, 2), None, "auto"),
    "tiny": Preset((1,), (1,), (1,), (0,), 1, "cpu"),
}

#: speed-up of a deep fit on one H200 worker (16 sharing the GPU) over the same fit on one CPU
#: thread, measured over 225 SD fits of five baselines (median per pipeline 14x-122x, ≈ 38x in
#: all); estimates of a GPU run divide by it the CPU-recorded fit times of deep pipelines that
#: have no GPU-measured speed-up of their own (:func:`measured_speedups`), unless told otherwise
GPU_SPEEDUP = 38.0


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
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the preset's")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="epoch cap of the deep pipelines (default: the preset's)")
    p.add_argument("--alignment", default="transductive",
                   help="alignment of the second SI stage when the runner offers it "
                        "(transductive or inductive; 'none' skips it)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the preset's)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="parallel fits per device (default: cores, or cores per GPU, capped "
                        "by GPU memory / --gpu-mem-per-worker)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/OpenMP threads per worker (default cores // workers, >= 1)")
    p.add_argument("--gpu-mem-per-worker", type=float, default=2.0, help="GiB (default 2)")
    add_scheduling_arguments(p, expected="by the estimate's time for its pipeline, as "
                                          "--estimate prints it")
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


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Stage:
    """One runner call: protocol, folds, seed, alignment (None = none) and record file."""

    protocol: str
    folds: tuple[int, ...]
    seed: int
    alignment: str | None
    records: Path


def runner_alignment() -> bool:
    """Whether :func:`eegmtl.evaluation.runner.run_protocol` takes ``alignment=``."""
    from eegmtl.evaluation.runner import run_protocol

    return "alignment" in inspect.signature(run_protocol).parameters


def stages(preset: Preset, protocols: list[str], seeds: list[int], folder: Path, name: str,
           alignment: str | None) -> list[Stage]:
    """Runner calls of a benchmark, seed-major: SD, SI, SI aligned for seed 0, then seed 1..."""
    out = []
    for seed in seeds:
        if "sd" in protocols:
            out.append(Stage("subject_dependent", preset.sd_folds, seed, None,
                             folder / f"benchmark_{name}_sd.csv"))
        if "si" in protocols:
            out.append(Stage("subject_independent", preset.si_folds, seed, None,
                             folder / f"benchmark_{name}_si.csv"))
            if alignment:
                out.append(Stage("subject_independent", preset.si_folds, seed, alignment,
                                 folder / f"benchmark_{name}_si_{alignment}.csv"))
    return out


#: pipelines whose fit draws no random number: every seed gives the same records (pinned by a
#: test), so the benchmark fits them for its first seed only
SEED_FREE = ("CSP+LDA", "FBCSP+SVM", "TS+SVM")


def stage_methods(st: Stage, methods: list[str], first_seed: int) -> list[str]:
    """The pipelines stage ``st`` runs: ``methods`` without the :data:`SEED_FREE` ones after
    the first seed."""
    return [m for m in methods if st.seed == first_seed or m not in SEED_FREE]


def select_methods(methods: list[str] | None, exclude: list[str]) -> list[str]:
    """Registry names to run: ``methods`` (default all registered) minus ``exclude``."""
    from eegmtl.evaluation.methods import available_methods, close_names

    known = available_methods()
    chosen = list(methods) if methods else known
    unknown = sorted(set(chosen) - set(known)) + sorted(set(exclude) - set(known))
    if unknown:
        named = [repr(u) + (f" (did you mean {c[0]!r}?)" if (c := close_names(u, known, 1))
                            else "") for u in unknown]
        raise SystemExit(f"unknown method(s) {', '.join(named)}; the preset runs registered "
                         f"names only: {', '.join(known)}")
    return [m for m in chosen if m not in set(exclude)]


def method_overrides(name: str, protocol: str, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The keys of ``wanted`` that method ``name`` accepts (tried by building it), or None when
    the method has no settings for ``protocol`` (e.g. a variant tuned for SD only)."""
    from eegmtl.evaluation.methods import get_method

    try:
        spec = get_method(name, protocol)
    except ValueError:
        return None
    out = {}
    for key, value in wanted.items():
        if value is None:
            continue
        try:
            spec.with_config(**out, **{key: value}).build()
        except (TypeError, ValueError):
            continue  # e.g. CSP+LDA takes no max_epochs
        out[key] = value
    return out


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


def stage_call(st: Stage, chosen: list[str], params: dict[str, Any], subjects: list[int],
               synthetic: bool) -> dict[str, Any]:
    """The :func:`~eegmtl.evaluation.runner.run_protocol` arguments that name the fits of
    stage ``st`` (with its pipelines ``chosen`` and their overrides ``params``): what a run and
    its plan share."""
    from eegmtl.evaluation.runner import DEFAULT_DATASET

    extra = {"alignment": st.alignment} if st.alignment else {}
    return {"protocol": st.protocol, "methods": chosen, "subjects": subjects,
            "folds": list(st.folds), "seeds": [st.seed], "results_path": st.records,
            "method_params": {m: params[m] for m in chosen if params[m]},
            "dataset": "synthetic" if synthetic else DEFAULT_DATASET, **extra}


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


# --------------------------------------------------------------------------- data
def synthetic_2b(n_trials: int = 12, n_times: int = 1000, seed: int = 0) -> tuple[Any, ...]:
    """Random BCIC-IV-2b-shaped epochs: 9 subjects x 5 sessions x ``n_trials`` trials of 3
    channels at 250 Hz in µV, class 1 with more 10-14 Hz power on C3 than on C4."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [(s, k) for s in range(1, 10) for k in range(1, 6) for _ in range(n_trials)]
    meta = pd.DataFrame(rows, columns=["subject", "session_index"])
    meta["session"] = meta["session_index"].map(lambda k: f"{k - 1}{'train' if k < 4 else 'test'}")
    y = np.concatenate([rng.permutation(np.arange(n_trials) % 2) for _ in range(45)])
    t = np.arange(n_times) / 250.0
    X = rng.standard_normal((len(y), 3, n_times)) * 2.0
    mu = np.sin(2 * np.pi * rng.uniform(10, 14, (len(y), 1)) * t)
    X[:, 0] += np.where(y[:, None] == 1, 2.0, 0.5) * mu
    X[:, 2] += np.where(y[:, None] == 1, 0.5, 2.0) * mu
    return X, y.astype(np.int64), meta


# --------------------------------------------------------------------------- estimate
def default_reference(folder: Path) -> list[Path]:
    """The SD and SI record files of ``folder`` (``sd*.csv``, ``si*.csv``): every protocol
    run's fit times, the modern baselines' (``sd_sota.csv``, ...) included, and those of
    earlier runs of the full preset on the real data (``benchmark_full_*.csv``)."""
    folder = Path(folder)
    full = [p for p in sorted(folder.glob("benchmark_full_*.csv")) if "synthetic" not in p.name]
    return sorted(folder.glob("sd*.csv")) + sorted(folder.glob("si*.csv")) + full


def done_fits(st: Stage, methods: list[str], subjects: list[int],
              records: Any = None) -> dict[str, int]:
    """Fits of stage ``st`` that already have a record in its file, per pipeline: rows with
    the pipeline's name, one of ``subjects``, one of the stage's folds and its seed (the
    stage's file holds one protocol and one alignment; a rerun skips these fits).
    ``records``: the file's records when already loaded (:func:`load_records`)."""
    from eegmtl.evaluation.records import load_records

    df = load_records(st.records) if records is None else records
    cols = ["protocol", "pipeline", "subject", "fold", "seed"]
    if df.empty or not set(cols) <= set(df.columns):
        return {}
    df = df[(df["protocol"] == st.protocol) & (df["seed"] == st.seed)
            & df["fold"].isin(st.folds) & df["subject"].isin(subjects)
            & df["pipeline"].isin(methods)]
    return df.drop_duplicates(cols).groupby("pipeline").size().astype(int).to_dict()


class EstimateRow(NamedTuple):
    """One (protocol, pipeline) of :func:`estimate`: its fits, their cost and its source."""

    protocol: str
    pipeline: str
    fits: int
    cost: float  # seconds per fit
    deep: bool
    source: str  # "cpu", "own", "gpu", "scaled" or "pool"
    speedup: float = math.nan  # the pipeline's own measured GPU speed-up (source "own")


def stage_fits(plan: list[Stage], methods: dict[str, list[str]], n_subjects: int,
               remaining_of: list[int] | None = None) -> list[tuple[Stage, dict[str, int]]]:
    """Per stage of ``plan``, the number of fits of each of its pipelines; with
    ``remaining_of`` (the run's subjects) only those without a record (:func:`done_fits`)."""
    from eegmtl.evaluation.records import load_records

    out = []
    loaded: dict[Path, Any] = {}  # stages of several seeds share one record file
    first_seed = plan[0].seed if plan else 0
    for st in plan:
        chosen = stage_methods(st, methods[st.protocol], first_seed)
        done: dict[str, int] = {}
        if remaining_of is not None:
            if st.records not in loaded:
                loaded[st.records] = load_records(st.records)
            done = done_fits(st, chosen, remaining_of, loaded[st.records])
        out.append((st, {m: n_subjects * len(st.folds) - done.get(m, 0) for m in chosen}))
    return out


def fits_within(stages_todo: list[tuple[Stage, dict[str, int]]],
                cost: dict[tuple[str, str], float], workers: int,
                limit: float) -> dict[tuple[str, str], int]:
    """How many fits of each (protocol, pipeline) a run with ``--time-limit limit`` gets
    through, by the rule of :func:`eegmtl.evaluation.runner.run_protocol`'s ``deadline``.

    Simulates the run: stages one after another (each waits for its last fit), within a stage
    the fits longest first, each started on the first free worker if it ends by ``limit``
    (a fit without a cost only while time is left), else left. Costs are ``cost[(protocol,
    pipeline)]`` seconds per fit.
    """
    import heapq

    got: dict[tuple[str, str], int] = {}
    now = 0.0
    for st, todo in stages_todo:
        jobs = sorted(((cost.get((st.protocol, m), math.nan), m)
                       for m, n in todo.items() for _ in range(n)),
                      key=lambda j: -(j[0] if math.isfinite(j[0]) else 0.0))
        free = [now] * max(workers, 1)
        for c, m in jobs:
            start = heapq.heappop(free)
            need = c if math.isfinite(c) else 0.0
            if start + need <= limit and start < limit:
                got[(st.protocol, m)] = got.get((st.protocol, m), 0) + 1
                heapq.heappush(free, start + need)
            else:
                heapq.heappush(free, start)
        now = max(free)
    return got


def measured_speedups(cpu: Any, gpu: Any) -> dict[str, float]:
    """Per pipeline, how many times faster its fits ran on a GPU than on one CPU thread.

    ``cpu`` and ``gpu`` are record frames (``protocol``, ``pipeline``, ``time``, and
    ``n_epochs_trained`` where known) of CPU- and GPU-recorded fits; for every pipeline with
    both in a protocol, the ratio of the two median times per trained epoch (the fits on the
    two devices need not have stopped after as many epochs; the median fit times where the
    epochs are not recorded), and the median of these ratios over protocols.
    """
    import numpy as np
    import pandas as pd

    ratios: dict[str, list[float]] = {}
    cols = {"protocol", "pipeline", "time"}
    if not (cols <= set(cpu.columns) and cols <= set(gpu.columns)):
        return {}

    def per_epoch(df: Any) -> Any:
        df = df.dropna(subset=["time"]).copy()
        epochs = (pd.to_numeric(df["n_epochs_trained"], errors="coerce")
                  if "n_epochs_trained" in df.columns else pd.Series(np.nan, index=df.index))
        df["unit"] = df["time"] / epochs.where(epochs > 0)
        return df

    cpu, gpu = per_epoch(cpu), per_epoch(gpu)
    for key in (set(map(tuple, cpu[["protocol", "pipeline"]].drop_duplicates().to_numpy()))
                & set(map(tuple, gpu[["protocol", "pipeline"]].drop_duplicates().to_numpy()))):
        c = cpu[(cpu["protocol"] == key[0]) & (cpu["pipeline"] == key[1])]
        g = gpu[(gpu["protocol"] == key[0]) & (gpu["pipeline"] == key[1])]
        col = "unit" if c["unit"].notna().any() and g["unit"].notna().any() else "time"
        a, b = float(c[col].median()), float(g[col].median())
        if a > 0 and b > 0:
            ratios.setdefault(key[1], []).append(a / b)
    return {m: float(np.median(r)) for m, r in sorted(ratios.items())}


def estimate(plan: list[Stage], methods: dict[str, list[str]], n_subjects: int, workers: int,
             reference: list[Path], *, max_epochs: int | None = None,
             gpu_speedup: float = 1.0, gpu: bool | None = None,
             remaining_of: list[int] | None = None) -> tuple[float, list[EstimateRow]]:
    """Predicted wall time (s) of ``plan`` on ``workers`` parallel workers.

    With ``remaining_of`` (the subjects of the run) only the fits without a record in their
    stage's file count (:func:`done_fits`): the time a rerun still needs.

    Each fit costs the median ``time`` of the same pipeline and protocol in ``reference``
    records (fits measured earlier, one thread per fit); a pipeline without records costs
    as described below. With ``max_epochs`` a deep fit costs at most that share of
    its recorded epochs. Records fitted on a GPU
    (:func:`eegmtl.evaluation.estimate.timed_on_gpu`) are GPU times: for a GPU run (``gpu``;
    by default ``gpu_speedup`` > 1) a deep pipeline that has them costs their median as is;
    the CPU-recorded cost of the others is divided by the pipeline's own speed-up where it
    was measured (:func:`measured_speedups`: its CPU-recorded over its GPU-recorded median
    time per trained epoch in a protocol that has both, ``"own"``), else by ``gpu_speedup``
    (``"cpu"``).
    The speed-up is far from uniform (a small network whose GPU steps are bound by kernel
    launches gains a few times, a transformer tens of times), so one factor for all would
    misprice most of them. For a CPU run GPU records and ``gpu_speedup`` are not used.
    The wall time is the total over workers, but never below
    the longest single fit (greedy list scheduling bound). ``methods`` maps each protocol to
    its pipelines. Returns (wall seconds, :class:`EstimateRow` per protocol and pipeline),
    source being ``"cpu"``, ``"own"``, ``"gpu"`` (GPU-recorded), ``"scaled"`` or ``"pool"``.

    A deep pipeline without records in a protocol but with records in another costs its
    median there times the median ratio between the two protocols over the deep pipelines
    recorded in both (``"scaled"``: an SI fit trains on eight subjects, an SD fit on one);
    without records in any protocol it costs the median of the protocol's recorded deep
    pipelines (``"pool"``); a classical one the median of the classical ones.
    """
    import numpy as np
    import pandas as pd

    from eegmtl.evaluation.estimate import reference_records, timed_on_gpu
    from eegmtl.evaluation.records import drop_repeated_runs

    frames = [pd.read_csv(p) for p in reference if Path(p).is_file()]
    # a run recorded in two files (a taken-over record and its original) counts once
    ref = drop_repeated_runs(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame(
        columns=["protocol", "pipeline", "time", "n_epochs_trained"])
    gpu = gpu_speedup > 1 if gpu is None else gpu
    gpu_speedup = gpu_speedup if gpu else 1.0
    gpu_rows = timed_on_gpu(ref)
    ref_gpu, ref = ref[gpu_rows], ref[~gpu_rows]
    own = measured_speedups(ref, ref_gpu) if gpu else {}
    classical = ("CSP", "FBCSP", "TS+")
    rows, total, longest = [], 0.0, 0.0
    fits: dict[tuple[str, str], int] = {}
    for st, todo in stage_fits(plan, methods, n_subjects, remaining_of):
        for m, n in todo.items():
            fits[(st.protocol, m)] = fits.get((st.protocol, m), 0) + n
    def recorded(protocol: str, m: str) -> tuple[pd.DataFrame, str]:
        """The records standing for one fit of ``m`` in ``protocol`` and their kind."""
        r, source = reference_records(ref, m, protocol=protocol)[0], "cpu"
        if not m.startswith(classical) and gpu:
            rg = reference_records(ref_gpu, m, protocol=protocol)[0]
            if not rg.empty:
                r, source = rg, "gpu"
            elif m in own:
                source = "own"
        return r, source

    def unit_cost(r: pd.DataFrame, source: str, deep: bool, m: str = "") -> float:
        cost = float(np.nanmedian(r["time"])) if len(r) else float("nan")
        if deep and source == "own":
            return cost / own[m]
        return cost / gpu_speedup if deep and source == "cpu" else cost

    # how much longer a deep fit takes in one protocol than in another: the median ratio over
    # the deep pipelines recorded in both (an SI fit trains on 8 subjects, an SD fit on one)
    known: dict[tuple[str, str], float] = {}
    names = set(ref["pipeline"].dropna()) | set(ref_gpu["pipeline"].dropna())
    for protocol in {p for p, _ in fits}:
        for m in names:
            if not str(m).startswith(classical):
                c = unit_cost(*recorded(protocol, m), True, m)
                if math.isfinite(c) and c > 0:
                    known[(protocol, m)] = c

    def scaled(protocol: str, m: str) -> float:
        estimates = []
        for (other, k), c in known.items():
            if k != m or other == protocol:
                continue
            ratios = [known[(protocol, j)] / known[(other, j)] for (p, j) in known
                      if p == other and (protocol, j) in known]
            if ratios:
                estimates.append(c * float(np.median(ratios)))
        return float(np.median(estimates)) if estimates else float("nan")

    for (protocol, m), n in fits.items():
        deep = not m.startswith(classical)
        r, source = recorded(protocol, m)
        cost = unit_cost(r, source, deep, m)
        if r.empty and deep:
            cost, source = scaled(protocol, m), "scaled"
            r = pd.concat([ref[ref["pipeline"] == m], ref_gpu[ref_gpu["pipeline"] == m]])
        if not math.isfinite(cost):
            pool = ref[ref["protocol"] == protocol]
            r, source = pool[pool["n_epochs_trained"].notna() == deep], "pool"
            cost = unit_cost(r, "cpu", deep)
        epochs = float(np.nanmedian(r["n_epochs_trained"])) if len(r) and deep else float("nan")
        if deep and max_epochs is not None and epochs > 0:
            cost *= min(1.0, max_epochs / epochs)
        rows.append(EstimateRow(protocol, m, n, cost, deep, source, own.get(m, math.nan)))
        if math.isfinite(cost):
            total += n * cost
            longest = max(longest, cost)
    return max(total / max(workers, 1), longest), rows


# --------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    """Run the benchmark as parsed by :func:`add_arguments`."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    preset = PRESETS[args.preset]
    subjects = parse_subjects(args.subjects) if args.subjects else list(preset.subjects)
    seeds = list(args.seeds) if args.seeds is not None else list(preset.seeds)
    max_epochs = args.max_epochs if args.max_epochs is not None else preset.max_epochs
    methods = select_methods(args.methods, args.exclude)
    folder = args.results or results_dir()
    name = args.preset + ("_synthetic" if args.synthetic else "")
    align = None if args.alignment.lower() == "none" else args.alignment
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
        notes = {"gpu": "  (GPU-recorded)", "pool": "  (no record: median of the others)",
                 "own": "  (CPU-recorded / its own GPU speed-up {:.1f}x)",
                 "scaled": "  (no record here: other protocol x cross-protocol ratio)"}
        total: dict[tuple[str, str], int] = {}  # every fit of the run, recorded or not
        for st, counts in stage_fits(plan, runnable, len(subjects)):
            for m, k in counts.items():
                total[(st.protocol, m)] = total.get((st.protocol, m), 0) + k
        for r in rows:
            n = total.get((r.protocol, r.pipeline), r.fits)
            print(f"  {r.protocol:20s} {r.pipeline:28s} {n - r.fits:4d}/{n:<4d} done, "
                  f"{r.fits:4d} fits x {r.cost:8.1f} s{'' if r.deep else '  (CPU only)'}"
                  f"{notes.get(r.source, '').format(r.speedup)}")
        if not known:
            return 0
        cpu = sum(r.fits * r.cost for r in rows if not r.deep and math.isfinite(r.cost))
        dl = sum(r.fits * r.cost for r in rows if r.deep and math.isfinite(r.cost))
        spare = args.budget * workers - cpu
        need = dl / spare if spare > 0 else math.inf
        print(f"CPU-only pipelines: {minutes(cpu / workers)} of the {workers} workers; "
              f"deep pipelines: {minutes(dl / workers)}; to finish in {args.budget:.0f} s "
              f"the deep fits must run {need:.1f}x faster than estimated here"
              + ("" if spare > 0 else " (impossible: the CPU-only fits alone exceed it)"))
        if args.time_limit is not None:
            todo = stage_fits(plan, runnable, len(subjects), subjects)
            costs = {(r.protocol, r.pipeline): r.cost for r in rows}
            got = fits_within(todo, costs, workers,
                              check_time_limit(args.time_limit) - SUMMARY_MARGIN_S)
            print(f"with --time-limit {args.time_limit:g}: {sum(got.values())} of the {n_todo} "
                  f"fits would run: " + (", ".join(
                      f"{'SD' if p == 'subject_dependent' else 'SI'} {m} {k}"
                      for (p, m), k in got.items()) or "none"))
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
                batch_speedup=args.batch_speedup, expected_fit_s=expected_fit_s, **call)
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
