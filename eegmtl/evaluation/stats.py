"""Paired statistics between pipelines, on the runs both pipelines have.

The test itself is MOABB's (:func:`moabb.analysis.meta_analysis.compute_pvals_wilcoxon`,
Wilcoxon signed-rank over subjects); what is ours is the run matching: a pipeline run on fold 1
only is compared with the reference's fold-1 fits, not with its 5-fold mean.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from eegmtl.evaluation.ensemble import ENSEMBLE_FOLD, ENSEMBLE_SEED
from eegmtl.evaluation.tables import per_subject

__all__ = ["PAIRED_COLUMNS", "friedman_test", "holm", "matched_runs", "paired_differences",
           "paired_tests", "shared_runs"]

#: decimals the per-subject differences are rounded to before the test and the win count:
#: accuracies are multiples of 1/n_trials, so differences that are equal (or zero) in exact
#: arithmetic can differ in the last bits of a float, which would decide whether the test
#: treats them as tied (or the subject as a win); distinct values differ by far more
DECIMALS = 9

#: Columns of :func:`paired_tests`.
PAIRED_COLUMNS = ("pipeline", "n_subjects", "n_runs", "reference_mean", "pipeline_mean",
                  "mean_difference", "wins", "p", "p_holm")


def matched_runs(
    data: pd.DataFrame, reference: str, other: str,
    match: Sequence[str] = ("subject", "fold", "seed"),
) -> tuple[pd.DataFrame, int]:
    """Rows of ``reference`` and ``other`` restricted to the runs (``match`` values; those
    columns that exist) both have, and the number of such runs.

    A fold-model ensemble (every row at ``fold`` = :data:`~eegmtl.evaluation.ensemble.
    ENSEMBLE_FOLD`, one row per subject and seed) set against single-model fits is matched
    without ``fold``: its subject × seed cell pairs with all of the other pipeline's folds of
    that subject and seed, which :func:`paired_tests` then averages per subject. Likewise a
    seed ensemble (every row at ``seed`` = :data:`~eegmtl.evaluation.ensemble.ENSEMBLE_SEED`)
    is matched without ``seed``."""
    keys = [c for c in match if c in data.columns]
    ref_rows = data[data["pipeline"] == reference]
    other_rows = data[data["pipeline"] == other]
    for column, sentinel in (("fold", ENSEMBLE_FOLD), ("seed", ENSEMBLE_SEED)):
        if column in keys:
            pooled = [len(r) > 0 and bool((r[column] == sentinel).all())
                      for r in (ref_rows, other_rows)]
            if pooled[0] != pooled[1]:
                keys.remove(column)
    return shared_runs(data, [reference, other], keys)


def shared_runs(data: pd.DataFrame, pipelines: Sequence[str],
                keys: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Rows of ``pipelines`` (in that order) at the run cells (``keys`` values) that *every*
    one of them has, and the number of such cells."""
    if not pipelines:
        raise ValueError("shared_runs needs at least one pipeline")
    parts = [data[data["pipeline"] == name] for name in pipelines]
    cells = parts[0][list(keys)].drop_duplicates()
    for part in parts[1:]:
        cells = cells.merge(part[list(keys)].drop_duplicates())
    return pd.concat(parts).merge(cells, on=list(keys)), len(cells)


def _two_sided_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p from MOABB's one-sided p-value matrix."""
    from moabb.analysis.meta_analysis import compute_pvals_wilcoxon

    one_sided = compute_pvals_wilcoxon(pd.DataFrame({"a": a, "b": b}), order=["a", "b"])
    return float(min(1.0, 2.0 * min(one_sided[0, 1], one_sided[1, 0])))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, Scand. J. Stat. 6: 65-70): the i-th
    smallest of m p-values times (m - i + 1), made monotone and capped at 1, so that rejecting
    where the adjusted p < alpha controls the family-wise error rate at alpha. NaN entries
    stay NaN and do not count in m."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        m = len(order)
        adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
        out[order] = np.minimum(adjusted, 1.0)
    return out


def friedman_test(df: pd.DataFrame, pipelines: Sequence[str], metric: str = "accuracy", *,
                  protocol: str | None = None,
                  match: Sequence[str] = ("subject", "fold", "seed")) -> dict[str, float]:
    """Friedman test of ``pipelines`` (at least 3) with subjects as blocks.

    Each pipeline is reduced to one value per subject, the mean of ``metric`` over the runs
    (``match`` cells) *every* listed pipeline has, rounded to :data:`DECIMALS` decimals (equal
    means tie); :func:`scipy.stats.friedmanchisquare` on the subjects all of them have. Returns
    ``statistic``, ``p``, ``n_subjects`` and ``n_runs`` (shared cells).
    """
    from scipy.stats import friedmanchisquare

    pipelines = list(dict.fromkeys(pipelines))
    if len(pipelines) < 3:
        raise ValueError(f"the Friedman test needs at least 3 pipelines, got {pipelines}")
    data = df if protocol is None else df[df["protocol"] == protocol]
    absent = [p for p in pipelines if p not in set(data["pipeline"])]
    if absent:
        raise ValueError(f"pipelines {absent} are not in the records")
    shared, n_cells = shared_runs(data, pipelines, [c for c in match if c in data.columns])
    tab = (per_subject(shared, metric, by=("pipeline",)).reindex(pipelines).T.dropna()
           .round(DECIMALS))
    if len(tab) < 2:
        raise ValueError(f"{len(tab)} subject(s) shared by {pipelines}: too few for a test")
    res = friedmanchisquare(*(tab[p].to_numpy() for p in pipelines))
    return {"statistic": float(res.statistic), "p": float(res.pvalue),
            "n_subjects": int(len(tab)), "n_runs": int(n_cells)}


def paired_tests(
    df: pd.DataFrame, reference: str, metric: str = "accuracy", *, protocol: str | None = None,
    match: tuple[str, ...] = ("subject", "fold", "seed"),
) -> pd.DataFrame:
    """Wilcoxon signed-rank test of ``reference`` against every other pipeline.

    Rows are matched with :func:`matched_runs`; each pipeline is then reduced to one value per
    subject (mean of ``metric`` over the matched folds and seeds). Two-sided p-value (twice the
    smaller one-sided p of :func:`moabb.analysis.meta_analysis.compute_pvals_wilcoxon`, which
    is :func:`scipy.stats.wilcoxon`'s with its defaults: the exact null distribution for small
    samples without ties, an exact sign-flip permutation test with tied or zero differences,
    zero differences dropped from the test (``zero_method="wilcox"``) but counted in
    ``n_subjects``); the per-subject differences are rounded to :data:`DECIMALS` decimals first,
    so that equal differences tie and zero ones are zero. ``p`` is NaN with fewer than 5
    paired subjects or when all differences are zero.

    Returns
    -------
    DataFrame
        One row per other pipeline: ``pipeline``, ``n_subjects``, ``n_runs`` (matched
        subject × fold × seed cells), ``reference_mean``, ``pipeline_mean``,
        ``mean_difference`` (reference - pipeline), ``wins`` (subjects where the reference is
        better), ``p``, ``p_holm`` (:func:`holm` over this call's comparisons: the family of
        tests against ``reference``).
    """
    rows = []
    nan = float("nan")
    for other, pair, n_runs in _subject_pairs(df, reference, metric, protocol, match):
        a, b = pair[reference].to_numpy(), pair[other].to_numpy()
        diff = np.round(a - b, DECIMALS)
        # the differences themselves go to the test (against 0), so that the test sees them
        # rounded, not recomputed from a and b
        p = (_two_sided_p(diff, np.zeros_like(diff)) if len(diff) >= 5 and np.any(diff != 0)
             else nan)
        rows.append({"pipeline": other, "n_subjects": len(diff), "n_runs": n_runs,
                     "reference_mean": float(a.mean()) if len(a) else nan,
                     "pipeline_mean": float(b.mean()) if len(b) else nan,
                     "mean_difference": float(diff.mean()) if len(diff) else nan,
                     "wins": int((diff > 0).sum()), "p": p})
    out = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))
    out["p_holm"] = holm(out["p"].to_numpy()) if len(out) else []
    return out


def paired_differences(
    df: pd.DataFrame, reference: str, metric: str = "accuracy", *, protocol: str | None = None,
    match: tuple[str, ...] = ("subject", "fold", "seed"),
) -> pd.DataFrame:
    """Per-subject differences ``reference - pipeline`` behind :func:`paired_tests`.

    The same matching and per-subject means as :func:`paired_tests` (the units of its
    Wilcoxon test), one row per other pipeline and subject: ``pipeline``, ``subject``,
    ``reference_score``, ``pipeline_score``, ``difference``.
    """
    frames = [pd.DataFrame({"pipeline": other, "subject": pair.index.to_numpy(),
                            "reference_score": pair[reference].to_numpy(),
                            "pipeline_score": pair[other].to_numpy()})
              for other, pair, _ in _subject_pairs(df, reference, metric, protocol, match)]
    cols = ["pipeline", "subject", "reference_score", "pipeline_score"]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    out["difference"] = (out["reference_score"] - out["pipeline_score"]).round(DECIMALS)
    return out


def _subject_pairs(df: pd.DataFrame, reference: str, metric: str, protocol: str | None,
                   match: tuple[str, ...]) -> Iterator[tuple[str, pd.DataFrame, int]]:
    """(other pipeline, per-subject means of both on their matched runs, matched runs) for
    every pipeline of ``df`` other than ``reference``."""
    data = df if protocol is None else df[df["protocol"] == protocol]
    pipes = list(dict.fromkeys(data["pipeline"]))
    if reference not in pipes:
        raise ValueError(f"reference pipeline {reference!r} not in the records ({pipes})")
    for other in pipes:
        if other == reference:
            continue
        matched, n_runs = matched_runs(data, reference, other, match)
        tab = per_subject(matched, metric, by=("pipeline",)).reindex([reference, other])
        yield other, tab.T.dropna(), n_runs
