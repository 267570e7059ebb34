"""Two-task landscape (CAGrad / Nash-MTL / Aligned-MTL toy): trajectories, plot and table.

Runs every method from the five starting points for several preference scales
(losses ``(s f1, (1-s) f2)``), Adam lr 1e-3, 35 000 iterations by default, and writes to the
results folder (``--out``; default: the results folder):

- ``toy_landscape.png``: contours of ``L1 + L2`` per method (rows) and scale (columns) with
  the trajectories, the Pareto set (grey) and the minimiser of ``L1 + L2`` (star);
- ``toy_landscape.csv``: one row per method × scale × start: final point, ``f1``, ``f2``,
  distance to the minimiser of ``L1 + L2`` and to the Pareto set;
- ``toy_landscape.md``: the same as a markdown table plus a per-method summary and the command.

Usage::

    eegmtl toy                      # all methods, scales 0.1 0.3 0.5, 35k iters
    eegmtl toy --n-iter 2000 --methods ew aligned_mtl --scales 0.5
    eegmtl toy --backend registry   # call the registry aggregators (slow)
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import numpy as np

from eegmtl._io import atomic_open, atomic_write
from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.experiments._common import command_line

__all__ = ["DEFAULT_METHODS", "add_arguments", "run"]

DEFAULT_METHODS = ("ew", "mgda", "pcgrad", "cagrad", "imtl_g", "nash_mtl", "aligned_mtl",
                   "rlw", "rgw")
#: reached the optimum / the Pareto set when the final point is closer than this (x units)
TOL_OPT, TOL_PARETO = 0.1, 0.05


def _available(methods: list[str]) -> tuple[list[str], list[str]]:
    from eegmtl.mtl.aggregators import AGGREGATORS
    from eegmtl.mtl.weightings import WEIGHTINGS

    ok = [m for m in methods if m in AGGREGATORS or m in WEIGHTINGS]
    return ok, [m for m in methods if m not in ok]


def _plot(results: dict, methods: list[str], scales: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eegmtl.benchmarks.toy import global_optimum, pareto_set, toy_losses_np
    from eegmtl.evaluation.plots import save_figure

    grid = np.linspace(-10, 10, 241)
    xx, yy = np.meshgrid(grid, grid)
    f = toy_losses_np(np.stack([xx, yy], -1))
    front = pareto_set()
    fig, axes = plt.subplots(
        len(methods), len(scales), figsize=(3.0 * len(scales), 2.8 * len(methods)), squeeze=False
    )
    for j, s in enumerate(scales):
        total = s * f[..., 0] + (1 - s) * f[..., 1]
        opt = global_optimum(s)
        for i, m in enumerate(methods):
            ax = axes[i, j]
            ax.contour(xx, yy, total, levels=20, cmap="viridis", linewidths=0.6)
            ax.plot(front[:, 0], front[:, 1], color="0.5", lw=3, alpha=0.6, zorder=1)
            tr = results[(m, s)]
            for b in range(tr.path.shape[1]):
                ax.plot(tr.path[:, b, 0], tr.path[:, b, 1], color="tab:red", lw=1.0, zorder=3)
                ax.plot(*tr.inits[b], "ko", ms=3, zorder=4)
                ax.plot(*tr.final[b], "o", color="tab:orange", ms=3, zorder=5)
            ax.plot(*opt, "k*", ms=9, zorder=6)
            ax.set_xlim(-10, 10)
            ax.set_ylim(-10, 10)
            ax.set_xticks([-10, 0, 10])
            ax.set_yticks([-10, 0, 10])
            ax.set_title(f"{m}, s={s:g}", fontsize=9)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=80, bbox_inches=None)
    finally:
        plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl toy``."""
    parser.description = (__doc__ or "").splitlines()[0] + f" {RESULTS_DIR_HELP}."
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--scales", nargs="+", type=float, default=[0.1, 0.3, 0.5])
    parser.add_argument("--n-iter", type=int, default=35_000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("auto", "registry", "batched"), default="auto")
    parser.add_argument("--record-every", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the results folder)")
    parser.add_argument("--no-plot", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run the trajectories and write plot, CSV and markdown as parsed by
    :func:`add_arguments`."""
    import torch

    torch.set_num_threads(1)
    from eegmtl.benchmarks.toy import (
        INITS,
        distance_to_curve,
        global_optimum,
        pareto_set,
        run_trajectory,
    )
    out = results_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    methods, missing = _available(args.methods)
    for m in missing:
        print(f"note: method {m!r} is not in the aggregator or weighting registry yet; skipped.")
    front = pareto_set()
    t0 = time.perf_counter()
    results, rows = {}, []
    for s in args.scales:
        opt = global_optimum(s)
        for m in methods:
            tr = run_trajectory(
                m, INITS, scale=s, lr=args.lr, n_iter=args.n_iter, seed=args.seed,
                record_every=args.record_every, backend=args.backend,
            )
            results[(m, s)] = tr
            d_opt = np.sqrt(((tr.final - opt) ** 2).sum(-1))
            d_par = distance_to_curve(tr.final, front)
            # distance travelled over the last 1000 iterations: 0 = stopped, > 0 = still moving
            back = min(len(tr.path) - 1, max(1, 1000 // args.record_every))
            moved = np.sqrt(((tr.path[-1] - tr.path[-1 - back]) ** 2).sum(-1))
            for b in range(len(INITS)):
                rows.append({
                    "method": m, "scale": s, "init_x1": INITS[b][0], "init_x2": INITS[b][1],
                    "final_x1": round(float(tr.final[b, 0]), 4),
                    "final_x2": round(float(tr.final[b, 1]), 4),
                    "f1": round(float(tr.losses[b, 0]), 4), "f2": round(float(tr.losses[b, 1]), 4),
                    "optimum_x1": round(float(opt[0]), 4), "optimum_x2": round(float(opt[1]), 4),
                    "dist_optimum": round(float(d_opt[b]), 4),
                    "dist_pareto": round(float(d_par[b]), 4),
                    "reached_optimum": bool(d_opt[b] < TOL_OPT),
                    "on_pareto": bool(d_par[b] < TOL_PARETO),
                    "moved_last_1000": round(float(moved[b]), 4),
                    "backend": tr.config["backend"], "n_iter": args.n_iter, "lr": args.lr,
                    "seed": args.seed, "seconds": round(tr.seconds, 2),
                })
            n_opt, n_par = int((d_opt < TOL_OPT).sum()), int((d_par < TOL_PARETO).sum())
            print(f"scale {s:g} {m:12s} {tr.seconds:6.1f}s  reached optimum {n_opt}/5, "
                  f"on Pareto set {n_par}/5")
    wall = time.perf_counter() - t0
    with atomic_open(out / "toy_landscape.csv", "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if not args.no_plot:
        _plot(results, methods, args.scales, out / "toy_landscape.png")
    _write_markdown(out / "toy_landscape.md", rows, methods, args, command_line(args), wall)
    print(f"wrote {out / 'toy_landscape.csv'}, .md{'' if args.no_plot else ', .png'} "
          f"in {wall:.1f} s")
    return 0


def _write_markdown(path: Path, rows: list[dict], methods: list[str], args: argparse.Namespace,
                    command: str, wall: float) -> None:
    import torch

    lines = [
        "# Two-task landscape (CAGrad / Nash-MTL / Aligned-MTL toy)",
        "",
        f"Command: `{command}` (wall time {wall:.0f} s, 1 thread, {platform.processor() or 'CPU'}, "
        f"torch {torch.__version__}, numpy {np.__version__}).",
        f"Losses (s f1, (1-s) f2); Adam lr {args.lr:g}, {args.n_iter} iterations; 5 starts "
        "(-8.5,7.5) (0,0) (9,9) (-7.5,-0.5) (9,-1). Optimum = minimiser of L1 + L2 "
        f"(s=0.5: (0, -8.355)). Reached optimum: distance < {TOL_OPT}; on the Pareto set: "
        f"distance < {TOL_PARETO}. 'Moved in last 1000 it.' = distance travelled over the "
        "last 1000 iterations (about 0: stopped; about 1: still moving at full Adam speed). "
        "Backend 'batched' = vectorised two-task formulas checked against the registry "
        "aggregators (tests/benchmarks/test_toy_landscape.py); 'registry' = the aggregator "
        "classes themselves. In this landscape RLW and RGW coincide (no task heads: weighting "
        "the losses = weighting the gradient rows).",
        "",
        "## Summary (starts out of 5)",
        "",
        "| method | " + " | ".join(f"s={s:g}: optimum / Pareto" for s in args.scales) + " |",
        "|---|" + "---|" * len(args.scales),
    ]
    for m in methods:
        cells = []
        for s in args.scales:
            sub = [r for r in rows if r["method"] == m and r["scale"] == s]
            cells.append(f"{sum(r['reached_optimum'] for r in sub)} / "
                         f"{sum(r['on_pareto'] for r in sub)}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "## Final points", "",
              "| method | s | start | final | f1 | f2 | dist. optimum | dist. Pareto | "
              "moved in last 1000 it. |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['scale']:g} | ({r['init_x1']:g}, {r['init_x2']:g}) | "
            f"({r['final_x1']:.3f}, {r['final_x2']:.3f}) | {r['f1']:.3f} | {r['f2']:.3f} | "
            f"{r['dist_optimum']:.3f} | {r['dist_pareto']:.3f} | {r['moved_last_1000']:.3f} |"
        )
    atomic_write(path, "\n".join(lines) + "\n")
