"""Ensembles of fold models or seeds from stored test predictions: records and a summary.

Reads the per-fit prediction files that ``eegmtl sd --predictions-dir DIR`` writes, averages the
class probabilities of the K fold models of every subject × pipeline × seed
(:mod:`eegmtl.evaluation.ensemble`; ``--over seed``: the seeds of every subject × pipeline ×
fold, ``--over fold+seed``: all of a subject's fits), merges one record per ensemble (pipeline
``"<pipeline>+ens<K>"`` with fold 0, ``"<pipeline>+seeds<S>"`` with seed -1, or
``"<pipeline>+ens<K>+seeds<S>"``) into ``--results`` through the record store and writes a
markdown summary that sets each ensemble against the mean of its own members (single models).
No model is refitted.

Usage::

    eegmtl ensemble --predictions-dir pipelines/results/predictions \\
        --pipelines "MixNet[val-tuned]" --results pipelines/results/sd_ensembles.csv
    eegmtl ensemble --over seed --predictions-dir pipelines/results/predictions_ea \\
        --pipelines "MixNet[best]" --results pipelines/results/sd_seed_ensembles_ea.csv \\
        --member-records pipelines/results/sd_sota_ea.csv pipelines/results/sd_seeds_ea.csv
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.evaluation.records import load_records
from eegmtl.experiments._common import non_negative_int, positive_int

__all__ = ["add_arguments", "comparison", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl ensemble``."""
    parser.description = (__doc__ or "").split("\n")[0]
    p = parser
    p.add_argument("--predictions-dir", type=Path, required=True,
                   help="folder of per-fit prediction files (eegmtl sd --predictions-dir)")
    p.add_argument("--pipelines", nargs="+", required=True,
                   help="member pipelines, as named in the records (e.g. 'MixNet[val-tuned]')")
    p.add_argument("--folds", type=positive_int, nargs="+", default=None,
                   help="members: these folds, each required (default: every fold found, the "
                        "same for all subjects)")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=None,
                   help="members (--over seed / fold+seed): these seeds, each required (default: "
                        "every seed found, the same for all subjects)")
    p.add_argument("--over", choices=("fold", "seed", "fold+seed"), default="fold",
                   help="what the members differ in: the fold models of one seed (default), the "
                        "seeds of one fold (the average of several runs), or both")
    p.add_argument("--protocol", default="subject_dependent",
                   help="protocol of the prediction files used (default subject_dependent)")
    p.add_argument("--member-records", type=Path, nargs="+", default=None, metavar="FILE",
                   help="records of the member fits, for fit times, configs and the single-model "
                        "comparison: one or more files, e.g. seed 0 in one and seeds 1-2 in "
                        "another (default <results folder>/sd.csv; 'none' to skip)")
    p.add_argument("--results", type=Path, default=None,
                   help=f"ensemble record CSV (default <results folder>/sd_ensembles.csv; "
                        f"{RESULTS_DIR_HELP})")
    p.add_argument("--summary", type=Path, default=None,
                   help="markdown summary (default: <results stem>_summary.md)")


def _mean_sd(values: pd.Series, scale: float = 100.0) -> str:
    return f"{values.mean() * scale:.2f} ± {values.std(ddof=1) * scale:.2f}"


def comparison(ensembles: pd.DataFrame, members: pd.DataFrame) -> str:
    """Markdown: each ensemble against the mean of its members (single models) per subject.

    ``members`` are the member fits' records (one row per subject × fold × seed); the single
    model's value for a subject is the mean over its folds (and seeds) matched to the ensemble.
    Wilcoxon signed-rank over subjects by :func:`eegmtl.evaluation.stats.paired_tests`.
    """
    from eegmtl.evaluation.ensemble import ENSEMBLE_FOLD, ENSEMBLE_SEED, ensemble_name
    from eegmtl.evaluation.stats import paired_tests
    from eegmtl.evaluation.tables import markdown_table

    lines = []
    for name, ens in ensembles.groupby("pipeline", sort=True):
        over_folds = bool((ens["fold"] == ENSEMBLE_FOLD).all())
        over_seeds = bool((ens["seed"] == ENSEMBLE_SEED).all())
        configs = [json.loads(cfg) for cfg in ens["config"]]
        folds = ({int(f) for c in configs for f in c["member_folds"]} if over_folds
                 else set(map(int, ens["fold"])))
        seeds = ({int(s) for c in configs for s in c["member_seeds"]} if over_seeds
                 else set(map(int, ens["seed"])))
        # the members' name carries the same alignment tag as the ensemble's (tag_alignment)
        base = configs[0]["member_pipeline"]
        member = base + name.removeprefix(ensemble_name(
            base, len(folds) if over_folds else None, len(seeds) if over_seeds else None))
        single = members[(members["pipeline"] == member)
                         & members["subject"].isin(ens["subject"])
                         & members["seed"].isin(seeds) & members["fold"].isin(folds)]
        what = " × ".join(part for part, on in (
            (f"{len(folds)} fold models", over_folds), (f"{len(seeds)} seeds", over_seeds)) if on)
        per_ens = ens.groupby("subject")[["accuracy", "kappa", "roc_auc"]].mean()
        per_one = single.groupby("subject")[["accuracy", "kappa", "roc_auc"]].mean()
        lines += [f"## {name} (soft vote of {what}) vs {member} (single models)", ""]
        rows = [[name, len(per_ens), _mean_sd(per_ens.accuracy), _mean_sd(per_ens.kappa),
                 _mean_sd(per_ens.roc_auc), f"{ens['time'].mean():.0f}"]]
        if len(per_one):
            rows.append([f"{member} (one model; mean of {len(single)} fits)", len(per_one),
                         _mean_sd(per_one.accuracy), _mean_sd(per_one.kappa),
                         _mean_sd(per_one.roc_auc),
                         f"{single['time'].mean():.0f}"])
        lines += ["Mean ± SD over subjects (ddof = 1; ensembles and single models first "
                  "averaged over the folds and seeds of each subject), test sessions 4-5, %; "
                  "training time: mean of the ensembles (each with all its fits) and of the single "
                  "fits:",
                  "",
                  markdown_table(["pipeline", "subjects", "accuracy", "κ", "ROC-AUC",
                                  "training s"], rows)]
        table = per_ens.merge(per_one, left_index=True, right_index=True, how="left",
                              suffixes=("", "_single"))
        lines += ["Per subject (accuracy %; Δ = ensemble - single-model mean):", "",
                  markdown_table(
                      ["subject", "ensemble", "single (mean of fits)", "Δ", "ensemble AUC",
                       "single AUC"],
                      [[int(s), f"{r.accuracy * 100:.2f}", f"{r.accuracy_single * 100:.2f}",
                        f"{(r.accuracy - r.accuracy_single) * 100:+.2f}",
                        f"{r.roc_auc * 100:.2f}", f"{r.roc_auc_single * 100:.2f}"]
                       for s, r in table.iterrows()])]
        if len(per_one):
            both = pd.concat([ens, single], ignore_index=True)
            t = paired_tests(both, name).iloc[0]
            lines += [f"Ensemble better on {int(t.wins)}/{int(t.n_subjects)} subjects; mean "
                      f"difference {t.mean_difference * 100:+.2f} points; Wilcoxon signed-rank "
                      f"over subjects p = {t.p:.3g}.", ""]
    return "\n".join(lines)


def _caveat(pipelines: list[str]) -> str:
    shown = " ".join(f"'{p}'" for p in pipelines)
    base = "EEGNet ShallowFBCSPNet MIN2Net CSP+LDA"
    return "\n".join([
        "What this comparison is, and is not: an ensemble of K fold models against the single "
        "models it is made of. It shows what averaging buys this pipeline; it is not a "
        "comparison with the other pipelines of `sd.csv`, whose numbers are single models and "
        "which might gain as much from the same averaging. A fair ranking sets ensembles against "
        "the baselines' ensembles, built from their stored fold predictions, e.g. (a fresh "
        "record file, so that no committed record is overwritten and every fit runs and "
        "writes its predictions):", "",
        "```",
        f"eegmtl sd --methods {base} --predictions-dir pipelines/results/predictions "
        "--results pipelines/results/sd_baseline_predictions.csv",
        "eegmtl ensemble --predictions-dir pipelines/results/predictions --pipelines "
        f"{base} --member-records pipelines/results/sd_baseline_predictions.csv "
        "--results pipelines/results/sd_ensembles.csv",
        "```", "",
        f"(members here: {shown}). FBCSP+SVM and TS+SVM have no `predict_proba` (their files "
        "hold decision values), so they cannot be averaged as probabilities. The test "
        "sessions only score the ensembles; no choice here looks at them.",
    ])


def run(args: argparse.Namespace) -> int:
    """Build the ensembles as parsed by :func:`add_arguments`; merge records, write summary."""
    from eegmtl._io import atomic_write
    from eegmtl.evaluation.ensemble import ensemble_records
    from eegmtl.evaluation.predictions import load_predictions
    from eegmtl.evaluation.records import combine_records, merge_records, tag_alignment
    from eegmtl.experiments._common import command_line, elapsed_s
    from eegmtl.experiments.summaries import summary_header

    t0 = time.perf_counter()
    out = args.results or results_dir() / "sd_ensembles.csv"
    summary = args.summary or out.with_name(f"{out.stem}_summary.md")
    member_paths = list(args.member_records or [results_dir() / "sd.csv"])
    if [str(p).lower() for p in member_paths] == ["none"]:
        member_paths = []
    missing = [str(p) for p in member_paths if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"member records {missing} not found; pass --member-records FILE "
                         "[FILE ...] (the records of the fits whose predictions are used) or "
                         "'none'")
    preds = load_predictions(args.predictions_dir, args.pipelines, protocol=args.protocol)
    members = combine_records(member_paths, tag=False) if member_paths else None
    try:
        records = ensemble_records(preds, members, folds=args.folds, seeds=args.seeds,
                                   over=args.over)
    except ValueError as err:
        raise SystemExit(f"eegmtl ensemble: {err}") from None
    merge_records(records, out)
    wall = time.perf_counter() - t0
    title = {"fold": "Fold-model ensembles", "seed": "Seed ensembles",
             "fold+seed": "Fold-model and seed ensembles"}[args.over]
    lines = summary_header(out, command_line(args), wall, f"{title} (SD)")
    stored = load_records(out)
    stored = tag_alignment(stored[stored["pipeline"].isin(records["pipeline"].unique())])
    if members is not None:
        lines += [comparison(stored, tag_alignment(members)), ""]
    lines += [_caveat(list(args.pipelines)), ""]
    atomic_write(summary, "\n".join(lines))
    cols = ["pipeline", "subject", "accuracy", "kappa", "roc_auc", "member_accuracy_mean"]
    with pd.option_context("display.width", 120):
        print(records[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for name, g in records.groupby("pipeline"):
        print(f"{name}: accuracy {_mean_sd(g.accuracy)} % over {len(g)} subjects "
              f"(members' mean {np.mean(g.member_accuracy_mean) * 100:.2f} %)")
    print(f"wrote {len(records)} records to {out} and the summary to {summary}")
    print(f"wall time {elapsed_s():.1f} s (imports, loading, averaging)")
    return 0
