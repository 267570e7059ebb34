"""Ensembles of the fold models of a subject: class probabilities averaged on the test trials.

In the subject-dependent protocol (:func:`eegmtl.evaluation.runner.run_protocol`) the K folds of
a subject train K models on different train/validation splits of sessions 1-3 and score each on
the same test sessions 4-5. With ``predictions_dir`` the runner stores every fit's test
predictions (:func:`eegmtl.evaluation.scoring.fold_predictions`), one file per fit named
``<protocol>_<pipeline>_S<subject>_F<fold>_seed<seed>_<config_hash>_predictions.csv``
(characters outside ``[A-Za-z0-9_.+-]`` replaced by ``_``) with one row per test trial: the
fit's key columns, ``trial`` (the trial's row in the loaded data: its id), ``y_true``,
``y_pred`` and one ``score_<class>`` column per class, the member's ``predict_proba`` for that
class in ``classes_`` order (each row sums to 1).

This module combines the K members of one subject × pipeline × seed by soft voting, the
averaging ensemble of Lakshminarayanan et al. (2017), "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles" (NeurIPS; Sec. 2.4):

    p̄(c | x_i) = (1 / K) Σ_k p_k(c | x_i),        ŷ_i = argmax_c p̄(c | x_i),

(ties go to the first class, as :func:`numpy.argmax`), and recomputes the metrics from
``(y_true, ŷ, p̄)`` with :func:`eegmtl.evaluation.scoring.score_predictions`, the function
the runner scores single fits with. Before averaging it checks that the members hold the same
test trials with the same labels, the same class columns, valid probabilities, one fit per fold
and the expected folds, and raises a :class:`ValueError` that names the problem otherwise.

The ensemble's record (:func:`ensemble_records`) follows the record schema of
:mod:`eegmtl.evaluation.records` with pipeline ``"<pipeline>+ens<K>"`` and ``fold`` =
:data:`ENSEMBLE_FOLD` (0: no single fold, the model uses all of sessions 1-3 through its members,
as the competition-split records that train on sessions 1-3 at once).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from eegmtl._io import config_hash, stable_json
from eegmtl.evaluation.records import KEY_COLUMNS, load_records, record_key
from eegmtl.evaluation.scoring import score_predictions

__all__ = [
    "ENSEMBLE_FOLD",
    "average_members",
    "ensemble_name",
    "ensemble_records",
    "load_predictions",
    "score_columns",
]

#: ``fold`` of an ensemble record: no single fold (the members cover every fold).
ENSEMBLE_FOLD = 0

#: Columns that identify one ensemble: its members differ only in ``fold`` (and the hash).
GROUP_COLUMNS: tuple[str, ...] = ("protocol", "pipeline", "subject", "seed")

#: Largest |Σ_c p_ic - 1| accepted as a probability row (float32 scores are stored).
PROBA_TOL = 1e-4

_SCORE_PREFIX = "score_"


def ensemble_name(pipeline: str, n_members: int) -> str:
    """Pipeline name of an ensemble of ``n_members`` fits of ``pipeline``:
    ``"<pipeline>+ens<K>"``."""
    return f"{pipeline}+ens{int(n_members)}"


def _file_token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def load_predictions(
    predictions_dir: str | os.PathLike[str], pipelines: Sequence[str], *,
    protocol: str | None = None,
) -> pd.DataFrame:
    """Read the per-fit prediction files of ``pipelines`` from ``predictions_dir``.

    Parameters
    ----------
    predictions_dir : path
        Folder the runner wrote with ``predictions_dir`` (``eegmtl sd --predictions-dir``).
    pipelines : sequence of str
        Pipeline names as in the records (e.g. ``"MixNet[val-tuned]"``).
    protocol : str, optional
        Keep only this protocol (``"subject_dependent"``); default: every protocol found.

    Returns
    -------
    DataFrame
        The rows of every matching file, with ``source`` (the file name) added.
    """
    folder = Path(predictions_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"predictions folder {folder} does not exist; write one with "
                                "`eegmtl sd --methods ... --predictions-dir DIR`")
    frames = []
    for name in dict.fromkeys(pipelines):
        found = []
        for path in sorted(folder.glob(f"*_{_file_token(name)}_S*_F*_seed*_predictions.csv")):
            df = pd.read_csv(path, dtype={"config_hash": str})
            df = df[df["pipeline"] == name] if "pipeline" in df.columns else df.iloc[:0]
            if protocol is not None:
                df = df[df["protocol"] == protocol]
            if len(df):
                found.append(df.assign(source=path.name))
        if not found:
            known = sorted({p.name.split("_S")[0] for p in folder.glob("*_predictions.csv")})
            raise FileNotFoundError(
                f"no prediction files of pipeline {name!r}"
                + (f" ({protocol})" if protocol else "") + f" in {folder}; file prefixes "
                f"there: {known or 'none'}. Produce them with `eegmtl sd --methods {name} "
                "--predictions-dir DIR`.")
        frames += found
    return pd.concat(frames, ignore_index=True)


def score_columns(df: pd.DataFrame) -> list[str]:
    """The ``score_<class>`` columns of a prediction table (class probabilities), in order.

    Raises ``ValueError`` when there are none (e.g. a 1-D ``decision`` column: decision values
    are not probabilities and are not averaged here).
    """
    cols = [c for c in df.columns if str(c).startswith(_SCORE_PREFIX)]
    if not cols:
        extra = (" It holds a 1-D 'decision' column (decision_function values), which are not "
                 "probabilities." if "decision" in df.columns else "")
        raise ValueError("the predictions have no score_<class> columns (class probabilities "
                         "from predict_proba); ensembles average probabilities, so the pipeline "
                         f"must implement predict_proba.{extra}")
    return cols


def _classes(cols: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Class labels of the ``score_<class>`` columns, cast to the labels' dtype."""
    names = np.array([c[len(_SCORE_PREFIX):] for c in cols])
    if np.issubdtype(np.asarray(y).dtype, np.number):
        try:
            return names.astype(np.asarray(y).dtype)
        except ValueError:
            raise ValueError(f"score columns {list(cols)} do not name numeric classes like the "
                             f"labels y_true ({np.unique(y)[:5]})") from None
    return names


def _describe(group: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(GROUP_COLUMNS, group))


def _members(rows: pd.DataFrame, group: tuple, folds: Sequence[int] | None) -> list[pd.DataFrame]:
    """The member tables of one group sorted by fold, one per fold, after the fold checks."""
    hashes = rows.groupby("fold")["config_hash"].unique()
    twice = {int(f): list(h) for f, h in hashes.items() if len(h) > 1}
    if twice:
        raise ValueError(f"{_describe(group)}: several fits per fold (fold: config hashes "
                         f"{twice}); keep one configuration's files in the predictions folder")
    present = sorted(int(f) for f in hashes.index)
    if folds is not None:
        missing = sorted(set(map(int, folds)) - set(present))
        if missing:
            raise ValueError(
                f"{_describe(group)}: missing fold(s) {missing} (found {present}); the "
                f"predictions folder lacks *_S{group[2]}_F<fold>_seed{group[3]}_*"
                "_predictions.csv for them. Rerun those folds with --predictions-dir, or pass "
                "the folds you have (--folds).")
        present = sorted(set(map(int, folds)))
    return [_with_trial_id(rows[rows["fold"] == f].sort_values("trial", kind="stable"))
            for f in present]


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


def _check_aligned(members: list[pd.DataFrame], cols: list[str], group: tuple) -> None:
    """Same trials, same labels, valid probabilities in every member."""
    ref = members[0]
    for m in members:
        fold = int(m["fold"].iloc[0])
        if m["trial"].duplicated().any():
            raise ValueError(f"{_describe(group)}, fold {fold}: trial ids repeat in "
                             f"{m['source'].iloc[0]}; one row per test trial is expected")
        if not np.array_equal(m["trial_id"].to_numpy(), ref["trial_id"].to_numpy()):
            a, b = set(ref["trial_id"]), set(m["trial_id"])
            raise ValueError(
                f"{_describe(group)}: the members score different test trials (fold "
                f"{int(ref['fold'].iloc[0])}: {len(a)} trials, fold {fold}: {len(b)}; "
                f"{len(a ^ b)} differ, e.g. {sorted(a ^ b)[:5]}); an ensemble needs every "
                "member scored on the same test trials")
        if not np.array_equal(m["y_true"].to_numpy(), ref["y_true"].to_numpy()):
            bad = m["trial"].to_numpy()[m["y_true"].to_numpy() != ref["y_true"].to_numpy()]
            raise ValueError(f"{_describe(group)}, fold {fold}: y_true differs from fold "
                             f"{int(ref['fold'].iloc[0])} on trial(s) {bad[:5].tolist()}; the "
                             "files come from different data")
        p = m[cols].to_numpy(dtype=float)
        if not np.all(np.isfinite(p)) or p.min() < -PROBA_TOL or p.max() > 1 + PROBA_TOL \
                or np.abs(p.sum(axis=1) - 1).max() > PROBA_TOL:
            raise ValueError(f"{_describe(group)}, fold {fold}: the {cols} columns of "
                             f"{m['source'].iloc[0]} are not class probabilities (missing "
                             "values, outside [0, 1], or rows not summing to 1)")


def average_members(
    predictions: pd.DataFrame, *, folds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Average the class probabilities of the fold models of every subject × pipeline × seed.

    Parameters
    ----------
    predictions : DataFrame
        Rows of per-fit prediction files (:func:`load_predictions`).
    folds : sequence of int, optional
        The members: these folds must all be present (a missing one raises). Default: every
        fold found, which must be the same set for all subjects of a pipeline.

    Returns
    -------
    DataFrame
        One row per test trial of each group: ``protocol, pipeline, subject, seed, trial``,
        ``y_true``, ``y_pred`` (argmax of the mean), the mean ``score_<class>`` columns,
        ``n_members``, ``folds`` (``"1;2;..."``) and ``config_hashes`` (the members', in fold
        order, ``";"``-joined).
    """
    cols = score_columns(predictions)
    missing = [c for c in (*GROUP_COLUMNS, "fold", "config_hash", "trial", "y_true")
               if c not in predictions.columns]
    if missing:
        raise ValueError(f"prediction rows lack column(s) {missing}; they must be files written "
                         "by the runner's predictions_dir (fold_predictions with a task)")
    if "source" not in predictions.columns:
        predictions = predictions.assign(source="<frame>")
    if folds is None:
        sets = predictions.groupby(["pipeline", "subject", "seed"])["fold"].agg(
            lambda s: tuple(sorted(set(map(int, s)))))
        for pipe, per in sets.groupby(level="pipeline"):
            full = sorted(set().union(*per))
            short = {k[1:]: sorted(set(full) - set(v))
                     for k, v in per.items() if set(v) != set(full)}
            if short:
                raise ValueError(
                    f"pipeline {pipe!r}: some (subject, seed) miss fold(s) that others have "
                    f"({short}; missing folds); rerun them with --predictions-dir or pass the "
                    "folds to ensemble (--folds)")
    out = []
    for group, rows in predictions.groupby(list(GROUP_COLUMNS), sort=True):
        members = _members(rows, group, folds)
        _check_aligned(members, cols, group)
        if any(m[cols].isna().any().any() for m in members):  # class columns differ per file
            raise ValueError(f"{_describe(group)}: the members have different class columns")
        mean = np.mean([m[cols].to_numpy(dtype=float) for m in members], axis=0)
        ref = members[0]
        classes = _classes(cols, ref["y_true"].to_numpy())
        df = pd.DataFrame(dict(zip(GROUP_COLUMNS, group)), index=range(len(ref)))
        df["trial"] = ref["trial"].to_numpy()
        df["y_true"] = ref["y_true"].to_numpy()
        df["y_pred"] = classes[np.argmax(mean, axis=1)]
        df[cols] = mean
        df["n_members"] = len(members)
        df["folds"] = ";".join(str(int(m["fold"].iloc[0])) for m in members)
        df["config_hashes"] = ";".join(str(m["config_hash"].iloc[0]) for m in members)
        out.append(df)
    return pd.concat(out, ignore_index=True)


def _common(rows: pd.DataFrame, column: str) -> object:
    """The single distinct value of ``rows[column]``, else NaN (also when it is absent)."""
    if column not in rows.columns:
        return float("nan")
    u = rows[column].dropna().unique()
    return u[0] if len(u) == 1 else float("nan")


def _member_rows(records: pd.DataFrame, group: tuple, folds: list[int], hashes: list[str],
                 member_acc: list[float]) -> pd.DataFrame:
    """The records of the members of ``group``; each must exist and match its predictions."""
    keys = {record_key(k): i for i, k in enumerate(records[list(KEY_COLUMNS)].itertuples(
        index=False, name=None))}
    rows = []
    for fold, h, acc in zip(folds, hashes, member_acc):
        key = record_key((group[0], group[1], group[2], fold, group[3], h))
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
    *, folds: Sequence[int] | None = None, dataset: str | None = None,
) -> pd.DataFrame:
    """One record per subject × pipeline × seed: the fold-model ensemble's test metrics.

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
    folds : sequence of int, optional
        Members to use (see :func:`average_members`).
    dataset : str, optional
        ``dataset`` column when the member records do not give one.

    Returns
    -------
    DataFrame
        Records with pipeline ``"<pipeline>+ens<K>"``, ``fold`` = :data:`ENSEMBLE_FOLD`, the
        metrics of :func:`~eegmtl.evaluation.scoring.score_predictions` on the averaged
        probabilities (``score`` = ``roc_auc``), ``config`` (JSON: method, member pipeline,
        folds and config hashes, member config) and its hash; validation columns are NaN (each
        member has its own validation trials, which the others trained on). Extra columns:
        ``n_members`` and ``member_accuracy_mean`` (mean test accuracy of the members, from
        their predictions).
    """
    if member_records is not None and not isinstance(member_records, pd.DataFrame):
        member_records = load_records(member_records)
    cols = score_columns(predictions)
    averaged = average_members(predictions, folds=folds)
    per_group = dict(list(predictions.groupby(list(GROUP_COLUMNS), sort=True)))
    nan = float("nan")
    out = []
    for group, ens in averaged.groupby(list(GROUP_COLUMNS), sort=True):
        member_folds = [int(f) for f in ens["folds"].iloc[0].split(";")]
        hashes = ens["config_hashes"].iloc[0].split(";")
        rows = per_group[group]
        member_acc = [float((m["y_true"] == m["y_pred"]).mean())
                      for f in member_folds for m in [rows[rows["fold"] == f]]]
        classes = _classes(cols, ens["y_true"].to_numpy())
        metrics = score_predictions(ens["y_true"].to_numpy(), ens["y_pred"].to_numpy(),
                                    ens[cols].to_numpy(), classes)
        rec = pd.DataFrame() if member_records is None else _member_rows(
            member_records, group, member_folds, hashes, member_acc)
        member_config = _common(rec, "config")
        config = {
            "ensemble": "mean of predict_proba over the fold models (soft voting)",
            "member_pipeline": group[1], "member_folds": member_folds,
            "member_config_hashes": hashes,
            "member_config": json.loads(member_config) if isinstance(member_config, str) else None,
        }
        alignment = (config["member_config"] or {}).get("alignment", "none")
        if alignment not in (None, "none"):
            # top-level key, so that tag_alignment names the ensemble "<pipeline>+ens<K>+EA"
            config["alignment"] = alignment
        k = len(member_folds)
        member_dataset = _common(rec, "dataset")
        out.append({
            "dataset": member_dataset if isinstance(member_dataset, str) else dataset,
            "protocol": group[0], "pipeline": ensemble_name(group[1], k),
            "subject": int(group[2]), "fold": ENSEMBLE_FOLD, "seed": int(group[3]),
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
