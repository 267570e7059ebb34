"""Ensembles of a subject's models: class probabilities averaged on the test trials.

In the subject-dependent protocol (:func:`eegmtl.evaluation.runner.run_protocol`) the K folds of
a subject train K models on different train/validation splits of sessions 1-3 and score each on
the same test sessions 4-5. With ``predictions_dir`` the runner stores every fit's test
predictions, one file per fit (:mod:`eegmtl.evaluation.predictions`: names, columns, and
:func:`~eegmtl.evaluation.predictions.load_predictions` to read them back): one row per test
trial with the member's ``predict_proba`` per class (``score_<class>``).

This module combines the K members of one subject × pipeline by soft voting: by default the
fold models of one seed (``over="fold"``), or the seeds of one fold (``over="seed"``, the
"average of several runs" of the same split), or every fold and seed (``over="fold+seed"``).
It is the averaging ensemble of Lakshminarayanan et al. (2017), "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles" (NeurIPS; Sec. 2.4):

    p̄(c | x_i) = (1 / K) Σ_k p_k(c | x_i),        ŷ_i = argmax_c p̄(c | x_i),

(ties go to the first class, as :func:`numpy.argmax`), and recomputes the metrics from
``(y_true, ŷ, p̄)`` with :func:`eegmtl.evaluation.scoring.score_predictions`, the function
the runner scores single fits with. Before averaging it checks that the members hold the same
test trials with the same labels, the same class columns, valid probabilities, one fit per fold
and the expected folds, and raises a :class:`ValueError` that names the problem otherwise.

The ensemble's record (:func:`ensemble_records`) follows the record schema of
:mod:`eegmtl.evaluation.records` with pipeline ``"<pipeline>+ens<K>"`` (fold models),
``"<pipeline>+seeds<S>"`` (seeds) or ``"<pipeline>+ens<K>+seeds<S>"`` (both). Over folds,
``fold`` = :data:`ENSEMBLE_FOLD` (0: no single fold, the model uses all of sessions 1-3 through
its members, as the competition-split records that train on sessions 1-3 at once); over seeds,
``seed`` = :data:`ENSEMBLE_SEED` (-1: no single seed).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from eegmtl._io import config_hash, stable_json
from eegmtl.evaluation.predictions import load_predictions, score_classes, score_columns
from eegmtl.evaluation.records import KEY_COLUMNS, load_records, record_key
from eegmtl.evaluation.scoring import score_predictions

__all__ = [
    "ENSEMBLE_FOLD",
    "ENSEMBLE_SEED",
    "MEMBER_AXES",
    "average_members",
    "ensemble_name",
    "ensemble_records",
    "load_predictions",
    "score_columns",
]

#: ``fold`` of an ensemble record over folds: no single fold (the members cover every fold).
ENSEMBLE_FOLD = 0
#: ``seed`` of an ensemble record over seeds: no single seed (the members cover every seed).
ENSEMBLE_SEED = -1

#: What the members of an ensemble differ in (``over``): the record columns that vary.
MEMBER_AXES: dict[str, tuple[str, ...]] = {
    "fold": ("fold",), "seed": ("seed",), "fold+seed": ("fold", "seed")}
#: Columns that identify one fit; an ensemble is identified by those of them that are not in
#: its ``MEMBER_AXES`` (over folds: protocol, pipeline, subject, seed).
_RUN_COLUMNS: tuple[str, ...] = ("protocol", "pipeline", "subject", "fold", "seed")

#: Largest |Σ_c p_ic - 1| accepted as a probability row (float32 scores are stored).
PROBA_TOL = 1e-4


def ensemble_name(pipeline: str, n_members: int | None, n_seeds: int | None = None) -> str:
    """Pipeline name of an ensemble of fits of ``pipeline``: ``"<pipeline>+ens<K>"`` for
    ``n_members`` = K fold models, ``"<pipeline>+seeds<S>"`` for ``n_seeds`` = S seeds of one
    fold (``n_members=None``), ``"<pipeline>+ens<K>+seeds<S>"`` for both."""
    if n_members is None and n_seeds is None:
        raise ValueError("an ensemble has fold members, seed members or both.")
    return (pipeline + ("" if n_members is None else f"+ens{int(n_members)}")
            + ("" if n_seeds is None else f"+seeds{int(n_seeds)}"))


def _axes(over: str) -> tuple[str, ...]:
    if over not in MEMBER_AXES:
        raise ValueError(f"over must be one of {sorted(MEMBER_AXES)}, got {over!r}.")
    return MEMBER_AXES[over]


def _group_columns(axes: Sequence[str]) -> list[str]:
    return [c for c in _RUN_COLUMNS if c not in axes]


def _describe(group: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items())


def _label(member: pd.DataFrame, axes: Sequence[str]) -> str:
    """``"fold 2"``, ``"seed 1"`` or ``"fold 2, seed 1"``: which member this is."""
    return ", ".join(f"{a} {int(member[a].iloc[0])}" for a in axes)


def _wanted(name: str, present: set[int], wanted: Sequence[int] | None, group: dict[str, object],
            flag: str) -> list[int]:
    """The member values of one axis: ``wanted`` (each must be present) or all present."""
    if wanted is None:
        return sorted(present)
    missing = sorted(set(map(int, wanted)) - present)
    if missing:
        raise ValueError(
            f"{_describe(group)}: missing {name}(s) {missing} (found {sorted(present)}); the "
            f"predictions folder lacks their *_predictions.csv files. Rerun them with "
            f"--predictions-dir, or pass the {name}s you have ({flag}).")
    return sorted(set(map(int, wanted)))


def _member_key(key: object) -> tuple[int, ...]:
    """A groupby key over the member axes as a tuple of ints (``(2,)``, ``(2, 1)``)."""
    return tuple(int(v) for v in (key if isinstance(key, tuple) else (key,)))


def _members(rows: pd.DataFrame, group: dict[str, object], axes: Sequence[str],
             folds: Sequence[int] | None, seeds: Sequence[int] | None) -> list[pd.DataFrame]:
    """The member tables of one group sorted by ``axes`` (one per fold, seed, or fold × seed),
    after the checks: one fit per member, every requested fold / seed present."""
    hashes = rows.groupby(list(axes))["config_hash"].unique()
    twice = {_member_key(k): list(h) for k, h in hashes.items() if len(h) > 1}
    if twice:
        raise ValueError(f"{_describe(group)}: several fits per {'/'.join(axes)} "
                         f"({'/'.join(axes)}: config hashes {twice}); keep one configuration's "
                         "files in the predictions folder")
    values = {a: set(map(int, rows[a])) for a in axes}
    keep = {a: _wanted(a, values[a], w, group, f"--{a}s")
            for a, w in (("fold", folds), ("seed", seeds)) if a in axes}
    sel = rows
    for a, vals in keep.items():
        sel = sel[sel[a].isin(vals)]
    parts = {_member_key(k): g for k, g in sel.groupby(list(axes), sort=True)}
    n_full = int(np.prod([len(v) for v in keep.values()]))
    if len(parts) != n_full:
        lack = sorted(set(itertools.product(*keep.values())) - set(parts))
        raise ValueError(f"{_describe(group)}: no predictions for {'/'.join(axes)} {lack}; an "
                         "ensemble over folds and seeds needs every fold of every seed")
    return [_with_trial_id(parts[k].sort_values("trial", kind="stable")) for k in sorted(parts)]


def _with_trial_id(member: pd.DataFrame) -> pd.DataFrame:
    """``member`` with ``trial_id``: the trial's (subject, session, position in the session)
    when the files carry ``trial_subject`` / ``trial_session``, else its ``trial`` row.

    ``trial`` is the trial's row in the data the run loaded, so it shifts with the subjects a
    run loaded (``--subjects 3..9`` numbers subject 3's trials from 0); the position within
    the recording does not, and a test session is scored whole by every fold model."""
    meta = ["trial_subject", "trial_session"]
    if not set(meta) <= set(member.columns):
        return member.assign(trial_id=member["trial"].astype(str))
    pos = member.groupby(meta, sort=False).cumcount()
    return member.assign(trial_id=member["trial_subject"].astype(str) + "/"
                         + member["trial_session"].astype(str) + "/" + pos.astype(str))


def _check_aligned(members: list[pd.DataFrame], cols: list[str], group: dict[str, object],
                   axes: Sequence[str]) -> None:
    """Same trials, same labels, valid probabilities in every member."""
    ref = members[0]
    first = _label(ref, axes)
    for m in members:
        this = _label(m, axes)
        if m["trial"].duplicated().any():
            raise ValueError(f"{_describe(group)}, {this}: trial ids repeat in "
                             f"{m['source'].iloc[0]}; one row per test trial is expected")
        if not np.array_equal(m["trial_id"].to_numpy(), ref["trial_id"].to_numpy()):
            a, b = set(ref["trial_id"]), set(m["trial_id"])
            raise ValueError(
                f"{_describe(group)}: the members score different test trials ({first}: "
                f"{len(a)} trials, {this}: {len(b)}; "
                f"{len(a ^ b)} differ, e.g. {sorted(a ^ b)[:5]}); an ensemble needs every "
                "member scored on the same test trials")
        if not np.array_equal(m["y_true"].to_numpy(), ref["y_true"].to_numpy()):
            bad = m["trial"].to_numpy()[m["y_true"].to_numpy() != ref["y_true"].to_numpy()]
            raise ValueError(f"{_describe(group)}, {this}: y_true differs from {first} on "
                             f"trial(s) {bad[:5].tolist()}; the files come from different data")
        p = m[cols].to_numpy(dtype=float)
        if not np.all(np.isfinite(p)) or p.min() < -PROBA_TOL or p.max() > 1 + PROBA_TOL \
                or np.abs(p.sum(axis=1) - 1).max() > PROBA_TOL:
            raise ValueError(f"{_describe(group)}, {this}: the {cols} columns of "
                             f"{m['source'].iloc[0]} are not class probabilities (missing "
                             "values, outside [0, 1], or rows not summing to 1)")


def average_members(
    predictions: pd.DataFrame, *, folds: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None, over: str = "fold",
) -> pd.DataFrame:
    """Average the class probabilities of the members of every ensemble.

    Parameters
    ----------
    predictions : DataFrame
        Rows of per-fit prediction files (:func:`load_predictions`).
    folds, seeds : sequence of int, optional
        The members' folds (``over`` ``"fold"`` / ``"fold+seed"``) and seeds (``"seed"`` /
        ``"fold+seed"``): each must be present (a missing one raises). Default: every one
        found, which must be the same set for all subjects of a pipeline.
    over : {"fold", "seed", "fold+seed"}, default "fold"
        What the members differ in: the fold models of one subject × pipeline × seed, the
        seeds of one subject × pipeline × fold, or both (one ensemble per subject × pipeline).

    Returns
    -------
    DataFrame
        One row per test trial of each ensemble: its group columns (``protocol, pipeline,
        subject`` and ``seed`` or ``fold`` when not averaged over), ``trial``, ``y_true``,
        ``y_pred`` (argmax of the mean), the mean ``score_<class>`` columns, ``n_members``,
        ``folds`` and ``seeds`` (the members', in member order, ``";"``-joined) and
        ``config_hashes`` (likewise).
    """
    axes = _axes(over)
    group_cols = _group_columns(axes)
    cols = score_columns(predictions)
    missing = [c for c in (*_RUN_COLUMNS, "config_hash", "trial", "y_true")
               if c not in predictions.columns]
    if missing:
        raise ValueError(f"prediction rows lack column(s) {missing}; they must be files written "
                         "by the runner's predictions_dir (fold_predictions with a task)")
    if "source" not in predictions.columns:
        predictions = predictions.assign(source="<frame>")
    for axis, wanted in (("fold", folds), ("seed", seeds)):
        if wanted is not None and axis not in axes:
            raise ValueError(
                f"{axis}s={list(wanted)} picks the members of an ensemble over {axis}s, but "
                f"over={over!r} averages over {' and '.join(f'{a}s' for a in axes)}: every "
                f"{axis} gets its own ensemble. Use over='fold+seed' to average over both, or "
                f"leave {axis}s out")
        if axis not in axes or wanted is not None:
            continue
        # per pipeline (and subject, and the axis not averaged over), protocol left out
        sets = predictions.groupby(group_cols[1:])[axis].agg(
            lambda s: tuple(sorted(set(map(int, s)))))
        for pipe, per in sets.groupby(level="pipeline"):
            full = sorted(set().union(*per))
            short = {k[1:]: sorted(set(full) - set(v))
                     for k, v in per.items() if set(v) != set(full)}
            if short:
                raise ValueError(
                    f"pipeline {pipe!r}: some ensembles miss {axis}(s) that others have "
                    f"({short}; missing {axis}s); rerun them with --predictions-dir or pass the "
                    f"{axis}s to ensemble (--{axis}s)")
    out = []
    for key, rows in predictions.groupby(group_cols, sort=True):
        group = dict(zip(group_cols, key))
        members = _members(rows, group, axes, folds, seeds)
        _check_aligned(members, cols, group, axes)
        if any(m[cols].isna().any().any() for m in members):  # class columns differ per file
            raise ValueError(f"{_describe(group)}: the members have different class columns")
        mean = np.mean([m[cols].to_numpy(dtype=float) for m in members], axis=0)
        ref = members[0]
        classes = score_classes(cols, ref["y_true"].to_numpy())
        df = pd.DataFrame(group, index=range(len(ref)))
        df["trial"] = ref["trial"].to_numpy()
        df["y_true"] = ref["y_true"].to_numpy()
        df["y_pred"] = classes[np.argmax(mean, axis=1)]
        df[cols] = mean
        df["n_members"] = len(members)
        df["folds"] = ";".join(str(int(m["fold"].iloc[0])) for m in members)
        df["seeds"] = ";".join(str(int(m["seed"].iloc[0])) for m in members)
        df["config_hashes"] = ";".join(str(m["config_hash"].iloc[0]) for m in members)
        out.append(df)
    return pd.concat(out, ignore_index=True)


def _common(rows: pd.DataFrame, column: str) -> object:
    """The single distinct value of ``rows[column]``, else NaN (also when it is absent)."""
    if column not in rows.columns:
        return float("nan")
    u = rows[column].dropna().unique()
    return u[0] if len(u) == 1 else float("nan")


def _member_rows(records: pd.DataFrame, group: dict[str, object], runs: list[tuple[int, int]],
                 hashes: list[str], member_acc: list[float]) -> pd.DataFrame:
    """The records of the members ``runs`` ((fold, seed) each) of ``group``; each must exist
    and match its predictions."""
    keys = {record_key(k): i for i, k in enumerate(records[list(KEY_COLUMNS)].itertuples(
        index=False, name=None))}
    rows = []
    for (fold, seed), h, acc in zip(runs, hashes, member_acc):
        key = record_key((group["protocol"], group["pipeline"], group["subject"], fold, seed, h))
        if key not in keys:
            raise ValueError(f"no record of member {dict(zip(KEY_COLUMNS, key))} in the member "
                             "records; pass the record file the fits were written to "
                             "(--member-records)")
        row = records.iloc[keys[key]]
        if abs(float(row["accuracy"]) - acc) > 1e-9:
            raise ValueError(f"member {dict(zip(KEY_COLUMNS, key))}: its record's accuracy "
                             f"{row['accuracy']:.6f} differs from its predictions' {acc:.6f}; "
                             "the predictions and records come from different runs")
        rows.append(row)
    return pd.DataFrame(rows)


def ensemble_records(
    predictions: pd.DataFrame, member_records: pd.DataFrame | str | os.PathLike[str] | None = None,
    *, folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
    over: str = "fold", dataset: str | None = None,
) -> pd.DataFrame:
    """One record per ensemble (:func:`average_members`): its test metrics.

    Parameters
    ----------
    predictions : DataFrame
        Rows of per-fit prediction files (:func:`load_predictions`).
    member_records : DataFrame or path, optional
        The records of the member fits (e.g. ``pipelines/results/sd.csv``). With them the
        ensemble's ``time`` and ``n_epochs_trained`` are the sums over the members (the cost
        of training the ensemble), ``samples``, ``session``, ``channels``, ``n_sessions``,
        ``n_classes``, ``versions`` and ``dataset`` the members' common values, the members'
        configuration goes into ``config``, and every member's recorded accuracy must equal
        the one recomputed from its predictions. Without them those columns are NaN.
    folds, seeds, over
        Members to use (see :func:`average_members`).
    dataset : str, optional
        ``dataset`` column when the member records do not give one.

    Returns
    -------
    DataFrame
        Records with pipeline ``"<pipeline>+ens<K>"`` (:func:`ensemble_name`), ``fold`` =
        :data:`ENSEMBLE_FOLD` over folds, ``seed`` = :data:`ENSEMBLE_SEED` over seeds, the
        metrics of :func:`~eegmtl.evaluation.scoring.score_predictions` on the averaged
        probabilities (``score`` = ``roc_auc``), ``config`` (JSON: method, member pipeline,
        folds (and seeds) and config hashes, member config) and its hash; validation columns
        are NaN (over folds each member has its own validation trials, which the others trained
        on). Extra columns: ``n_members`` and ``member_accuracy_mean`` (mean test accuracy of
        the members, from their predictions).
    """
    axes = _axes(over)
    group_cols = _group_columns(axes)
    if member_records is not None and not isinstance(member_records, pd.DataFrame):
        member_records = load_records(member_records)
    cols = score_columns(predictions)
    averaged = average_members(predictions, folds=folds, seeds=seeds, over=over)
    per_group = dict(list(predictions.groupby(group_cols, sort=True)))
    nan = float("nan")
    out = []
    for key, ens in averaged.groupby(group_cols, sort=True):
        group = dict(zip(group_cols, key))
        member_folds = [int(f) for f in ens["folds"].iloc[0].split(";")]
        member_seeds = [int(s) for s in ens["seeds"].iloc[0].split(";")]
        runs = list(zip(member_folds, member_seeds))
        hashes = ens["config_hashes"].iloc[0].split(";")
        rows = per_group[key]
        member_acc = [float((m["y_true"] == m["y_pred"]).mean()) for f, s in runs
                      for m in [rows[(rows["fold"] == f) & (rows["seed"] == s)]]]
        classes = score_classes(cols, ens["y_true"].to_numpy())
        metrics = score_predictions(ens["y_true"].to_numpy(), ens["y_pred"].to_numpy(),
                                    ens[cols].to_numpy(), classes)
        rec = pd.DataFrame() if member_records is None else _member_rows(
            member_records, group, runs, hashes, member_acc)
        member_config = _common(rec, "config")
        if over == "fold":
            config: dict[str, object] = {
                "ensemble": "mean of predict_proba over the fold models (soft voting)",
                "member_pipeline": group["pipeline"], "member_folds": member_folds}
        else:
            config = {"ensemble": "mean of predict_proba over the "
                      + ("seeds" if over == "seed" else "fold models and seeds")
                      + " (soft voting)", "member_pipeline": group["pipeline"],
                      "member_folds": member_folds, "member_seeds": member_seeds}
        config.update({
            "member_config_hashes": hashes,
            "member_config": json.loads(member_config) if isinstance(member_config, str) else None,
        })
        alignment = (config["member_config"] or {}).get("alignment", "none")
        if alignment not in (None, "none"):
            # top-level key, so that tag_alignment names the ensemble "<pipeline>+ens<K>+EA"
            config["alignment"] = alignment
        k = len(runs)
        n_folds = len(set(member_folds)) if "fold" in axes else None
        n_seeds = len(set(member_seeds)) if "seed" in axes else None
        member_dataset = _common(rec, "dataset")
        out.append({
            "dataset": member_dataset if isinstance(member_dataset, str) else dataset,
            "protocol": group["protocol"],
            "pipeline": ensemble_name(group["pipeline"], n_folds, n_seeds),
            "subject": int(group["subject"]),
            "fold": ENSEMBLE_FOLD if "fold" in axes else int(group["fold"]),
            "seed": ENSEMBLE_SEED if "seed" in axes else int(group["seed"]),
            **metrics, "score": metrics["roc_auc"],
            "samples": _common(rec, "samples"),
            "time": float(rec["time"].sum()) if len(rec) else nan,
            "n_epochs_trained": float(rec["n_epochs_trained"].sum()) if len(rec) else nan,
            "config_hash": config_hash(config), "config": stable_json(config),
            "versions": _common(rec, "versions"), "machine": _common(rec, "machine"),
            "samples_test": len(ens),
            "session": _common(rec, "session"),
            "channels": _common(rec, "channels"), "n_sessions": _common(rec, "n_sessions"),
            "n_classes": _common(rec, "n_classes") if len(rec) else len(cols),
            "samples_val": nan, "val_accuracy": nan, "val_f1_macro": nan,
            "n_members": k, "member_accuracy_mean": float(np.mean(member_acc)),
        })
    return pd.DataFrame(out)
