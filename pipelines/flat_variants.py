"""Accuracy of the cheap flat-minima variants against the exact F-MTL update on MultiMNIST.

Same budget for every variant: LeNet, the first ``--n-train`` training pairs, ``--epochs``
epochs, Adam (the ``lenet`` protocol of :mod:`eegmtl.benchmarks.runner`), the official
MultiMNIST flat setting (ASAM, ρ = 2, joint norm) with ``FlatConfig.mode`` set to
``exact``, ``looksam`` (k = ``--every``) or ``subset``; the non-flat aggregator as reference.
Records (one row per task and run, the flat mode in the ``config`` JSON) go to ``--results``;
a summary table (mean test average accuracy per variant) is printed and written next to it.

Usage::

    python pipelines/flat_variants.py --seeds 0 1 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from eegmtl._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "flat_variants_multimnist.csv"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--aggregator", default="pcgrad")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n-train", type=int, default=15000)
    p.add_argument("--every", type=int, default=5, help="LookSAM's k")
    p.add_argument("--modes", nargs="+", default=["exact", "looksam", "subset"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)

    import pandas as pd

    from eegmtl.benchmarks.runner import run_benchmark
    from eegmtl.mtl.flat import FMTL_MULTIMNIST

    common = {"benchmark": "multimnist", "epochs": args.epochs, "n_train": args.n_train,
              "threads": args.threads, "results_path": args.results}
    for seed in args.seeds:
        run_benchmark(method=args.aggregator, seed=seed, **common)
        for mode in args.modes:
            flat = {**asdict(FMTL_MULTIMNIST), "mode": mode,
                    "every": args.every if mode == "looksam" else 1}
            run_benchmark(method=f"f-{args.aggregator}", seed=seed, flat=flat, **common)
            print(f"seed {seed} {mode} done", flush=True)

    rec = pd.read_csv(args.results)
    rec = rec[rec["task"] == "avg"].copy()

    def variant(cfg: str) -> str:
        flat = json.loads(cfg).get("flat")
        if not flat:
            return "none"
        return flat.get("mode", "exact") + (f"(k={flat['every']})" if flat.get("every", 1) > 1
                                            else "")

    rec["flat_variant"] = rec["config"].map(variant)
    summary = rec.groupby(["method", "flat_variant"]).agg(
        seeds=("seed", "nunique"), avg_accuracy=("avg_accuracy", "mean"),
        avg_accuracy_sd=("avg_accuracy", "std"), fit_s=("time", "mean"),
    ).reset_index()
    table = summary.to_markdown(index=False, floatfmt=".4f")
    print(table)
    cmd = "python pipelines/flat_variants.py " + " ".join(sys.argv[1:] if argv is None else argv)
    atomic_write(
        Path(args.results).with_suffix(".md"),
        f"# Flat variants on MultiMNIST (same budget)\n\nCommand: `{cmd}`\n\n{table}\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
