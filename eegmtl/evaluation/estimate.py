"""How long the fits still to run will take, from the fit times of the records already made.

Long protocols (45 fits per pipeline, some fits taking an hour on one CPU thread) are run in
resumable pieces; before starting one, :func:`estimate_remaining` turns the plan of
:func:`eegmtl.evaluation.runner.run_protocol` (``plan_only=True``: the fits without a
record) into a per-pipeline estimate of the CPU time they need, from the ``time`` column of
existing records: those with the same config hash when there are any (the same network,
recipe and protocol on other subjects or folds, under this pipeline name or an alias such as
``MixNet[best]``), else those with the same pipeline name and protocol (another config, e.g.
without alignment), else none (:func:`reference_records`, which the whole-benchmark estimate
of :mod:`eegmtl.experiments.benchmark` uses too). Fits recorded on a GPU
(:func:`timed_on_gpu`) are left out: their times are not CPU times.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["ESTIMATE_COLUMNS", "estimate_remaining", "reference_records", "timed_on_gpu"]

#: Columns of :func:`estimate_remaining`'s table.
ESTIMATE_COLUMNS = ("pipeline", "todo", "checkpointed", "fit_s_mean", "fit_s_min",
                    "fit_s_max", "basis", "cpu_h")


def reference_records(records: pd.DataFrame, pipeline: str, *, protocol: str | None = None,
                      config_hashes: Iterable[str] = ()) -> tuple[pd.DataFrame, str]:
    """The records that stand for a fit of ``pipeline``, and which ones they are.

    Records with one of ``config_hashes`` (the same network, recipe and protocol, under this
    name or an alias) when there are any, else records with the same pipeline name and
    ``protocol`` (another config, e.g. without alignment); returns them with ``"same
    config"``, ``"same name"`` or ``"none"`` (an empty frame).
    """
    hashes = {str(h) for h in config_hashes}
    if hashes and "config_hash" in records.columns:
        same_cfg = records[records["config_hash"].astype(str).isin(hashes)]
        if len(same_cfg):
            return same_cfg, "same config"
    if "pipeline" not in records.columns:
        return records[:0], "none"
    same = records["pipeline"] == pipeline
    if protocol is not None and "protocol" in records.columns:
        same &= records["protocol"] == protocol
    return (records[same], "same name") if same.any() else (records[:0], "none")


def _times(rows: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(rows["time"], errors="coerce").dropna().to_numpy(dtype=float)


def timed_on_gpu(records: pd.DataFrame) -> pd.Series:
    """Boolean Series: which ``records`` were fitted on an accelerator. A record whose
    ``config``'s ``method_config.device`` names one (not ``cpu`` or ``auto``) was; one whose
    device is ``auto`` or not given was when its pipeline trains a network
    (:func:`~eegmtl.evaluation.methods.is_deep_method`) and its ``machine`` had a GPU (such a
    fit picks the GPU). Records without a config count as CPU fits."""
    if "config" not in records.columns:
        return pd.Series(False, index=records.index)

    def device_of(config: object) -> str:
        try:
            return str(json.loads(config).get("method_config", {}).get("device") or "auto")
        except (TypeError, ValueError, AttributeError):
            return "cpu"

    def machine_gpu(machine: object) -> bool:
        try:
            return bool(json.loads(machine).get("gpu"))
        except (TypeError, ValueError, AttributeError):
            return False

    def deep(name: object) -> bool:
        from eegmtl.evaluation.methods import is_deep_method

        try:  # a report's alignment tag (tag_alignment) is not part of the method's name
            return is_deep_method(re.sub(r"\+EA(\[inductive\])?$", "", str(name)))
        except (KeyError, ValueError):  # a pipeline no longer registered, an ensemble
            return False

    devices = records["config"].map({c: device_of(c) for c in records["config"].dropna().unique()})
    devices = devices.fillna("cpu")
    out = ~devices.isin(["cpu", "auto"])
    auto = devices.eq("auto")
    if auto.any() and {"machine", "pipeline"} <= set(records.columns):
        gpu_machine = records["machine"].map(
            {m: machine_gpu(m) for m in records["machine"].dropna().unique()}).fillna(
            False).astype(bool)
        maybe = auto & gpu_machine
        if maybe.any():
            names = records.loc[maybe, "pipeline"]
            out |= maybe & records["pipeline"].map({n: deep(n) for n in names.unique()}).fillna(
                False).astype(bool)
    return out.astype(bool)


def estimate_remaining(plan: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """CPU time of the fits in ``plan``, per pipeline, from the fit times in ``records``.

    Parameters
    ----------
    plan : DataFrame
        The fits still to run: ``run_protocol(..., plan_only=True)`` (columns ``pipeline``,
        ``config_hash``, ``checkpoint``, ``protocol``; ``attrs["n_done"]`` optional).
    records : DataFrame
        Finished fits (any record files, concatenated) with ``pipeline``, ``config_hash``,
        ``protocol`` and ``time`` (seconds of one fit, as measured on the machine that ran it);
        those fitted on a GPU (:func:`timed_on_gpu`) are not used.

    Returns
    -------
    DataFrame
        One row per pipeline of ``plan`` (columns :data:`ESTIMATE_COLUMNS`): fits to run,
        how many of them have an epoch checkpoint to continue from (counted as whole fits,
        so the estimate is an upper bound for those), mean / min / max seconds of the
        reference fits (:func:`reference_records`), the reference (``"same config (n)"``,
        ``"same name (n)"`` or ``"none"``) and ``cpu_h`` = fits × mean / 3600 (NaN without a
        reference). ``attrs["total_cpu_h"]`` sums the known rows, ``attrs["unknown"]`` lists
        the pipelines without a reference.
    """
    missing = {"pipeline", "config_hash"} - set(plan.columns)
    if missing:
        raise ValueError(f"plan lacks columns {sorted(missing)}; make it with "
                         "run_protocol(..., plan_only=True)")
    if not plan.empty and len(records) and {"pipeline", "time"} - set(records.columns):
        raise ValueError("records need the columns 'pipeline', 'config_hash' and 'time'")
    records = records[~timed_on_gpu(records)]
    rows = []
    by = ["protocol", "pipeline"] if "protocol" in plan.columns else ["pipeline"]
    for key, part in plan.groupby(by, sort=True):
        protocol, pipeline = key if len(by) == 2 else (None, key[0])
        ref, basis = reference_records(records, pipeline, protocol=protocol,
                                       config_hashes=part["config_hash"])
        times = _times(ref) if "time" in ref.columns else np.array([])
        mean = float(times.mean()) if len(times) else float("nan")
        rows.append({
            "pipeline": pipeline, "todo": len(part),
            "checkpointed": int(part["checkpoint"].sum()) if "checkpoint" in part else 0,
            "fit_s_mean": mean,
            "fit_s_min": float(times.min()) if len(times) else float("nan"),
            "fit_s_max": float(times.max()) if len(times) else float("nan"),
            "basis": f"{basis} ({len(times)})" if len(times) else "none",
            "cpu_h": len(part) * mean / 3600.0,
        })
    out = pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS))
    out.attrs["total_cpu_h"] = float(out["cpu_h"].sum(skipna=True)) if len(out) else 0.0
    out.attrs["unknown"] = out.loc[out["cpu_h"].isna(), "pipeline"].tolist()
    return out
