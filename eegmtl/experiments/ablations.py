"""MixNet ablations on BCIC IV 2b, as Tables S1-S3 of the MixNet supplement, chosen honestly.

The paper tuned three hyper-parameters **sequentially** (supplementary Tables S1-S3):

- S1: triplet margin α ∈ {0.1, 0.5, 1, 5, 10, 100}, with latent size U·N_f (= 2·9 = 18) and
  warm-up W = 5;
- S2: latent size ∈ {4, 8, U·N_f = 18, 32, 64, 128, 256}, with the α chosen in S1 and W = 5;
- S3: warm-up W ∈ {2, 3, 5, 7, 9}, with the α and latent size chosen before.

**Selection differs from the original code on purpose.** The reference chose α, latent and W
from tables of *test* performance (sessions 4-5 in SD, the held-out subject in SI); there was no
separate selection split. Here every choice is made by
:func:`eegmtl.evaluation.tables.select_on_validation`: the value with the best mean
**validation** accuracy over all subject × fold rows (the validation folds of sessions 1-3 in SD,
the validation subjects in SI). Test scores are reported next to it, never used; the tables also
show which value the test scores would have picked, to make the difference visible.

Every setting is an ordinary pipeline ``MixNet[margin=..,latent=..,warmup=..]`` evaluated by
``run_protocol`` on the same splits, so records are cached and reruns resume: ``--param
warmup`` runs the whole chain (S1 and S2 come from the record file when already done), unless
the earlier choices are fixed with ``--margin`` / ``--latent``.

Usage::

    eegmtl ablations --param margin --protocol sd          # Table S1, SD
    eegmtl ablations --param all --protocol sd --n-jobs 2   # S1 -> S2 -> S3
    eegmtl ablations --param warmup --protocol si --margin 5 --latent 18
    eegmtl ablations --param margin --quick                 # smoke test

Records: ``<results folder>/ablations_<sd|si>.csv``; summary (commands, wall times, tables):
``<results folder>/ablations_<sd|si>_summary.md``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from eegmtl._io import atomic_write
from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.evaluation.methods import get_method
from eegmtl.evaluation.tables import markdown_table, select_on_validation, summarize
from eegmtl.experiments._common import (
    command_line,
    elapsed_s,
    n_jobs_int,
    non_negative_int,
    parse_subjects,
    positive_int,
    set_torch_threads,
)
from eegmtl.mixnet.defaults import normalize_protocol

__all__ = ["CHAIN", "PARAMS", "add_arguments", "run"]

#: CLI name -> (MixNet config key, grid of Tables S1-S3, table name)
PARAMS: dict[str, tuple[str, list[Any], str]] = {
    "margin": ("margin", [0.1, 0.5, 1.0, 5.0, 10.0, 100.0], "S1 (margin α)"),
    "latent": ("latent_dim", [4, 8, 18, 32, 64, 128, 256], "S2 (latent size; 18 = U·N_f)"),
    "warmup": ("warmup", [2, 3, 5, 7, 9], "S3 (warm-up W)"),
}
CHAIN = ["margin", "latent", "warmup"]
#: settings of the parameters not yet tuned when a table starts (S1: latent U·N_f, W = 5)
START = {"margin": 1.0, "latent": 18, "warmup": 5}


def label(setting: dict[str, Any]) -> str:
    """Pipeline name of one setting, e.g. ``MixNet[margin=0.1,latent=18,warmup=5]``."""
    return (f"MixNet[margin={setting['margin']:g},latent={int(setting['latent'])},"
            f"warmup={int(setting['warmup'])}]")


def pm(mean: float, sd: float) -> str:
    """``"76.64 ± 14.32"`` in %, ``–`` for an undefined SD (a single row)."""
    return f"{100 * mean:.2f} ± " + (f"{100 * sd:.2f}" if math.isfinite(sd) else "–")


def run_step(
    param: str, fixed: dict[str, Any], protocol: str, args: argparse.Namespace,
    subjects: list[int], folds: list[int] | None, results: Path,
    params: dict[str, tuple[str, list[Any], str]] | None = None,
) -> tuple[Any, str]:
    """Evaluate the grid of ``param`` (others ``fixed``; grids ``params``, default
    :data:`PARAMS`); return (value chosen on validation, markdown table)."""
    params = PARAMS if params is None else params
    key, grid, title = params[param]
    if args.values and args.param == param:
        grid = args.values
    methods, value_of = {}, {}
    for v in grid:
        setting = {**fixed, param: v}
        over = {params[p][0]: setting[p] for p in CHAIN}
        if args.max_epochs is not None:
            over["max_epochs"] = args.max_epochs
        if args.device is not None:
            over["device"] = args.device
        name = label(setting)
        methods[name] = get_method("MixNet", protocol, **over)
        value_of[name] = v
    from eegmtl.evaluation.runner import run_protocol

    df = run_protocol(
        protocol, methods, subjects, n_folds=args.folds, folds=folds, seeds=args.seeds,
        n_jobs=args.n_jobs, backend=args.backend, results_path=results,
        progress=not args.no_progress, torch_threads=args.torch_threads,
    )
    best, val_table = select_on_validation(df, "pipeline", "val_accuracy", order=list(methods))
    test = summarize(df, by=("pipeline",), metrics=("accuracy", "f1_macro")).set_index("pipeline")
    test_pick = test["accuracy_mean"].idxmax()
    rows = []
    for name in methods:
        t, v = test.loc[name], val_table.loc[name]
        rows.append([
            value_of[name],
            pm(t.accuracy_mean, t.accuracy_std), pm(t.f1_macro_mean, t.f1_macro_std),
            pm(v["mean"], v["std"]),
            int(t.n),
            "**selected**" if name == best else "",
            "(test's pick)" if name == test_pick and name != best else "",
        ])
    header = [param, "test acc (%)", "test F1 (%)", "val acc (%)", "n", "choice (validation)",
              "note"]
    others = ", ".join(f"{p}={fixed[p]:g}" for p in CHAIN if p != param)
    text = (f"### Table {title}, {others}\n\n" + markdown_table(header, rows)
            + f"\nChosen on validation: {param} = {value_of[best]:g}"
            + (f" (the test sessions would have picked {value_of[test_pick]:g})."
               if test_pick != best else " (the test sessions agree).") + "\n"
            + _nested_check(df, protocol, list(methods), value_of, best))
    return value_of[best], text


def _nested_check(df: Any, protocol: str, names: list[str], value_of: dict[str, Any],
                  best: str) -> str:
    """Subject-independent grids: the leave-target-out choices
    (:func:`eegmtl.experiments.select_best.leave_target_out`: for each target, only the fits
    whose validation subjects exclude it), and whether they agree with the pooled choice."""
    if protocol != "subject_independent" or df["seed"].nunique() != 1:
        return ""
    from eegmtl.experiments.select_best import leave_target_out

    lto = leave_target_out(df, names, sorted(df["fold"].unique()), int(df["seed"].iloc[0]))
    agree = int((lto["chosen"] == best).sum())
    other = sorted({f"{value_of[c]:g}" for c in lto["chosen"] if c != best})
    return (f"Leave-target-out check (each target's choice from the fits whose validation "
            f"subjects exclude it): the pooled choice for {agree} of {len(lto)} targets"
            + (f"; the others would take {', '.join(other)}." if other else ".") + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl ablations``."""
    parser.description = (__doc__ or "").split("\n")[0] + f" {RESULTS_DIR_HELP}."
    p = parser
    p.add_argument("--param", choices=[*CHAIN, "all"], required=True)
    p.add_argument("--protocol", choices=["sd", "si"], default="sd")
    p.add_argument("--values", type=float, nargs="+", default=None,
                   help="override the grid of --param")
    p.add_argument("--margin", type=float, default=None, help="fix α (skip S1)")
    p.add_argument("--latent", type=int, default=None, help="fix the latent size (skip S2)")
    p.add_argument("--warmup", type=int, default=None, help="fix W")
    p.add_argument("--subjects", nargs="+", default=["1..9"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-folds", type=int, nargs="+", default=None)
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0])
    p.add_argument("--n-jobs", type=n_jobs_int, default=1)
    p.add_argument("--backend", default="loky")
    p.add_argument("--max-epochs", type=positive_int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--results", type=Path, default=None,
                   help="record CSV (default <results folder>/ablations_<protocol>.csv)")
    p.add_argument("--summary", type=Path, default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: subject 1, fold 1, 2 epochs, two values per grid")
    # ties on validation go to the first value of the grid (select_on_validation's order)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--torch-threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    """Run the Tables S1-S3 chain as parsed by :func:`add_arguments`; write the summary."""
    if args.values and args.param in ("latent", "warmup"):
        args.values = [int(v) for v in args.values]
    protocol = normalize_protocol(args.protocol)
    subjects, folds = parse_subjects(args.subjects), args.only_folds
    stem = f"ablations_{args.protocol}" + ("_quick" if args.quick else "")
    results = args.results or results_dir() / f"{stem}.csv"
    summary = args.summary or results.with_name(f"{results.stem}_summary.md")
    params = dict(PARAMS)
    if args.quick:
        subjects, folds = subjects[:1], [1]
        args.max_epochs = 2 if args.max_epochs is None else args.max_epochs
        params = {k: (key, grid[:2], title) for k, (key, grid, title) in PARAMS.items()}
    set_torch_threads(args.torch_threads)

    given = {"margin": args.margin, "latent": args.latent, "warmup": args.warmup}
    fixed = {k: (v if v is not None else START[k]) for k, v in given.items()}
    last = CHAIN.index(args.param) if args.param != "all" else len(CHAIN) - 1
    tables = []
    for param in CHAIN[: last + 1]:
        if given[param] is not None and param != args.param:
            continue  # fixed on the command line: no tuning step for it
        chosen, text = run_step(param, fixed, protocol, args, subjects, folds, results, params)
        fixed[param] = chosen
        tables.append(text)
    wall = elapsed_s()
    from eegmtl.experiments.summaries import summary_header

    lines = summary_header(results, command_line(args), wall,
                           f"MixNet ablations (Tables S1-S3), {protocol.replace('_', '-')}")
    lines += ["Selection: best mean validation accuracy over all subject × fold rows "
              "(never the test sessions; the original code selected on test). Test columns: "
              "mean ± SD (ddof = 1) over subject × fold rows.", "", *tables,
              f"Final setting: margin = {fixed['margin']:g}, latent = {fixed['latent']}, "
              f"warm-up = {fixed['warmup']}."]
    atomic_write(summary, "\n".join(lines) + "\n")
    print("\n".join(tables))
    print(f"summary {summary}; wall {wall:.1f} s")
    return 0
