"""Scores of a fitted classifier on a fold: accuracy, macro-F1, Cohen's κ, ROC-AUC, and the
per-trial prediction table.

ROC-AUC follows MOABB's choice for two-class imagery (the ``score`` column of the records is the
ROC-AUC): scores from ``predict_proba`` (else ``decision_function``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from eegmtl.evaluation.predictions import SCORE_PREFIX

__all__ = ["compute_metrics", "fold_predictions", "predict_with_scores", "score_predictions"]


def compute_metrics(estimator: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1, Cohen's κ and ROC-AUC of a fitted estimator on (X, y).

    ROC-AUC uses ``predict_proba`` (else ``decision_function``); binary: the score of
    ``classes_[1]``; more classes: one-vs-rest macro AUC. NaN when the estimator has neither or
    ``y`` holds a single class.
    """
    pred, scores = predict_with_scores(estimator, X)
    return score_predictions(y, pred, scores, getattr(estimator, "classes_", None))


def predict_with_scores(estimator: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``predict`` and the class scores used for ROC-AUC: ``predict_proba`` (n, n_classes),
    else ``decision_function``, else ``None``."""
    pred = np.asarray(estimator.predict(X))
    if hasattr(estimator, "predict_proba"):
        return pred, np.asarray(estimator.predict_proba(X))
    if hasattr(estimator, "decision_function"):
        return pred, np.asarray(estimator.decision_function(X))
    return pred, None


def score_predictions(
    y: np.ndarray, pred: np.ndarray, scores: np.ndarray | None, classes: Any = None,
) -> dict[str, float]:
    """The metrics of :func:`compute_metrics` from predictions already made."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, roc_auc_score

    y = np.asarray(y)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_macro": float(f1_score(y, pred, average="macro")),
        "kappa": float(cohen_kappa_score(y, pred)),
        "roc_auc": float("nan"),
    }
    if classes is None or scores is None or len(np.unique(y)) < 2:
        return out
    classes = np.asarray(classes)
    if len(classes) == 2:
        s = scores[:, 1] if scores.ndim == 2 else scores
        out["roc_auc"] = float(roc_auc_score(y == classes[1], s))
    else:
        out["roc_auc"] = float(roc_auc_score(y, scores, multi_class="ovr", labels=classes))
    return out


def fold_predictions(
    y: np.ndarray, test: np.ndarray, pred: np.ndarray, scores: np.ndarray | None = None,
    classes: Any = None, task: Any = None, trial_meta: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per test trial: ``trial`` (row of the data), its metadata, ``y_true``,
    ``y_pred`` and the class scores (``score_<class>``: probabilities from ``predict_proba``,
    or ``decision`` for a 1-D ``decision_function``), tagged with the fit's key columns when
    ``task`` is given. Confusion matrices and per-trial analyses need no refit
    (``sklearn.metrics.confusion_matrix(df.y_true, df.y_pred)``)."""
    test = np.asarray(test)
    out = pd.DataFrame({"trial": test})
    if task is not None:
        for col in ("protocol", "pipeline", "subject", "fold", "seed", "config_hash"):
            out[col] = getattr(task, col)
    if trial_meta is not None:
        for col in trial_meta.columns:
            out[f"trial_{col}"] = trial_meta[col].to_numpy()[test]
    out["y_true"] = np.asarray(y)[test]
    out["y_pred"] = np.asarray(pred)
    if scores is not None and np.ndim(scores) == 2:
        names = classes if classes is not None else range(np.shape(scores)[1])
        for j, c in enumerate(names):
            out[f"{SCORE_PREFIX}{c}"] = np.asarray(scores)[:, j]
    elif scores is not None:
        out["decision"] = np.asarray(scores)
    return out
