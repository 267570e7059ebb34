"""Predicted wall time of a run of ``eegmtl benchmark`` (``--estimate``), from recorded fits.

:func:`estimate` prices every fit of a plan (:mod:`eegmtl.experiments.benchmark_plan`) still
without a record at the median fit time of the same pipeline and protocol in earlier record
files (:func:`default_reference`), GPU-recorded times as they are for a GPU run and CPU-recorded
ones divided by the pipeline's own measured GPU speed-up (:func:`measured_speedups`) or by
:data:`GPU_SPEEDUP`; :func:`fits_within` simulates how far a run with ``--time-limit`` gets;
:func:`print_estimate` writes the per-pipeline table the command prints.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

from eegmtl.experiments._common import SUMMARY_MARGIN_S, check_time_limit, minutes
from eegmtl.experiments.benchmark_plan import Stage, stage_methods

__all__ = ["GPU_SPEEDUP", "EstimateRow", "default_reference", "done_fits", "estimate",
           "fits_within", "measured_speedups", "print_estimate", "stage_fits"]

#: speed-up of a deep fit on one H200 worker (16 sharing the GPU) over the same fit on one CPU
#: thread, measured over 225 SD fits of five baselines (median per pipeline 14x-122x, ≈ 38x in
#: all); estimates of a GPU run divide by it the CPU-recorded fit times of deep pipelines that
#: have no GPU-measured speed-up of their own (:func:`measured_speedups`), unless told otherwise
GPU_SPEEDUP = 38.0


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


def print_estimate(rows: list[EstimateRow], plan: list[Stage], methods: dict[str, list[str]],
                   subjects: list[int], workers: int, budget: float,
                   time_limit: float | None = None) -> None:
    """Print the table of ``eegmtl benchmark --estimate``.

    Per protocol and pipeline of ``rows`` (:func:`estimate` of ``plan`` with ``methods`` per
    protocol, on ``subjects``): fits recorded of all planned, fits to run and their cost with
    its source; then, when any cost is known, the CPU-only and deep shares of the wall time on
    ``workers`` workers, the speed-up the deep fits would need to end within ``budget`` seconds
    and, with ``time_limit``, the fits a run so limited gets through (:func:`fits_within`).
    """
    notes = {"gpu": "  (GPU-recorded)", "pool": "  (no record: median of the others)",
             "own": "  (CPU-recorded / its own GPU speed-up {:.1f}x)",
             "scaled": "  (no record here: other protocol x cross-protocol ratio)"}
    total: dict[tuple[str, str], int] = {}  # every fit of the run, recorded or not
    for st, counts in stage_fits(plan, methods, len(subjects)):
        for m, k in counts.items():
            total[(st.protocol, m)] = total.get((st.protocol, m), 0) + k
    for r in rows:
        n = total.get((r.protocol, r.pipeline), r.fits)
        print(f"  {r.protocol:20s} {r.pipeline:28s} {n - r.fits:4d}/{n:<4d} done, "
              f"{r.fits:4d} fits x {r.cost:8.1f} s{'' if r.deep else '  (CPU only)'}"
              f"{notes.get(r.source, '').format(r.speedup)}")
    if not any(math.isfinite(r.cost) for r in rows):
        return
    cpu = sum(r.fits * r.cost for r in rows if not r.deep and math.isfinite(r.cost))
    dl = sum(r.fits * r.cost for r in rows if r.deep and math.isfinite(r.cost))
    spare = budget * workers - cpu
    need = dl / spare if spare > 0 else math.inf
    print(f"CPU-only pipelines: {minutes(cpu / workers)} of the {workers} workers; "
          f"deep pipelines: {minutes(dl / workers)}; to finish in {budget:.0f} s "
          f"the deep fits must run {need:.1f}x faster than estimated here"
          + ("" if spare > 0 else " (impossible: the CPU-only fits alone exceed it)"))
    if time_limit is not None:
        todo = stage_fits(plan, methods, len(subjects), subjects)
        costs = {(r.protocol, r.pipeline): r.cost for r in rows}
        got = fits_within(todo, costs, workers, check_time_limit(time_limit) - SUMMARY_MARGIN_S)
        n_todo = sum(r.fits for r in rows)
        print(f"with --time-limit {time_limit:g}: {sum(got.values())} of the {n_todo} "
              f"fits would run: " + (", ".join(
                  f"{'SD' if p == 'subject_dependent' else 'SI'} {m} {k}"
                  for (p, m), k in got.items()) or "none"))
