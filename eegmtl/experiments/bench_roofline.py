"""What bounds the deep fits on a GPU, from the records and counts made on the CPU
(``eegmtl bench roofline``; prints figures, not a timed test).

A fit's work is counted, not timed (:mod:`eegmtl.experiments.roofline_counts`): for each
braindecode recipe network (:data:`eegmtl.eeg.recipes.RECIPES`), one training step at the
recipe's batch (times ``1 + n_augmentation`` when augmented trials are appended) and one
validation batch, on the CPU: FLOPs (matrix products, convolutions, attention), the aten
operators that compute (not views, allocations or host-scalar reads: about one CUDA kernel
each; cuDNN may launch a few per convolution, a ``_foreach`` operator one per chunk of
tensors) and the bytes those operators read and write, an upper bound on the DRAM traffic
(caches ignored; H100/H200 hold 50 MB of L2). Pipelines trained by the project's trainer (the
MixNet family, MIN2Net, the multi-task wrappers) are counted per epoch through their own
estimator at the records' trial numbers
(:func:`~eegmtl.experiments.roofline_counts.count_fit_epochs`; their "per step" figures
are an epoch's work, validation included, over its training steps).

A fit's totals follow from its record: ``n_epochs_trained`` epochs of ``floor(samples /
batch)`` training steps (``drop_last``) and ``ceil(samples_val / batch)`` validation batches
(a trainer's: its fixed work plus ``n_epochs_trained`` counted epochs).
Divided by the record's ``time`` they give what one worker achieved; times ``--workers`` (the
processes that shared the GPU: 16 in the committed H200 runs) what the device executed were
every worker running such fits, compared with the device's peaks (:data:`DEVICE_PEAKS`):
FP32 arithmetic, memory bandwidth, and the time per operator. A fit far below the arithmetic
and bandwidth peaks whose workers issue an operator every tens of microseconds or more (a
kernel launch costs a few) is bound by per-step overheads (host-side work, switching between
processes), which batching fits into one model (``--batch-fits``) or CUDA graphs reduce; one
near a peak is not sped up by them.

The second table is the arithmetic floor of the benchmark's full preset
(:data:`eegmtl.experiments.benchmark_plan.PRESETS`): its deep fits times
their median FLOPs per fit (records of any device: the work does not depend on it), divided by
the device's FP32, TF32 and BF16 peaks: no schedule on that device runs those fits faster.

Usage (about 6 minutes on one CPU thread, most of it the trainer fits of the subject-independent
records; a progress line per counted network before the tables)::

    eegmtl bench roofline --results pipelines/results --out pipelines/results/bench_roofline
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.experiments._common import command_line, log_line, positive_int
from eegmtl.experiments.roofline_counts import (
    EpochCounts,
    StepCounts,
    count_fit_epochs,
    count_step,
    fit_work,
    recipe_model,
    trainer_fit_work,
    trainer_model,
)

__all__ = ["DEVICE_PEAKS", "Peaks", "add_arguments", "preset_floor", "roofline_rows", "run"]


@dataclass(frozen=True)
class Peaks:
    """Dense peak rates of one device: TFLOP/s in FP32 (CUDA cores), TF32 and BF16 (tensor
    cores, without sparsity), and memory bandwidth in TB/s."""

    fp32: float
    tf32: float
    bf16: float
    bandwidth: float


#: SXM boards, NVIDIA's H100 / H200 datasheets (tensor-core figures halved: the datasheets
#: quote them with 2:4 sparsity); keyed by a substring of ``torch.cuda.get_device_name``
DEVICE_PEAKS: dict[str, Peaks] = {
    "H200": Peaks(fp32=67.0, tf32=494.5, bf16=989.5, bandwidth=4.8),
    "H100": Peaks(fp32=67.0, tf32=494.5, bf16=989.5, bandwidth=3.35),
}

def _gpu_name(machine: Any) -> str | None:
    try:
        return json.loads(machine).get("gpu") or None
    except (TypeError, ValueError, AttributeError):
        return None


def _peaks(gpu: str, override: Peaks | None) -> Peaks | None:
    if override is not None:
        return override
    return next((p for k, p in DEVICE_PEAKS.items() if k in gpu), None)


def _fits(records: pd.DataFrame) -> pd.DataFrame:
    """Records of counted networks with their fit sizes and ``net_key``: the network settings
    of a recipe network (:func:`recipe_model`) or the pipeline and config of a trainer-fitted
    one (:func:`trainer_model`), as JSON."""
    need = {"protocol", "pipeline", "config", "time", "n_epochs_trained", "samples"}
    if records.empty or not need <= set(records.columns):
        return pd.DataFrame()
    df = records.copy()
    df["net"] = [recipe_model(c) or trainer_model(p, c)
                 for p, c in zip(df["pipeline"], df["config"], strict=True)]
    df = df[df["net"].notna() & df["n_epochs_trained"].notna()]
    df["net_key"] = df["net"].map(lambda n: json.dumps(n, sort_keys=True))
    df["samples_val"] = pd.to_numeric(df.get("samples_val", 0), errors="coerce").fillna(0)
    return df


Counts = dict[str, StepCounts | EpochCounts]


@functools.lru_cache(maxsize=256)
def _spec(key: str) -> dict[str, Any]:
    """A ``net_key`` parsed once (the tables look keys up per record); read only — the counts
    get a fresh copy."""
    return json.loads(key)


def _work(key: str, counts: Counts, *, samples: float, samples_val: float,
          epochs: float) -> tuple[StepCounts | EpochCounts, dict[str, float]]:
    """Counts of ``key`` (counted on first use, cached in ``counts``) and a fit's work:
    a recipe network's per step (:func:`fit_work`), a trainer's per epoch at these trial
    numbers (:func:`trainer_fit_work`)."""
    spec = _spec(key)
    if "pipeline" not in spec:
        if key not in counts:
            counts[key] = _counted(spec["model"], lambda: count_step(json.loads(key)))
        c = counts[key]
        return c, fit_work(c, samples=samples, samples_val=samples_val, epochs=epochs)
    sized = json.dumps({**spec, "samples": int(samples), "samples_val": int(samples_val)},
                       sort_keys=True)
    if sized not in counts:
        counts[sized] = _counted(
            f"{spec['pipeline']} ({int(samples)} / {int(samples_val)} trials)",
            lambda: count_fit_epochs(json.loads(key), samples=int(samples),
                                     samples_val=int(samples_val)))
    c = counts[sized]
    return c, trainer_fit_work(c, epochs=epochs)


def _counted(what: str, count: Any) -> Any:
    """``count()``, with a progress line (:func:`~eegmtl.experiments._common.log_line`)."""
    t0 = time.perf_counter()
    out = count()
    log_line(f"counted {what} in {time.perf_counter() - t0:.1f} s")
    return out


def _per_step(c: StepCounts | EpochCounts) -> tuple[int, float, float]:
    """Batch, FLOPs and operators of a training step (a trainer's: its epoch's work, validation
    included, over its steps)."""
    if isinstance(c, StepCounts):
        return c.batch_train, c.flops_train, c.ops_train
    return c.batch, c.flops_epoch / c.steps_epoch, c.ops_epoch / c.steps_epoch


def roofline_rows(records: pd.DataFrame, *, workers: int, peaks: Peaks | None = None,
                  counts: Counts | None = None) -> pd.DataFrame:
    """One row per (protocol, pipeline, GPU) of the GPU-fitted counted networks in ``records``
    (:func:`eegmtl.evaluation.estimate.timed_on_gpu`):
    median fit, its work (:func:`fit_work`), what one worker and ``workers`` workers achieved,
    and those rates as fractions of the device's peaks (``peaks`` or :data:`DEVICE_PEAKS`)."""
    from eegmtl.evaluation.estimate import timed_on_gpu

    df = _fits(records)
    if df.empty or "machine" not in df.columns:
        return pd.DataFrame()
    df["gpu"] = df["machine"].map(_gpu_name)
    # fitted on the GPU (not a --device cpu fit on a GPU machine), with a usable time
    df = df[timed_on_gpu(df) & df["gpu"].notna()
            & (pd.to_numeric(df["time"], errors="coerce") > 0)]
    counts = {} if counts is None else counts
    rows = []
    for (protocol, pipeline, gpu, key), g in df.groupby(
            ["protocol", "pipeline", "gpu", "net_key"], sort=True):
        time = float(g["time"].median())
        c, work = _work(key, counts, samples=float(g["samples"].median()),
                        samples_val=float(g["samples_val"].median()),
                        epochs=float(g["n_epochs_trained"].median()))
        batch, flops_step, ops_step = _per_step(c)
        peak = _peaks(gpu, peaks)
        flop_rate = workers * work["flops"] / time / 1e12  # TFLOP/s
        byte_rate = workers * work["bytes"] / time / 1e12  # TB/s
        op_rate = workers * work["ops"] / time
        rows.append({
            "protocol": protocol, "pipeline": pipeline, "gpu": gpu, "fits": len(g),
            "batch": batch, "epochs": float(g["n_epochs_trained"].median()),
            "s_per_fit": time, "ms_per_step": 1e3 * time / max(work["steps"], 1),
            "gflop_per_step": flops_step / 1e9, "ops_per_step": ops_step,
            "tflop_per_fit": work["flops"] / 1e12, "tflops": flop_rate,
            "pct_fp32": 100 * flop_rate / peak.fp32 if peak else float("nan"),
            "us_per_op": 1e6 / op_rate, "tb_per_s": byte_rate,
            "pct_bandwidth": 100 * byte_rate / peak.bandwidth if peak else float("nan"),
        })
    return pd.DataFrame(rows)


def _runs_in(pipeline: str, protocol: str) -> bool:
    """Whether the registry has settings of ``pipeline`` for ``protocol`` (the preset skips a
    variant tuned for one protocol only in the other; an unregistered name: assumed to run)."""
    from eegmtl.evaluation.methods import is_method
    from eegmtl.experiments.benchmark_plan import method_overrides

    return not is_method(pipeline) or method_overrides(pipeline, protocol, {}) is not None


def preset_floor(records: pd.DataFrame, peaks: Peaks, *, fits: dict[str, int],
                 pipelines: list[str] | None = None,
                 counts: Counts | None = None) -> pd.DataFrame:
    """Arithmetic floor of ``fits[protocol]`` fits of every counted pipeline of ``records``
    (or of ``pipelines``), in seconds at the FP32, TF32 and BF16 peaks.

    A fit's FLOPs are the median over the pipeline's records in that protocol (any device;
    a trainer-fitted pipeline's counted at the records' median trial numbers).
    A pipeline without records in a protocol (and with settings for it) takes its network and
    median epochs from the other protocol and that protocol's median training and validation
    trials (``source`` says which)."""
    df = _fits(records)
    counts = {} if counts is None else counts
    if df.empty:
        return pd.DataFrame()
    names = pipelines if pipelines is not None else sorted(set(df["pipeline"]))
    size = {p: (float(g["samples"].median()), float(g["samples_val"].median()))
            for p, g in df.groupby("protocol")}
    rows = []
    for pipeline in names:
        mine = df[df["pipeline"] == pipeline]
        if mine.empty:
            continue
        for protocol, n in fits.items():
            g, source = mine[mine["protocol"] == protocol], "records"
            if g.empty:
                if protocol not in size or not _runs_in(pipeline, protocol):
                    continue
                g = mine.assign(samples=size[protocol][0], samples_val=size[protocol][1])
                source = f"epochs of {', '.join(sorted(set(mine['protocol'])))}"
            key = g["net_key"].mode().iloc[0]
            g = g[g["net_key"] == key]
            trainer = "pipeline" in _spec(key)
            sizes = (float(g["samples"].median()), float(g["samples_val"].median()))
            work = [_work(key, counts, samples=sizes[0] if trainer else float(r.samples),
                          samples_val=sizes[1] if trainer else float(r.samples_val),
                          epochs=float(r.n_epochs_trained))[1]["flops"]
                    for r in g.itertuples()]
            flops = n * float(pd.Series(work).median())
            rows.append({"protocol": protocol, "pipeline": pipeline, "fits": n,
                         "pflop": flops / 1e15, "s_fp32": flops / (peaks.fp32 * 1e12),
                         "s_tf32": flops / (peaks.tf32 * 1e12),
                         "s_bf16": flops / (peaks.bf16 * 1e12), "source": source})
    return pd.DataFrame(rows).sort_values(["protocol", "pipeline"], ignore_index=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl bench roofline``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--results", type=Path, default=Path("pipelines/results"),
                   help="folder of the record files (sd*.csv, si*.csv, benchmark_full_*.csv; "
                   "default pipelines/results)")
    p.add_argument("--records", type=Path, nargs="+", default=None,
                   help="record files instead of those of --results")
    p.add_argument("--workers", type=positive_int, default=16,
                   help="processes that shared the GPU when the records were made (default 16)")
    p.add_argument("--device", default="H200",
                   help=f"device of the preset floor: one of {sorted(DEVICE_PEAKS)} (default "
                   "H200)")
    p.add_argument("--pipelines", nargs="+", default=None, help="only these pipelines")
    p.add_argument("--out", type=Path, default=None,
                   help="also write <out>.md (the tables) and <out>.json (the rows)")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (missing values, e.g. the peaks of an unknown GPU, as null)."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def _table(df: pd.DataFrame, cols: dict[str, str]) -> list[str]:
    lines = ["| " + " | ".join(cols.values()) + " |", "|" + "---|" * len(cols)]
    for r in df.to_dict("records"):
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run(args: argparse.Namespace) -> int:
    """Count, read the records, print (and with ``--out`` write) the two tables."""
    from eegmtl.evaluation.records import combine_records
    from eegmtl.experiments.benchmark_estimate import default_reference
    from eegmtl.experiments.benchmark_plan import PRESETS, select_methods, stages

    if args.device not in DEVICE_PEAKS:
        raise SystemExit(f"unknown --device {args.device!r}; known: {sorted(DEVICE_PEAKS)}")
    paths = args.records or default_reference(args.results)
    if not paths:
        raise SystemExit(f"no record files (sd*.csv, si*.csv, benchmark_full_*.csv) in "
                         f"{args.results}; pass --results or --records")
    records = combine_records(paths, tag=False)
    if args.pipelines:
        records = records[records["pipeline"].isin(args.pipelines)]
    counts: Counts = {}
    rows = roofline_rows(records, workers=args.workers, counts=counts)
    full = PRESETS["full"]
    fits: dict[str, int] = {}
    for st in stages(full, ["sd", "si"], list(full.seeds), Path("."), "full", "transductive"):
        fits[st.protocol] = fits.get(st.protocol, 0) + len(full.subjects) * len(st.folds)
    floor = preset_floor(records, DEVICE_PEAKS[args.device], fits=fits, counts=counts,
                         pipelines=[m for m in select_methods(None, [])
                                    if not args.pipelines or m in args.pipelines])
    lines = [f"### What bounds the deep networks' GPU fits ({len(paths)} record files, "
             f"{args.workers} workers per GPU)", ""]
    if rows.empty:
        lines.append("No GPU-fitted counted network in these records.")
    else:
        lines += _table(rows, {
            "protocol": "protocol", "pipeline": "pipeline", "gpu": "GPU", "fits": "fits",
            "batch": "batch", "epochs": "epochs", "s_per_fit": "s / fit",
            "ms_per_step": "ms / step", "gflop_per_step": "GFLOP / step",
            "ops_per_step": "ops / step", "tflops": "TFLOP/s (all workers)",
            "pct_fp32": "% FP32 peak", "us_per_op": "µs / op (all workers)",
            "tb_per_s": "op traffic TB/s", "pct_bandwidth": "% bandwidth"})
    lines += ["", f"### Arithmetic floor of the full preset's deep fits on one "
              f"{args.device}", ""]
    if floor.empty:
        lines.append("No records of counted networks.")
    else:
        lines += _table(floor, {"protocol": "protocol", "pipeline": "pipeline", "fits": "fits",
                                "pflop": "PFLOP", "s_fp32": "s at FP32 peak",
                                "s_tf32": "s at TF32 peak", "s_bf16": "s at BF16 peak",
                                "source": "epochs from"})
        tot = floor[["pflop", "s_fp32", "s_tf32", "s_bf16"]].sum()
        lines += ["", f"Total {tot['pflop']:.2f} PFLOP: {tot['s_fp32'] / 60:.1f} min at the "
                  f"FP32 peak, {tot['s_tf32'] / 60:.2f} min at TF32, {tot['s_bf16'] / 60:.2f} "
                  "min at BF16 (dense)."]
    lines += ["", f"Command: `{command_line(args)}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        atomic_write(args.out.with_suffix(".md"), text)
        atomic_write(args.out.with_suffix(".json"), json.dumps(
            {"roofline": _records(rows), "preset_floor": _records(floor),
             "workers": args.workers, "device": args.device,
             "peaks": asdict(DEVICE_PEAKS[args.device])}, indent=2, allow_nan=False) + "\n")
    return 0
