"""MultiMNIST-family benchmarks for the MTL methods: run a grid, write records and a summary.

Thin wrapper around :func:`eegmtl.benchmarks.runner.run_grid`. Writes

- ``<results>`` (default ``pipelines/results/vision_lenet.csv``): tidy records, one row per
  data set × method × seed × task (+ ``avg``), schema of DESIGN.md;
- ``vision_runs.csv`` next to it: one row per invocation (command, shard, wall time);
- ``vision_summary.md`` next to it: tables generated from the records (avg accuracy, Δp vs
  EW, conflict rate, calibration) and the comparison with the papers' claims (flat variants
  beat their plain versions, F-MTL Table 1; RLW ≥ EW, RLW paper).

Usage::

    # the committed CPU grid (two shards in parallel, 1 thread each)
    python pipelines/vision.py --epochs 3 --n-train 15000 --threads 1 --shard 0/2 &
    python pipelines/vision.py --epochs 3 --n-train 15000 --threads 1 --shard 1/2 &
    python pipelines/vision.py --summary-only        # regenerate vision_summary.md
    # flat ablation: plain SAM with the core's default radius (labelled apart in the summary)
    python pipelines/vision.py --epochs 3 --n-train 15000 --threads 1 --benchmarks multimnist \
        --methods f-mgda f-pcgrad f-cagrad f-imtl_g --flat-preset sam --flat-rho 0.05
    # F-MTL Table 1 protocol (ResNet-18, Adam 1e-3, bs 256, 100 epochs) on a GPU
    python pipelines/vision.py --gpu-protocol resnet18 --seeds 0 1 2 \\
        --results pipelines/results/vision_resnet18.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from eegmtl.config import results_dir

DATASETS = ("multimnist", "multifashion", "multifashion_mnist")
METHODS = ("ew", "rlw", "mgda_ub", "pcgrad", "imtl_g", "cagrad", "nash_mtl", "aligned_mtl",
           "rgw", "f-mgda", "f-pcgrad", "f-cagrad", "f-imtl_g")
RESULTS = results_dir(default=Path(__file__).resolve().parent / "results")
_DS_LABEL = {"multi_mnist": "MultiMNIST", "multi_fashion": "MultiFashion",
             "multi_fashion_mnist": "MultiFashion+MNIST"}
_DS_ORDER = ("multi_mnist", "multi_fashion", "multi_fashion_mnist")
#: F-MTL Table 1 (ResNet-18, 3 seeds) average accuracy, plain -> flat (mtl-reference §4.2)
PAPER_FLAT = {
    ("mgda", "multi_fashion"): (86.27, 87.73), ("mgda", "multi_mnist"): (95.05, 95.68),
    ("mgda", "multi_fashion_mnist"): (92.72, 93.28),
    ("pcgrad", "multi_fashion"): (86.57, 87.76), ("pcgrad", "multi_mnist"): (95.06, 95.92),
    ("pcgrad", "multi_fashion_mnist"): (92.78, 93.50),
    ("cagrad", "multi_fashion"): (86.51, 87.82), ("cagrad", "multi_mnist"): (95.01, 95.95),
    ("cagrad", "multi_fashion_mnist"): (92.68, 93.54),
    ("imtl_g", "multi_fashion"): (86.90, 87.80), ("imtl_g", "multi_mnist"): (95.28, 95.85),
    ("imtl_g", "multi_fashion_mnist"): (92.97, 93.29),
}
#: plain partner of each flat method in our grid (f-mgda: the grid's plain MGDA is MGDA-UB)
FLAT_PAIRS = (("f-mgda", "mgda_ub"), ("f-pcgrad", "pcgrad"), ("f-cagrad", "cagrad"),
              ("f-imtl_g", "imtl_g"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmarks", nargs="+", default=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=None, help="default: the protocol's (100)")
    p.add_argument("--model", default=None, help="lenet | resnet18 (default: the protocol's)")
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
                   help="CSV (default pipelines/results/vision_<model>.csv)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--shard", default="0/1", help="k/n: run every n-th grid item from k")
    p.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="per-run trainer checkpoints (default ~/.cache/eegmtl/vision_runs)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--summary-only", action="store_true", help="only regenerate the summary")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- summary
def _fmt(values: pd.Series, scale: float = 100.0, digits: int = 2) -> str:
    v = values.dropna().astype(float) * scale
    if v.empty:
        return "–"
    if len(v) == 1:
        return f"{v.iloc[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def _pivot(avg: pd.DataFrame, column: str, methods: list[str], datasets: list[str],
           scale: float = 100.0, digits: int = 2) -> list[str]:
    head = "| method | " + " | ".join(_DS_LABEL.get(d, d) for d in datasets) + " |"
    lines = [head, "|---" * (len(datasets) + 1) + "|"]
    for m in methods:
        cells = []
        for d in datasets:
            sel = avg[(avg["method"] == m) & (avg["dataset"] == d)][column]
            cells.append(_fmt(sel, scale, digits))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def _mean(avg: pd.DataFrame, method: str, dataset: str, column: str = "avg_accuracy") -> float:
    sel = avg[(avg["method"] == method) & (avg["dataset"] == dataset)][column].dropna()
    return float(sel.astype(float).mean() * 100) if len(sel) else float("nan")


def summarize(records: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """Markdown summary generated from the records (and the invocation log)."""
    if records.empty:
        return "# Vision benchmarks\n\nNo records yet.\n"
    records = _label(records)
    avg = records[records["task"] == "avg"].copy()
    datasets = [d for d in _DS_ORDER if d in set(avg["dataset"])] + sorted(
        set(avg["dataset"]) - set(_DS_ORDER))
    methods = [m for m in METHODS if m in set(avg["method"])] + sorted(
        set(avg["method"]) - set(METHODS))
    first = avg.iloc[0]
    import json

    cfg = json.loads(first["config"])
    in_grid = avg["method"].isin(METHODS) & avg["dataset"].isin(_DS_ORDER)
    n_runs = int(in_grid.sum())
    expected = len(_DS_ORDER) * len(METHODS) * avg["seed"].nunique()  # the default grid
    out = ["# Vision benchmarks: MultiMNIST family, " + str(first["model"]), ""]
    out += [
        "Generated by `pipelines/vision.py` from `" + _results_name(records) + "` (do not edit "
        "by hand).", "",
        "## Protocol", "",
        f"- model **{first['model']}**, protocol `{cfg['protocol']}`: optimiser "
        f"{cfg['optimizer']} lr {cfg['lr']}, scheduler {cfg['scheduler']}, batch "
        f"{cfg['batch_size']}, **{int(first['epochs'])} epochs** (no early stopping), seeds "
        f"{sorted(int(s) for s in avg['seed'].unique())}.",
        f"- training samples: **{int(first['n_train'])}** (the first rows of the shuffled "
        f"108 000-pair training split{'' if cfg['n_train'] is None else ', a reduced CPU subset'})"
        f"; validation {int(first['n_val'])}; test {int(first['n_test'])}.",
        f"- selection: {cfg['selection']}.",
        "- flat variants (`f-`): F-MTL MultiMNIST preset, ASAM ρ = 2, one joint norm over shared"
        " + head parameters (`eegmtl.mtl.flat.FMTL_MULTIMNIST`); the flat partner of MGDA-UB "
        "is `f-mgda` (parameter-level MGDA; F-MTL has no representation-level flat variant).",
        f"- conflict rate: fraction of probed training mini-batches (every "
        f"{cfg['conflict_every']}-th step) with a negative cosine between the two task gradients "
        "w.r.t. the shared parameters.",
        f"- runs finished: {n_runs} of {expected} in the default grid (3 data sets × "
        f"{len(METHODS)} methods × seeds; {len(avg) - n_runs} other runs)"
        + ("." if n_runs >= expected else " — **the grid did not finish**; rerun the command "
           "(resume skips finished runs)."),
        "",
    ]
    if runs is not None and not runs.empty:
        out += ["## Commands and wall time", "", "| started (UTC) | wall (s) | runs | command |",
                "|---|---|---|---|"]
        for _, r in runs.iterrows():
            out.append(f"| {r['start']} | {float(r['wall_s']):.0f} | {int(r['n_runs'])} | "
                       f"`{r['command']}` |")
        out += ["", f"Sum of the per-run fit times in the records: {avg['time'].sum():.0f} s "
                f"(device {first['device']}).", ""]
    out += ["## Average test accuracy (%)", ""]
    out += _pivot(avg, "avg_accuracy", methods, datasets)
    out += ["", "## Per-task test accuracy (%), task 1 / task 2", ""]
    head = "| method | " + " | ".join(_DS_LABEL.get(d, d) for d in datasets) + " |"
    out += [head, "|---" * (len(datasets) + 1) + "|"]
    tasks = [t for t in records["task"].unique() if t != "avg"]
    for m in methods:
        cells = []
        for d in datasets:
            parts = [_fmt(records[(records["method"] == m) & (records["dataset"] == d)
                                  & (records["task"] == t)]["accuracy"]) for t in tasks]
            cells.append(" / ".join(parts))
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    out += ["", "## Δp vs EW (%, same protocol and seed; higher is better)", ""]
    out += _pivot(avg, "delta_p", methods, datasets, scale=1.0)
    out += ["", "## Gradient-conflict rate (fraction of probed mini-batches)", ""]
    out += _pivot(avg, "conflict_rate", methods, datasets, scale=1.0)
    out += ["", "## Calibration on test (task mean): Brier / ECE (%) / entropy (nats)", ""]
    out += [head, "|---" * (len(datasets) + 1) + "|"]
    for m in methods:
        cells = []
        for d in datasets:
            sel = avg[(avg["method"] == m) & (avg["dataset"] == d)]
            cells.append(f"{_fmt(sel['brier'], 1.0, 3)} / {_fmt(sel['ece'])} / "
                         f"{_fmt(sel['entropy'], 1.0, 3)}" if len(sel) else "–")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    out += ["", "## Comparison with the papers' claims", "",
            "Differences of average test accuracy in points (ours: this table; paper: F-MTL "
            "Table 1, ResNet-18, 3 seeds, for the flat claim; its flat setting is the F-MTL "
            "preset, rows with a bracket use another flat setting). *agrees* = same sign as the "
            "claim.",
            "", "| claim | data set | ours (A) | ours (B) | ours A − B | paper A − B | agrees |",
            "|---|---|---|---|---|---|---|"]
    n_agree = n_total = 0
    n_other = [0, 0]  # flat runs with a non-preset setting: agreeing, total
    pairs = [(lab, plain_m) for flat_m, plain_m in FLAT_PAIRS for lab in methods
             if lab == flat_m or lab.startswith(flat_m + " [")]
    for flat_m, plain_m in sorted(pairs, key=lambda p: ("[" in p[0], p[0])):
        for d in datasets:
            a, b = _mean(avg, flat_m, d), _mean(avg, plain_m, d)
            if np.isnan(a) or np.isnan(b):
                continue
            key = (plain_m.replace("_ub", ""), d)
            paper = PAPER_FLAT.get(key)
            pdiff = f"{paper[1] - paper[0]:+.2f}" if paper else "–"
            ok = a - b > 0
            n_agree += ok
            n_total += 1
            other = "[" in flat_m
            n_other[0] += ok if other else 0
            n_other[1] += 1 if other else 0
            out.append(f"| {flat_m} > {plain_m} | {_DS_LABEL.get(d, d)} | {a:.2f} | {b:.2f} | "
                       f"{a - b:+.2f} | {pdiff} | {'yes' if ok else 'no'} |")
    for d in datasets:
        a, b = _mean(avg, "rlw", d), _mean(avg, "ew", d)
        if np.isnan(a) or np.isnan(b):
            continue
        ok = a - b >= 0
        n_agree += ok
        n_total += 1
        out.append(f"| rlw ≥ ew | {_DS_LABEL.get(d, d)} | {a:.2f} | {b:.2f} | {a - b:+.2f} | "
                   f"– | {'yes' if ok else 'no'} |")
    out += ["", f"Agreement: {n_agree} of {n_total} comparisons ({n_agree - n_other[0]} of "
            f"{n_total - n_other[1]} with the default settings; {n_other[0]} of {n_other[1]} "
            "for flat runs with another flat setting).", ""]
    if n_total:
        out += [
            "Caveats: one seed per cell unless stated above, a reduced number of epochs and "
            "training samples on a CPU, and LeNet instead of ResNet-18 — differences of a few "
            "tenths of a point are within seed-to-seed noise and do not confirm or refute a "
            "claim. The paper's flat gains (+0.3 to +1.5 points) were measured after 100–200 "
            "epochs with selection on the test set.", ""]
    return "\n".join(out)


def _label(records: pd.DataFrame) -> pd.DataFrame:
    """``method`` for the default settings; flat runs with another flat setting get the
    setting appended (e.g. ``f-pcgrad [SAM ρ=0.05]``) so that they are never averaged with
    the F-MTL-preset runs."""
    import json

    df = records.copy()
    attrs = dict(records.attrs)

    def label(row: pd.Series) -> str:
        flat = json.loads(row["config"]).get("flat")
        if not flat:
            return str(row["method"])
        if flat["adaptive"] and flat["norm"] == "joint" and flat["rho"] == 2.0:
            return str(row["method"])
        kind = "ASAM" if flat["adaptive"] else "SAM"
        return f"{row['method']} [{kind} ρ={flat['rho']:g}, {flat['norm']} norm]"

    df["method"] = df.apply(label, axis=1)
    df.attrs = attrs
    return df


def _results_name(records: pd.DataFrame) -> str:
    return str(records.attrs.get("path", "vision_lenet.csv"))


def write_summary(results: Path) -> Path:
    from eegmtl.benchmarks.runner import load_records

    records = load_records(results)
    records.attrs["path"] = results.name
    runs_file = results.parent / "vision_runs.csv"
    runs = pd.read_csv(runs_file) if runs_file.is_file() else None
    if runs is not None and "results" in runs:
        runs = runs[runs["results"] == results.name]
    out = results.parent / "vision_summary.md"
    if results.name != "vision_lenet.csv":
        out = results.parent / f"vision_summary_{results.stem.removeprefix('vision_')}.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(summarize(records, runs))
    os.replace(tmp, out)
    return out


def _log_invocation(results: Path, command: str, shard: str, start: float, n_runs: int) -> None:
    from eegmtl.benchmarks.runner import _locked

    path = results.parent / "vision_runs.csv"
    with _locked(path):
        new = not path.is_file()
        with open(path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["start", "wall_s", "n_runs", "shard", "results", "command"])
            w.writerow([
                datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M"),
                f"{time.time() - start:.0f}", n_runs, shard, results.name, command,
            ])


def _flat_config(preset: str, rho: float | None):
    from dataclasses import replace

    from eegmtl.mtl.flat import FMTL_MULTIMNIST, FlatConfig

    base = FMTL_MULTIMNIST if preset == "fmtl" else FlatConfig()
    return base if rho is None else replace(base, rho=float(rho))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.gpu_protocol:
        args.protocol = args.gpu_protocol
    model = args.model or ("resnet18" if args.protocol == "resnet18" else "lenet")
    results = args.results or RESULTS / f"vision_{model}.csv"
    results.parent.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        print(write_summary(results))
        return 0
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    from eegmtl.benchmarks._cache import cache_dir
    from eegmtl.benchmarks.runner import run_grid

    k, n = (int(v) for v in args.shard.split("/"))
    start = time.time()
    command = "python pipelines/vision.py " + " ".join(shlex.quote(a) for a in (
        argv if argv is not None else sys.argv[1:]))

    def log(msg: str) -> None:
        print(f"{datetime.now().strftime('%H:%M:%S')} {msg}", flush=True)

    log(f"start: {command}")
    recs = run_grid(
        args.benchmarks, args.methods, args.seeds, shard=(k, n), log=log, model=model,
        protocol=args.protocol, epochs=args.epochs, n_train=args.n_train, n_val=args.n_val,
        n_test=args.n_test, conflict_every=args.conflict_every, device=args.device,
        flat=_flat_config(args.flat_preset, args.flat_rho),
        results_path=results, resume=not args.no_resume, progress=args.progress,
        checkpoint_dir=args.checkpoint_dir or cache_dir(None, "vision_runs"),
    )
    n_runs = int((recs["task"] == "avg").sum()) if not recs.empty else 0
    _log_invocation(results, command, args.shard, start, n_runs)
    log(f"done: {n_runs} runs in {time.time() - start:.0f} s; summary {write_summary(results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
