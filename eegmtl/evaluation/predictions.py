"""The per-fit prediction files: their names, their columns, reading them back.

With ``predictions_dir`` the runner (:func:`eegmtl.evaluation.runner.run_protocol`) stores
every fit's test predictions (:func:`eegmtl.evaluation.scoring.fold_predictions`), one file per
fit named ``<protocol>_<pipeline>_S<subject>_F<fold>_seed<seed>_<config_hash>_predictions.csv``
(:func:`fit_stem`: characters outside ``[A-Za-z0-9_.+-]`` replaced by ``_``; the same stem names
a fit's history files and checkpoint folder) with one row per test trial: the fit's key columns,
``trial`` (the trial's row in the loaded data), ``trial_<meta>`` columns, ``y_true``,
``y_pred`` and one ``score_<class>`` column per class, the member's ``predict_proba`` for that
class in ``classes_`` order (each row sums to 1), or a 1-D ``decision`` column for estimators
without ``predict_proba``. :func:`load_predictions` reads them back for
:mod:`eegmtl.evaluation.ensemble`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SCORE_PREFIX", "file_token", "fit_stem", "load_predictions", "score_classes",
           "score_columns"]

#: Prefix of the class-probability columns (``score_<class>``).
SCORE_PREFIX = "score_"


def file_token(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9_.+-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def fit_stem(protocol: str, pipeline: str, subject: int, fold: int, seed: int,
             config_hash: str) -> str:
    """File-name stem of one fit (its history, predictions and checkpoint folder)."""
    return file_token(f"{protocol}_{pipeline}_S{subject}_F{fold}_seed{seed}_{config_hash}")


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
        for path in sorted(folder.glob(f"*_{file_token(name)}_S*_F*_seed*_predictions.csv")):
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
    cols = [c for c in df.columns if str(c).startswith(SCORE_PREFIX)]
    if not cols:
        extra = (" It holds a 1-D 'decision' column (decision_function values), which are not "
                 "probabilities." if "decision" in df.columns else "")
        raise ValueError("the predictions have no score_<class> columns (class probabilities "
                         "from predict_proba); ensembles average probabilities, so the pipeline "
                         f"must implement predict_proba.{extra}")
    return cols


def score_classes(cols: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Class labels of the ``score_<class>`` columns, cast to the labels' dtype."""
    names = np.array([c[len(SCORE_PREFIX):] for c in cols])
    if np.issubdtype(np.asarray(y).dtype, np.number):
        try:
            return names.astype(np.asarray(y).dtype)
        except ValueError:
            raise ValueError(f"score columns {list(cols)} do not name numeric classes like the "
                             f"labels y_true ({np.unique(y)[:5]})") from None
    return names
