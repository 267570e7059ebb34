"""Choose the best MixNet-family pipeline on validation accuracy only, and write the choice.

Reads the record files given, keeps the candidates
(:data:`eegmtl.evaluation.catalog.MIXNET_CANDIDATES` unless ``--candidates`` says otherwise) on
the chosen folds and the subjects for which *every* candidate has a record (so each candidate is
judged on the same fits), and picks the highest mean ``val_accuracy``
(:func:`eegmtl.evaluation.tables.select_on_validation`; test columns are never read for the
choice). Runs with Euclidean alignment are the candidates ``<pipeline>+EA``
(:func:`eegmtl.evaluation.records.tag_alignment`). The markdown written lists every
candidate's validation mean ± SD and n, the winner, and the command.

In the subject-independent protocol a fit's validation subjects are other targets' subjects
(all their sessions, the test sessions 4-5 included), so a choice pooled over targets has read
data that are, for another fit, a target's test sessions. :func:`leave_target_out` therefore
also makes the choice once per target subject T from the fits whose validation subjects exclude
T (a nested choice: nothing of T's enters T's choice), and the markdown lists these choices and
whether they agree with the pooled one. The registry alias
``MixNet[best]`` resolves to the winner named in :data:`eegmtl.evaluation.catalog.BEST_MIXNET`,
which a test pins to the committed choice.

Usage::

    eegmtl select-best --records pipelines/results/sd.csv pipelines/results/sd_sota.csv \\
        --folds 1 --out pipelines/results/mixnet_best_selection.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.evaluation.catalog import MIXNET_CANDIDATES
from eegmtl.evaluation.records import load_records, tag_alignment
from eegmtl.evaluation.tables import markdown_table, select_on_validation
from eegmtl.experiments._common import command_line

__all__ = ["add_arguments", "candidate_records", "choose", "leave_target_out", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl select-best``."""
    parser.description = (__doc__ or "").split("\n")[0]
    p = parser
    p.add_argument("--records", type=Path, nargs="+", required=True,
                   help="record CSVs holding the candidates' fits")
    p.add_argument("--candidates", nargs="+", default=list(MIXNET_CANDIDATES),
                   help="candidate pipelines (default: MIXNET_CANDIDATES of the registry)")
    p.add_argument("--folds", type=int, nargs="+", default=[1], help="folds used (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fits used (default 0)")
    p.add_argument("--out", type=Path, required=True, help="markdown file for the choice")


def candidate_records(records: pd.DataFrame, candidates: list[str], folds: list[int],
                      seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """The candidates' records on ``folds`` and ``seed`` (one per pipeline, subject, fold and
    seed), restricted to the subjects every candidate covers, and those subjects.

    Raises
    ------
    ValueError
        Records of several protocols, a candidate without records, or no common subject.
    """
    df = records[records.pipeline.isin(candidates) & records.fold.isin(folds)
                 & (records.seed == seed)]
    if "protocol" in df.columns and df["protocol"].nunique() > 1:
        raise ValueError(f"the candidates' records mix protocols {sorted(df.protocol.unique())}; "
                         "choose on one protocol's record files at a time")
    missing = sorted(set(candidates) - set(df.pipeline))
    if missing:
        raise ValueError(f"no records on folds {folds} for candidates {missing}; run them first "
                         "(e.g. bash pipelines/sd_sota.sh) or drop them with --candidates")
    per = df.groupby("pipeline").subject.apply(set)
    subjects = sorted(set.intersection(*per.tolist()))
    if not subjects:
        raise ValueError("no subject has a record for every candidate")
    df = df[df.subject.isin(subjects)].drop_duplicates(["pipeline", "subject", "fold", "seed"])
    return df, subjects


def choose(records: pd.DataFrame, candidates: list[str], folds: list[int],
           seed: int = 0) -> tuple[str, pd.DataFrame, list[int]]:
    """``(winner, validation table, subjects used)`` on the subjects every candidate covers
    (:func:`candidate_records`)."""
    df, subjects = candidate_records(records, candidates, folds, seed)
    best, table = select_on_validation(df, order=candidates)
    return str(best), table, subjects


def leave_target_out(records: pd.DataFrame, candidates: list[str], folds: list[int],
                     seed: int = 0) -> pd.DataFrame:
    """Subject-independent records: the choice for each target subject T made only from the
    candidates' fits whose validation subjects (``val_subjects``, ``"1;3"``) do not include T.

    Same candidates, folds, seed and common subjects as :func:`choose`; validation columns
    only. Returns one row per target: ``subject``, ``chosen``, ``val_mean`` (its mean
    validation accuracy over those fits) and ``n_fits`` (fits per candidate used).
    """
    df, subjects = candidate_records(records, candidates, folds, seed)
    if "val_subjects" not in df.columns or df["val_subjects"].isna().any():
        raise ValueError("the records have no val_subjects column (or empty cells): a "
                         "leave-target-out choice needs each fit's validation subjects")
    val = df["val_subjects"].astype(str).map(lambda v: {int(float(x)) for x in v.split(";")})
    rows = []
    for target in subjects:
        use = df[~val.map(lambda v, t=target: t in v)]
        best, table = select_on_validation(use, order=candidates)
        rows.append((target, str(best), float(table.loc[best, "mean"]),
                     int(table.loc[best, "n"])))
    return pd.DataFrame(rows, columns=["subject", "chosen", "val_mean", "n_fits"])


def run(args: argparse.Namespace) -> int:
    """Pick the winner and write the markdown table."""
    records = pd.concat([tag_alignment(load_records(p)) for p in args.records],
                        ignore_index=True)
    best, table, subjects = choose(records, list(args.candidates), list(args.folds), args.seed)
    rows = [[name, f"{r['mean'] * 100:.2f}", f"{r['std'] * 100:.2f}", int(r["n"]),
             "**chosen**" if name == best else ""] for name, r in table.iterrows()]
    nested: list[str] = []
    si = records[records.pipeline.isin(args.candidates)]
    if "protocol" in si.columns and (si["protocol"] == "subject_independent").all():
        lto = leave_target_out(records, list(args.candidates), list(args.folds), args.seed)
        agree = int((lto["chosen"] == best).sum())
        nested = [
            "## Leave-target-out check (subject-independent)",
            "",
            "A fit's validation subjects are other targets (all five sessions), so the pooled "
            "choice above has read trials that are another fit's test sessions. Here the choice "
            "for each target T uses only the fits whose validation subjects exclude T:",
            "",
            markdown_table(["target", "chosen without T's trials", "val acc", "fits used"],
                           [[int(r.subject), f"`{r.chosen}`", f"{r.val_mean * 100:.2f}",
                             int(r.n_fits)] for r in lto.itertuples()]),
            "",
            f"The nested choice agrees with the pooled winner for {agree} of {len(lto)} targets"
            + (": the pooled choice is the nested one." if agree == len(lto) else
               "; where it differs, the nested choice is the one to report."),
            "",
        ]

    text = "\n".join([
        "# Best MixNet-family pipeline, chosen on validation accuracy only",
        "",
        f"Generated by `{command_line(args)}` (do not edit by hand).",
        "",
        f"Folds {list(args.folds)}, seed {args.seed}, subjects {subjects} (those with a record "
        "for every candidate). Mean ± SD of `val_accuracy` over subject × fold rows, in %; "
        "test columns are not read.",
        "",
        markdown_table(["candidate", "val acc", "SD", "n", ""], rows),
        "",
        f"Winner: `{best}`"
        + (" (registry alias `MixNet[best]`)." if list(args.candidates) == list(MIXNET_CANDIDATES)
           else "."),
        "",
        *nested,
    ])
    atomic_write(args.out, text)
    print(text)
    return 0
