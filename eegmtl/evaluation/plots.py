"""Figures drawn from result records and training histories (matplotlib, Agg backend).

Every function builds a new :class:`matplotlib.figure.Figure` (no pyplot state, so they work
headless and in parallel), optionally saves it to ``path`` and returns it. For MOABB's own figures
(``score_plot``, ``paired_plot``, ``meta_analysis_plot``) pass
:func:`eegmtl.evaluation.tables.to_moabb` output to ``moabb.analysis.plotting``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from eegmtl._io import atomic_open
from eegmtl.evaluation.tables import signed

__all__ = [
    "confusion_matrix_plot",
    "paired_comparison_plot",
    "paired_differences_plot",
    "save_figure",
    "subject_scores_plot",
    "task_weights_plot",
    "variant_pairs_plot",
]


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120,
                bbox_inches: str | None = "tight") -> Path:
    """Write ``fig`` to ``path`` atomically, in the format its suffix names (``.png``, ``.pdf``...).

    The figure goes to a per-process temporary file that then replaces ``path``
    (:func:`eegmtl._io.atomic_open`), so a reader, or another process redrawing the same figure,
    never sees half a file, and an interrupted save leaves the old figure in place.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"{path} has no suffix; name the format, e.g. {path.name}.png")
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches=bbox_inches)
    return path


def _save(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _need(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"records lack column(s) {missing}; available: {list(df.columns)}")


def subject_scores_plot(
    df: pd.DataFrame,
    metric: str = "accuracy",
    *,
    pipelines: Sequence[str] | None = None,
    protocol: str | None = None,
    chance: float | None = 0.5,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Per-subject score of each pipeline: points (mean over folds and seeds) with the
    fold-to-fold SD as error bars, and the overall mean per pipeline in the legend."""
    _need(df, ["pipeline", "subject", metric])
    data = df if protocol is None else df[df["protocol"] == protocol]
    pipelines = list(pipelines) if pipelines is not None else list(dict.fromkeys(data["pipeline"]))
    data = data[data["pipeline"].isin(pipelines)]
    if data.empty:
        raise ValueError("no records to plot")
    subjects = sorted(data["subject"].unique())
    fig = Figure(figsize=(max(6.0, 0.8 * len(subjects) + 2), 4.0))
    ax = fig.add_subplot(111)
    width = 0.8 / max(1, len(pipelines))
    x = np.arange(len(subjects), dtype=float)
    for i, pipe in enumerate(pipelines):
        g = data[data["pipeline"] == pipe].groupby("subject")[metric]
        mean = g.mean().reindex(subjects)
        sd = g.std(ddof=1).reindex(subjects).fillna(0.0)
        ax.errorbar(x + (i - (len(pipelines) - 1) / 2) * width, mean.to_numpy(),
                    yerr=sd.to_numpy(), fmt="o", capsize=2,
                    label=f"{pipe} ({data.loc[data['pipeline'] == pipe, metric].mean():.3f})")
    if chance is not None:
        ax.axhline(chance, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, [f"S{s}" for s in subjects])
    ax.set_xlabel("subject")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per subject" + (f" ({protocol})" if protocol else ""))
    ax.legend(fontsize="small", loc="best")
    return _save(fig, path)


def paired_comparison_plot(
    df: pd.DataFrame,
    pipeline_a: str,
    pipeline_b: str,
    metric: str = "accuracy",
    *,
    protocol: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Scatter of ``pipeline_b`` (y) against ``pipeline_a`` (x), one point per subject (mean
    over folds and seeds), with the diagonal; points above it favour ``pipeline_b``."""
    _need(df, ["pipeline", "subject", metric])
    data = df if protocol is None else df[df["protocol"] == protocol]
    tab = data.pivot_table(index="subject", columns="pipeline", values=metric, aggfunc="mean")
    for p in (pipeline_a, pipeline_b):
        if p not in tab.columns:
            raise ValueError(f"pipeline {p!r} not in records ({list(tab.columns)})")
    tab = tab[[pipeline_a, pipeline_b]].dropna()
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot(111)
    lo = float(np.nanmin(tab.to_numpy())) - 0.02
    hi = float(np.nanmax(tab.to_numpy())) + 0.02
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.scatter(tab[pipeline_a], tab[pipeline_b], zorder=3)
    for s, row in tab.iterrows():
        ax.annotate(f"S{s}", (row[pipeline_a], row[pipeline_b]), fontsize="x-small",
                    xytext=(3, 3), textcoords="offset points")
    wins = int((tab[pipeline_b] > tab[pipeline_a]).sum())
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"{pipeline_a} {metric}")
    ax.set_ylabel(f"{pipeline_b} {metric}")
    ax.set_title(f"{pipeline_b} better on {wins}/{len(tab)} subjects")
    return _save(fig, path)


def paired_differences_plot(
    df: pd.DataFrame,
    reference: str,
    metric: str = "accuracy",
    *,
    protocol: str | None = None,
    margin: float | None = 0.02,
    alpha: float = 0.05,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """``reference`` against every other pipeline at a glance: one row per pipeline, its
    per-subject differences ``reference - pipeline`` (points, in percentage points of
    ``metric``) and their mean (diamond), with the Wilcoxon p-value and the subjects where
    ``reference`` is better written at the right (:func:`eegmtl.evaluation.stats.paired_tests`,
    the same matched runs and per-subject means).

    Rows are sorted by mean difference, the closest competitor on top. The mean is drawn
    filled when it is at least ``margin`` (default 2 points; dashed line) with p < ``alpha``
    (a win by the margin, significant), hollow otherwise.
    """
    from eegmtl.evaluation.stats import paired_differences, paired_tests

    _need(df, ["pipeline", "subject", metric])
    diffs = paired_differences(df, reference, metric, protocol=protocol)
    tests = paired_tests(df, reference, metric, protocol=protocol)
    tests = tests[tests["n_subjects"] > 0].sort_values("mean_difference", kind="stable")
    if tests.empty:
        raise ValueError(f"no pipeline shares a subject, fold and seed with {reference!r}")
    order = list(tests["pipeline"])
    fig = Figure(figsize=(8.0, 1.2 + 0.32 * len(order)))
    ax = fig.add_subplot(111)
    rng = np.random.default_rng(0)  # vertical jitter of the subject points only
    for y, row in enumerate(tests.itertuples()):
        d = 100.0 * diffs.loc[diffs["pipeline"] == row.pipeline, "difference"].to_numpy()
        ax.scatter(d, y + rng.uniform(-0.18, 0.18, len(d)), s=9, color="0.6", zorder=2)
        win = (margin is not None and row.mean_difference >= margin and row.p == row.p
               and row.p < alpha)
        ax.scatter([100.0 * row.mean_difference], [y], marker="D", s=36, zorder=3,
                   color="C2" if win else "white", edgecolors="C2" if win else "k")
        p = "p –" if row.p != row.p else f"p {row.p:.3f}"
        ax.annotate(f"{signed(row.mean_difference)}  {p}  {row.wins}/{row.n_subjects}",
                    (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize="x-small")
    # short column header: the reference's name is in the title, which a long header overlapped
    ax.annotate("mean  p  better on", (1.0, 1.0), xycoords="axes fraction",
                xytext=(4, 4), textcoords="offset points", fontsize="x-small", va="bottom")
    ax.axvline(0.0, color="k", lw=0.8)
    if margin is not None:
        ax.axvline(100.0 * margin, color="C2", lw=0.8, ls="--")
    ax.set_yticks(range(len(order)), order, fontsize="small")
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlabel(f"{reference} minus pipeline, {metric} (percentage points; points: subjects)")
    height = fig.get_figheight()
    fig.suptitle(f"{reference} against every other pipeline (better on: subjects where it is "
                 "better)", fontsize="medium", y=1.0 - 0.08 / height)
    fig.subplots_adjust(left=0.32, right=0.80, top=1.0 - 0.55 / height)
    return _save(fig, path)


def task_weights_plot(
    history: pd.DataFrame,
    *,
    x: str = "epoch",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Task-weight trajectories from a training history with ``weight_<task>`` columns.

    Parameters
    ----------
    history : DataFrame
        One row per epoch or step, with column ``x`` (``"epoch"`` or ``"step"``) and one
        ``weight_<task>`` column per task (e.g. MixNet's ``weight_recon``, ``weight_triplet``,
        ``weight_ce``). Rows with the same ``x`` are averaged.
    x : str
        Abscissa column.
    """
    cols = [c for c in history.columns if re.match(r"^weight_.+", str(c))]
    if not cols:
        raise ValueError(f"history has no weight_<task> columns; columns: {list(history.columns)}")
    _need(history, [x])
    data = history.groupby(x)[cols].mean()
    fig = Figure(figsize=(6.0, 3.5))
    ax = fig.add_subplot(111)
    for c in cols:
        ax.plot(data.index.to_numpy(), data[c].to_numpy(), label=c[len("weight_"):])
    ax.set_xlabel(x)
    ax.set_ylabel("task weight")
    ax.legend(fontsize="small")
    return _save(fig, path)


def confusion_matrix_plot(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence[Any] | None = None,
    normalize: str | None = "true",
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), normalised per true class by
    default (``normalize`` as :func:`sklearn.metrics.confusion_matrix`)."""
    from sklearn.metrics import confusion_matrix

    labels = list(labels) if labels is not None else sorted(set(np.asarray(y_true).tolist())
                                                             | set(np.asarray(y_pred).tolist()))
    cm = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    fig = Figure(figsize=(1.2 * len(labels) + 2.0, 1.2 * len(labels) + 1.5))
    ax = fig.add_subplot(111)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}",
                    ha="center", va="center",
                    color="white" if cm[i, j] > (0.5 if normalize else cm.max() / 2) else "black")
    ax.set_xticks(range(len(labels)), [str(v) for v in labels])
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def variant_pairs_plot(
    df: pd.DataFrame,
    metric: str = "accuracy",
    *,
    suffix: str = "+EA",
    panel: str | None = None,
    chance: float | None = 0.5,
    label: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Each method beside its ``suffix`` variant (e.g. ``CSP+LDA`` and ``CSP+LDA+EA``): one line
    per subject from the method's score to the variant's (mean over the subject's other rows:
    sessions, folds, seeds), the means as black bars, one panel per value of ``panel`` (e.g.
    MOABB's ``cs_mode``). A method without its variant in a panel is drawn alone.

    Parameters
    ----------
    df : DataFrame
        Records with ``pipeline``, ``subject``, ``metric`` (and ``panel`` when given).
    metric : str
        Score column, in [0, 1]; drawn in %.
    suffix : str
        What the variant's name adds to the method's.
    panel : str, optional
        Column whose values get one panel each, in order of appearance.
    label : str, optional
        The score's name on the axis (default ``metric``).
    """
    _need(df, ["pipeline", "subject", metric, *([panel] if panel else [])])
    data = df.dropna(subset=[metric])
    if data.empty:
        raise ValueError(f"no records with a {metric!r} score to plot")
    groups = list(dict.fromkeys(data[panel])) if panel else [None]
    names = list(dict.fromkeys(data["pipeline"]))
    methods = [n for n in names if not (n.endswith(suffix) and n[: -len(suffix)] in names)]
    fig = Figure(figsize=(0.9 + 1.2 * len(methods) * len(groups), 4.0))
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for ax, group in zip(axes, groups):
        part = data if group is None else data[data[panel] == group]
        scores = 100.0 * part.groupby(["pipeline", "subject"])[metric].mean()
        present = set(part["pipeline"])
        ticks, labels = [], []
        for i, method in enumerate(methods):
            pair = [n for n in (method, method + suffix) if n in present]
            if not pair:
                continue
            x = [2.5 * i + k for k in range(len(pair))]
            table = pd.concat([scores.loc[n] for n in pair], axis=1).dropna()
            for row in table.to_numpy():
                ax.plot(x, row, color="0.65", lw=0.8, marker="o", ms=3, zorder=2)
            ax.hlines(table.mean().to_numpy(), [v - 0.3 for v in x], [v + 0.3 for v in x],
                      color="k", lw=2.0, zorder=3)
            ticks += x
            labels += [method] + ([suffix] if len(pair) > 1 else [])
        if chance is not None:
            ax.axhline(100.0 * chance, color="grey", lw=0.8, ls="--")
        ax.set_xticks(ticks, labels, rotation=45, ha="right", fontsize="small")
        if group is not None:
            ax.set_title(str(group), fontsize="small")
    axes[0].set_ylabel(f"{label or metric} (%); lines: subjects, bars: means")
    return _save(fig, path)
