"""Tables made from result records: mean ± SD per pipeline, per-subject tables, markdown,
MOABB-shaped results and validation-only model selection.

Aggregation follows the MixNet paper (Autthasan et al., 2024, "MixNet: Joining Force of
Classical and Modern Approaches Toward the Comprehensive Pipeline in Motor Imagery EEG
Classification"; the public ``read_results_all_models.ipynb``): the mean ± SD of a metric is
taken over **all subject × fold rows** (45 for BCIC IV 2b), with the sample SD (``ddof=1``), not
over per-subject means. :func:`summarize` does that by default (``level="fold"``);
``level="subject"`` first averages the folds of each subject (the usual MOABB view).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from eegmtl.evaluation.records import TEST_METRICS

__all__ = [
    "markdown_table",
    "per_subject",
    "select_on_validation",
    "signed",
    "summarize",
    "to_markdown",
    "to_moabb",
]


def _check_columns(df: pd.DataFrame, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"records lack column(s) {missing}; available: {list(df.columns)}. Load them with "
            "eegmtl.evaluation.load_records from a file written by run_protocol."
        )


def summarize(
    df: pd.DataFrame,
    by: Sequence[str] = ("protocol", "pipeline"),
    metrics: Sequence[str] = ("accuracy", "f1_macro", "kappa", "roc_auc"),
    *,
    level: str = "fold",
    ddof: int = 1,
) -> pd.DataFrame:
    """Mean ± SD of ``metrics`` per group ``by``.

    Parameters
    ----------
    df : DataFrame
        Records (one row per subject × fold × pipeline × seed).
    by : sequence of str
        Grouping columns; default ``("protocol", "pipeline")``.
    metrics : sequence of str
        Metric columns to summarise.
    level : {"fold", "subject"}
        ``"fold"`` (default, as the MixNet paper): mean and SD over all subject × fold (× seed)
        rows of a group. ``"subject"``: average the rows of each subject first, then mean and SD
        over subjects.
    ddof : int
        Delta degrees of freedom of the SD; default 1 (pandas' sample SD, as the paper).

    Returns
    -------
    DataFrame
        One row per group with ``<metric>_mean``, ``<metric>_std``, ``n`` (rows aggregated),
        ``n_subjects``, ``n_folds`` and ``n_seeds``.
    """
    by = list(by)
    metrics = list(metrics)
    _check_columns(df, by + metrics + ["subject"])
    if df.empty:
        raise ValueError("no records to summarise (empty frame)")
    if level not in {"fold", "subject"}:
        raise ValueError(f"level must be 'fold' or 'subject', got {level!r}")
    data = df
    if level == "subject":
        data = df.groupby(by + ["subject"], sort=True)[metrics].mean().reset_index()
    g = data.groupby(by, sort=True)
    out = g[metrics].agg(["mean", lambda s: s.std(ddof=ddof)])
    out.columns = [f"{m}_{'mean' if stat == 'mean' else 'std'}" for m, stat in out.columns]
    out["n"] = g.size()
    counts = df.groupby(by, sort=True)
    out["n_subjects"] = counts["subject"].nunique()
    if "fold" in df.columns:
        out["n_folds"] = counts["fold"].nunique()
    if "seed" in df.columns:
        out["n_seeds"] = counts["seed"].nunique()
    return out.reset_index()


def per_subject(
    df: pd.DataFrame,
    metric: str = "accuracy",
    by: Sequence[str] = ("protocol", "pipeline"),
) -> pd.DataFrame:
    """Per-subject table: rows = groups ``by``, columns = subjects, values = mean ``metric``
    over the folds (and seeds) of that subject."""
    by = list(by)
    _check_columns(df, by + [metric, "subject"])
    tab = df.pivot_table(index=by, columns="subject", values=metric, aggfunc="mean")
    tab.columns = [int(c) for c in tab.columns]
    tab.columns.name = "subject"
    return tab


def _fmt(x: float, scale: float, decimals: int) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x * scale:.{decimals}f}"


def signed(x: float, scale: float = 100.0, decimals: int = 2) -> str:
    """A difference as text with its sign (``+1.25``, ``-0.40``); one that rounds to zero is
    ``0.00``, never ``-0.00``; NaN is ``–``."""
    if x is None or not np.isfinite(x):
        return "–"
    value = round(float(x) * scale, decimals)
    return f"{value:+.{decimals}f}" if value else f"{0:.{decimals}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_LABELS = {"accuracy": "acc", "f1_macro": "F1", "kappa": "κ", "roc_auc": "AUC",
           "val_accuracy": "val acc", "val_f1_macro": "val F1"}


def to_markdown(
    df: pd.DataFrame,
    by: Sequence[str] = ("protocol", "pipeline"),
    metrics: Sequence[str] = ("accuracy", "f1_macro", "kappa", "roc_auc"),
    *,
    percent: bool = True,
    decimals: int = 2,
    level: str = "fold",
    per_subject_metric: str | None = None,
) -> str:
    """Markdown table(s) generated from records: mean ± SD per group (see :func:`summarize`).

    Parameters
    ----------
    df : DataFrame
        Records.
    by, metrics, level
        As in :func:`summarize`.
    percent : bool
        Show metrics in % (accuracy, F1, AUC; κ is shown ×100 too, as is common in BCI tables).
    decimals : int
        Decimals of the numbers.
    per_subject_metric : str, optional
        Also append a per-subject table of this metric (mean over folds and seeds).
    """
    s = summarize(df, by=by, metrics=metrics, level=level)
    scale = 100.0 if percent else 1.0
    unit = " (%)" if percent else ""
    header = list(by) + [f"{_LABELS.get(m, m)}{unit}" for m in metrics] + ["n"]
    rows = []
    for _, r in s.iterrows():
        cells = [r[b] for b in by]
        cells += [f"{_fmt(r[m + '_mean'], scale, decimals)} ± "
                  f"{_fmt(r[m + '_std'], scale, decimals)}" for m in metrics]
        cells.append(int(r["n"]))
        rows.append(cells)
    out = markdown_table(header, rows)
    if per_subject_metric is not None:
        tab = per_subject(df, per_subject_metric, by=by)
        header = list(by) + [f"S{c}" for c in tab.columns]
        rows = [list(idx if isinstance(idx, tuple) else (idx,))
                + [_fmt(v, scale, decimals) for v in vals]
                for idx, vals in zip(tab.index, tab.to_numpy())]
        out += (f"\n{_LABELS.get(per_subject_metric, per_subject_metric)}{unit} per subject "
                "(mean over folds and seeds):\n\n" + markdown_table(header, rows))
    return out


def to_moabb(
    df: pd.DataFrame,
    *,
    score: str = "roc_auc",
    protocol: str | None = None,
) -> pd.DataFrame:
    """Results in the shape of ``moabb`` evaluation output.

    Folds and seeds are averaged per (dataset, protocol, pipeline, subject, session), like MOABB's
    within-session evaluation averages its folds. Columns: ``score, time, samples, samples_test,
    n_classes, subject, session, channels, n_sessions, dataset, pipeline`` (+ ``protocol``), so
    ``moabb.analysis.plotting.score_plot``, ``paired_plot`` and
    ``moabb.analysis.meta_analysis.compute_dataset_statistics`` work unchanged.

    Parameters
    ----------
    df : DataFrame
        Records.
    score : str
        Metric used as MOABB's ``score`` (default ``"roc_auc"``, as MOABB scores 2-class
        imagery); e.g. ``"accuracy"`` for accuracy-based statistics.
    protocol : str, optional
        Keep only this protocol. When several protocols remain, ``dataset`` becomes
        ``"<dataset>/<protocol>"`` so that MOABB treats them as separate data sets.
    """
    _check_columns(df, ["dataset", "protocol", "pipeline", "subject", score])
    data = df if protocol is None else df[df["protocol"] == protocol]
    if data.empty:
        raise ValueError(f"no records for protocol={protocol!r}")
    data = data.copy()
    data["score"] = pd.to_numeric(data[score], errors="coerce")
    if data["score"].isna().any():
        raise ValueError(f"column {score!r} has missing values; MOABB statistics need finite "
                         "scores. Drop those rows or choose another score column.")
    if "session" not in data.columns:
        data["session"] = "test"
    data["session"] = data["session"].fillna("test").astype(str)
    if data["protocol"].nunique() > 1:
        data["dataset"] = data["dataset"].astype(str) + "/" + data["protocol"].astype(str)
    keys = ["dataset", "protocol", "pipeline", "subject", "session"]
    num = [c for c in ("score", "time", "samples", "samples_test", "n_classes", "channels",
                       "n_sessions") if c in data.columns]
    out = data.groupby(keys, sort=True)[num].mean().reset_index()
    for c in ("samples", "samples_test", "n_classes", "channels", "n_sessions"):
        if c in out.columns:
            out[c] = out[c].round().astype(int)
    out["subject"] = out["subject"].astype(int)
    return out


#: metrics measured on the test sessions; model selection must never use them

def select_on_validation(
    df: pd.DataFrame,
    by: str = "pipeline",
    metric: str = "val_accuracy",
    *,
    order: Sequence[Any] | None = None,
    higher_is_better: bool = True,
) -> tuple[Any, pd.DataFrame]:
    """Pick the candidate with the best mean **validation** score.

    Honest model selection: the MixNet reference chose α, latent size and W
    from tables of *test* (sessions 4–5 / held-out subject) performance; here the choice uses the
    validation part of each fold only. Test metrics are refused.

    Parameters
    ----------
    df : DataFrame
        Records of the candidates (all subjects × folds × seeds).
    by : str
        Column naming the candidate (default ``"pipeline"``).
    metric : str
        Validation column (default ``"val_accuracy"``, mean over all subject × fold rows).
    order : sequence, optional
        Candidate order; ties go to the earliest (default: order of appearance).
    higher_is_better : bool
        Direction of ``metric``.

    Returns
    -------
    best, table
        The chosen value of ``by`` and a table of mean/SD/n of ``metric`` per candidate.
    """
    if metric in TEST_METRICS or not metric.startswith("val_"):
        raise ValueError(f"refusing to select on {metric!r}: hyper-parameters are chosen on "
                         "validation folds only (use a val_* column such as 'val_accuracy').")
    _check_columns(df, [by, metric])
    if df[metric].isna().all():
        raise ValueError(f"column {metric!r} is empty; the protocol had no validation split")
    order = list(order) if order is not None else list(dict.fromkeys(df[by]))
    g = df.groupby(by, sort=False)[metric]
    table = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()})
    table = table.reindex([o for o in order if o in table.index])
    values = table["mean"].to_numpy()
    best_pos = int(np.nanargmax(values) if higher_is_better else np.nanargmin(values))
    table["selected"] = False
    table.iloc[best_pos, table.columns.get_loc("selected")] = True
    return table.index[best_pos], table
