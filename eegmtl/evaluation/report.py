"""The results report: markdown tables, paired tests and figures from record files.

EEG records get mean ± SD and per-subject tables (:mod:`eegmtl.evaluation.tables`), per-subject
figures and, against a reference pipeline, Wilcoxon tests (:mod:`eegmtl.evaluation.stats`) with
paired figures (:mod:`eegmtl.evaluation.plots`); vision benchmark records a mean ± SD table
over seeds.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from eegmtl._io import atomic_write
from eegmtl.config import results_dir
from eegmtl.evaluation.records import drop_repeated_runs, load_records, tag_alignment
from eegmtl.evaluation.stats import friedman_test, paired_tests
from eegmtl.evaluation.tables import markdown_table, signed, to_markdown

__all__ = ["EEG_COLUMNS", "VISION_COLUMNS", "report"]

EEG_COLUMNS = ("pipeline", "subject", "accuracy")
VISION_COLUMNS = ("dataset", "method", "avg_accuracy")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text)).strip("_")


def _options(metric: str, reference: str | None, level: str, combine: bool) -> str:
    """The options of a report as ``eegmtl report`` takes them (defaults included)."""
    ref = "" if reference is None else (
        f"--reference '{reference}' " if re.search(r"[^\w+.-]", reference)
        else f"--reference {reference} ")
    return f"{ref}--metric {metric} --level {level}" + (" --combine" if combine else "")


def _eeg_report(df: pd.DataFrame, stem: str, out: Path, metric: str, reference: str | None,
                level: str, friedman: Sequence[str] | None = None) -> list[str]:
    from eegmtl.evaluation.plots import (
        paired_comparison_plot,
        paired_differences_plot,
        subject_scores_plot,
    )

    lines = [f"## {stem}", ""]
    by = ("protocol", "pipeline") if "protocol" in df.columns else ("pipeline",)
    lines += [to_markdown(df, by=by, level=level, per_subject_metric=metric), ""]
    protocols = list(dict.fromkeys(df["protocol"])) if "protocol" in df.columns else [None]
    for proto in protocols:
        sub = df if proto is None else df[df["protocol"] == proto]
        tag = _slug(f"{stem}_{proto}" if proto else stem)
        fig = out / f"{tag}_{metric}_per_subject.png"
        subject_scores_plot(sub, metric, path=fig)
        lines += [f"![{metric} per subject]({fig.name})", ""]
        pipes = list(dict.fromkeys(sub["pipeline"]))
        if friedman:
            named = _NameFilter(friedman).hits(pd.Series(pipes, dtype=str))
            chosen = [q for q, hit in zip(pipes, named, strict=True) if hit]
            if len(chosen) >= 3:
                fr = friedman_test(sub, chosen, metric)
                lines += [f"Friedman test over {len(chosen)} pipelines ({', '.join(chosen)}; "
                          f"{metric} per subject on the {fr['n_runs']} subject × fold × seed "
                          f"runs all of them have, subjects as blocks, n = "
                          f"{fr['n_subjects']}): χ² = {fr['statistic']:.2f}, "
                          f"p = {fr['p']:.4f}", ""]
            else:
                lines += [f"(Friedman test: {len(chosen)} of the named pipelines in these "
                          "records, fewer than 3)", ""]
        ref = reference if reference in pipes else None
        if ref is None and reference is not None and len(pipes) > 1:
            lines += [f"(reference pipeline {reference!r} not in these records: no paired "
                      "comparison)", ""]
        if ref is None or len(pipes) < 2:
            continue
        tests = paired_tests(sub, ref, metric)
        rows = [[r.pipeline, r.n_subjects, r.n_runs, f"{100 * r.reference_mean:.2f}",
                 f"{100 * r.pipeline_mean:.2f}", signed(r.mean_difference),
                 f"{r.wins}/{r.n_subjects}",
                 "–" if r.p != r.p else f"{r.p:.4f}",
                 "–" if r.p_holm != r.p_holm else f"{r.p_holm:.4f}"]
                for r in tests.itertuples()]
        lines += [f"Paired comparison with {ref} ({metric}; only the subject × fold × seed "
                  "runs both pipelines have, averaged per subject — a fold-model ensemble "
                  "(`+ens<K>`) pairs with all folds of its subject, a seed ensemble "
                  "(`+seeds<S>`) with all seeds of its fold; two-sided Wilcoxon "
                  "signed-rank on the per-subject differences (exact; a zero difference is "
                  "left out of the test and is no win); p (Holm): adjusted for the "
                  f"{int(tests['p'].notna().sum())} tests of this table; – = fewer than 5 "
                  "paired subjects):", "",
                  markdown_table(["pipeline", "subjects", "runs", f"{ref} (%)", "pipeline (%)",
                                  "difference (pp)", f"{ref} better", "p", "p (Holm)"], rows)]
        if (tests["n_subjects"] > 0).any():
            fig = out / f"{tag}_{_slug(ref)}_differences.png"
            paired_differences_plot(sub, ref, metric, path=fig)
            lines += ["", f"![{ref} against every other pipeline]({fig.name})", ""]
        for other in tests["pipeline"]:
            fig = out / f"{tag}_{_slug(ref)}_vs_{_slug(other)}.png"
            paired_comparison_plot(sub, other, ref, metric, path=fig)
            lines += [f"![{ref} vs {other}]({fig.name})", ""]
    return lines


def _vision_report(df: pd.DataFrame, stem: str) -> list[str]:
    data = df[df["task"] == "avg"] if "task" in df.columns else df
    cols = [c for c in ("avg_accuracy", "delta_p", "conflict_rate", "brier", "ece")
            if c in data.columns]
    g = data.groupby(["dataset", "method"], sort=True)
    rows = []
    for (ds, method), grp in g:
        cells = [ds, method]
        for c in cols:
            scale = 100.0 if c in ("avg_accuracy", "delta_p") else 1.0
            m, s = grp[c].mean() * scale, grp[c].std(ddof=1) * scale
            cells.append(f"{m:.2f}" + (f" ± {s:.2f}" if s == s else "")
                         if scale == 100.0 else f"{m:.3f}")
        cells.append(len(grp))
        rows.append(cells)
    header = ["dataset", "method"] + [f"{c} (%)" if c in ("avg_accuracy", "delta_p") else c
                                      for c in cols] + ["seeds"]
    return [f"## {stem}", "", "Mean ± SD over seeds (rows with task = avg).", "",
            markdown_table(header, rows)]


class _NameFilter:
    """Pipeline-name patterns where ``*`` matches any text and every other character itself."""

    def __init__(self, patterns: Sequence[str] | None) -> None:
        self.patterns = list(patterns or [])
        self._regexes = [re.compile(re.escape(p).replace(r"\*", ".*")) for p in self.patterns]
        self.matched: set[str] = set()

    def hits(self, names: pd.Series) -> pd.Series:
        """Boolean mask of ``names`` matched by a pattern; remembers the names it matched."""
        names = names.astype(str)
        hit = names.map(lambda n: any(g.fullmatch(n) for g in self._regexes))
        self.matched.update(names[hit])
        return hit

    def check(self, option: str) -> None:
        """Raise ``ValueError`` naming the patterns that matched no pipeline of any file."""
        unmatched = [p for p, g in zip(self.patterns, self._regexes)
                     if not any(g.fullmatch(m) for m in self.matched)]
        if unmatched:
            raise ValueError(f"{option} {unmatched}: no pipeline of the records matches; names "
                             "are those of the tables (e.g. 'EEGNet+EA')")


def report(
    records: Sequence[str | os.PathLike[str]] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    metric: str = "accuracy",
    reference: str | None = "MixNet",
    level: str = "fold",
    folds: Sequence[int] | None = None,
    combine: bool = False,
    exclude: Sequence[str] | None = None,
    pipelines: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    friedman: Sequence[str] | None = None,
    require_reference: bool = False,
) -> Path:
    """Write ``report.md`` (tables) and PNG figures from result-record CSV files.

    EEG records (columns ``pipeline``, ``subject``, ``accuracy``) get the mean ± SD table of
    :func:`eegmtl.evaluation.tables.to_markdown` with a per-subject table, a per-subject
    figure per protocol (:func:`eegmtl.evaluation.plots.subject_scores_plot`) and, when
    ``reference`` is present, a Wilcoxon test (:func:`paired_tests`) and a paired figure
    (:func:`eegmtl.evaluation.plots.paired_comparison_plot`) against every other pipeline.
    Vision records (``dataset``, ``method``, ``avg_accuracy``) get a mean ± SD table over seeds.
    Other CSV files are skipped with a note.

    Parameters
    ----------
    records : sequence of path, optional
        Record CSV files; default every ``*.csv`` of the results directory
        (:func:`eegmtl.config.results_dir`).
    out : path, optional
        Output folder; default ``<results directory>/report``.
    metric : str
        Metric of the per-subject table, figures and tests; default ``"accuracy"``.
    reference : str or None
        Pipeline compared with all others; default ``"MixNet"``.
    level : {"fold", "subject"}
        SD over all rows (default, as the MixNet paper) or over subject means.
    folds : sequence of int, optional
        Keep only the EEG rows of these folds (e.g. ``[1]`` to compare pipelines that ran on
        fold 1 with others that ran on every fold).
    combine : bool
        One table and one set of tests over all EEG record files (section ``combined``)
        instead of one per file. Either way the pipelines of Euclidean-aligned runs carry
        ``+EA`` (:func:`tag_alignment`); rows repeated across files (same pipeline, subject,
        fold, seed and ``config_hash``) are kept once.
    exclude : sequence of str, optional
        Pipelines left out of every table, test and figure: names as in the tables (``+EA``
        included), where ``*`` matches any text and every other character itself (so
        ``MixNet[val-tuned]`` needs no escaping). A pattern matching nothing raises.
    pipelines : sequence of str, optional
        Keep only these pipelines (same names and patterns as ``exclude``, applied before it);
        a pattern matching nothing raises.
    seeds : sequence of int, optional
        Keep only the EEG rows of these seeds (e.g. ``[0]`` for the single-seed tables when
        some pipelines were also run with other seeds).
    friedman : sequence of str, optional
        Also a Friedman test over these pipelines (names and patterns as ``pipelines``; at
        least 3 present), subjects as blocks (:func:`eegmtl.evaluation.stats.friedman_test`).
    require_reference : bool
        Raise, before anything is written, when ``reference`` is in none of the EEG records
        left after the filters (a name given on purpose, e.g. ``eegmtl report --reference``);
        by default such files only say that they have no paired tests.

    Returns
    -------
    Path
        The markdown file written.
    """
    if records:
        paths = [Path(p) for p in records]
    else:
        paths = sorted(results_dir().glob("*.csv"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"record file(s) not found: {missing}")
    if not paths:
        raise FileNotFoundError(f"no record CSV files in {results_dir()}; pass them as "
                                "arguments or set --results-dir")
    out_dir = Path(out) if out is not None else results_dir() / "report"
    lines = ["# eegmtl report", "", "Generated by `eegmtl report` from "
             + ", ".join(f"`{p.name}`" for p in paths)
             + (f", folds {', '.join(map(str, folds))} only" if folds else "")
             + (f", seeds {', '.join(map(str, seeds))} only" if seeds else "")
             + (f", pipelines {', '.join(f'`{p}`' for p in pipelines)} only" if pipelines
                else "")
             + (f", pipelines {', '.join(f'`{p}`' for p in exclude)} excluded" if exclude
                else "")
             + (f", Friedman test over {', '.join(f'`{p}`' for p in friedman)}" if friedman
                else "")
             + f" (`{_options(metric, reference, level, combine)}`); do not edit by hand.", ""]
    combined: list[pd.DataFrame] = []
    emptied, reported = [], 0
    keep, drop = _NameFilter(pipelines), _NameFilter(exclude)
    loaded: list[tuple[Path, str, pd.DataFrame | None]] = []  # read and filtered first, so
    # that a wrong filter or reference stops the report before it overwrites anything
    for path in paths:
        head = pd.read_csv(path, nrows=0).columns
        if all(c in head for c in EEG_COLUMNS):
            df = tag_alignment(load_records(path))
            names = df["pipeline"]
            df = df[(keep.hits(names) if pipelines else True) & ~drop.hits(names)]
            if folds and "fold" in df.columns:
                df = df[df["fold"].isin(list(folds))]
            if seeds and "seed" in df.columns:
                df = df[df["seed"].isin(list(seeds))]
            loaded.append((path, "eeg", df))
        elif all(c in head for c in VISION_COLUMNS):
            loaded.append((path, "vision", None))
        else:
            loaded.append((path, "other", None))
    keep.check("--pipelines")
    drop.check("--exclude")
    eeg = [df for _, kind, df in loaded if kind == "eeg" and df is not None and not df.empty]
    if require_reference and eeg and reference is not None:
        present = sorted(set().union(*(set(df["pipeline"]) for df in eeg)))
        if reference not in present:
            from eegmtl.evaluation.methods import close_names

            hint = close_names(reference, present, 1)
            raise ValueError(
                f"reference pipeline {reference!r} is in none of the records"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; pipelines there: {', '.join(present)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, kind, df in loaded:
        if kind == "eeg":
            assert df is not None
            if metric not in df.columns:
                lines += [f"## {path.stem}", "", f"(no column {metric!r}; skipped)", ""]
                continue
            if df.empty:
                emptied.append(path.name)
                lines += [f"## {path.stem}", "", "(no rows left after the filters; skipped)", ""]
                continue
            reported += 1
            if combine:
                combined.append(df)
                continue
            lines += _eeg_report(df, path.stem, out_dir, metric, reference, level, friedman)
        elif kind == "vision":
            lines += _vision_report(pd.read_csv(path), path.stem)
        else:
            print(f"note: {path.name} is not a record file of a known schema; skipped",
                  file=sys.stderr)
    if emptied and not reported:
        raise ValueError(f"no rows of {emptied} are left after the filters: check "
                         "--pipelines, --exclude, --folds and --seeds against the records")
    if combined:
        df = drop_repeated_runs(pd.concat(combined, ignore_index=True))
        lines += _eeg_report(df, "combined", out_dir, metric, reference, level, friedman)
    return atomic_write(out_dir / "report.md", "\n".join(lines) + "\n")
