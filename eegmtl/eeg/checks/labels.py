"""Label and subject-number checks."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

_MISSING_STRINGS = {"nan", "none", "null", "na", "<na>", ""}


def check_labels(
    y: Any,
    *,
    n_trials: int | None = None,
    min_classes: int = 2,
    max_classes: int | None = None,
    name: str = "y",
) -> np.ndarray:
    """Validate class labels: 1-D, one per trial, no missing values, enough classes.

    Parameters
    ----------
    y : array-like, shape (n_trials,)
    n_trials : int, optional
        Number of trials of ``X``; the lengths must match.
    min_classes, max_classes : int
        Allowed number of distinct labels (``max_classes=None``: no upper bound).

    Returns
    -------
    ndarray
        ``np.asarray(y)``.

    Raises
    ------
    ValueError
        Missing labels (NaN, None, pandas NA, or the strings "nan"/"None" that ``np.asarray``
        makes of them when mixed with strings), with their indices; wrong shape or length; too
        few or too many classes.
    """
    obj = np.asarray(y, dtype=object)
    if obj.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per trial); got shape {obj.shape}.")
    if n_trials is not None and len(obj) != n_trials:
        raise ValueError(f"X has {n_trials} trials but {name} has {len(obj)} labels.")
    import pandas as pd

    missing = np.asarray(pd.isna(obj), dtype=bool)
    missing |= np.array(
        [isinstance(v, str) and v.strip().lower() in _MISSING_STRINGS for v in obj], dtype=bool
    )
    if missing.any():
        idx = np.flatnonzero(missing)
        raise ValueError(
            f"{name} has {len(idx)} missing label(s) (NaN/None) at indices "
            f"{idx[:20].tolist()}{' ...' if len(idx) > 20 else ''}. Drop those trials "
            f"(X[keep], {name}[keep]) or fill in their labels; a missing label is not a class."
        )
    arr = np.asarray(y)
    classes = np.unique(arr)
    if len(classes) < min_classes:
        raise ValueError(
            f"{name} has {len(classes)} class(es) {classes.tolist()}; at least {min_classes} "
            "are needed. Check the labels and the split: every training set must contain "
            "trials of each class."
        )
    if max_classes is not None and len(classes) > max_classes:
        raise ValueError(
            f"{name} has {len(classes)} classes {classes.tolist()}; at most {max_classes} are "
            "supported here. Select the classes to use first."
        )
    return arr


def _as_int(value: Any, name: str, hint: str = "") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must hold integers; got {value!r} ({type(value).__name__}){hint}."
        )
    if isinstance(value, numbers.Integral):
        return int(value)
    if not np.isfinite(value) or float(value) != int(value):
        raise ValueError(f"{name} must hold integers; got {value!r}, which is not integral{hint}.")
    return int(value)


def check_subjects(
    subjects: Any, valid: Iterable[int] | None = None, *, name: str = "subjects"
) -> list[int]:
    """Subject numbers as a sorted list of unique ints.

    Accepts an int, an integral float (``4.0`` -> ``[4]``), or an iterable of those; ``None``
    gives ``sorted(valid)``.

    Raises
    ------
    ValueError
        Non-integral or non-numeric entries, an empty selection, or subjects outside ``valid``
        (the message lists the valid ones).
    """
    valid_set = None if valid is None else sorted(int(v) for v in valid)
    hint = ""
    if valid_set:
        contiguous = valid_set == list(range(valid_set[0], valid_set[-1] + 1))
        allowed = f"the integers {valid_set[0]}-{valid_set[-1]}" if contiguous else valid_set
        hint = f"; valid subjects are {allowed}"
    if subjects is None:
        if valid_set is None:
            raise ValueError(f"{name}=None needs a list of valid subjects.")
        return list(valid_set)
    if isinstance(subjects, (str, bytes)) or not isinstance(subjects, Iterable):
        subjects = [subjects]
    out = [_as_int(s, name, hint) for s in subjects]
    if not out:
        raise ValueError(f"{name} is empty; give at least one subject (or None for all){hint}.")
    if valid_set is not None:
        unknown = sorted({s for s in out if s not in valid_set})
        if unknown:
            raise ValueError(f"unknown {name} {unknown}{hint}.")
    return sorted(set(out))
