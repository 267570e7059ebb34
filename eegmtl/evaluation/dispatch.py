"""Fitting the planned fits of :func:`eegmtl.evaluation.runner.run_protocol`: in parallel,
each record merged into the record file as it arrives, within a deadline.

:func:`batched_units` gathers the fits that can train as one stacked network
(``batch_fits``); :func:`fit_units` hands the units to joblib workers (any backend of
:func:`eegmtl.parallel.parallel_backend`), starts a unit only if its expected time ends before
the deadline, records every finished fit at once (so an interrupted run keeps them), deletes a
recorded fit's epoch checkpoint and reports a worker's death with what was kept.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegmtl.evaluation.fit_fold import _build, _run_batch, _run_task, _Task
from eegmtl.evaluation.predictions import fit_stem
from eegmtl.evaluation.records import merge_records
from eegmtl.parallel import WorkerDiedError, parallel_backend, worker_deaths

__all__ = ["batched_units", "fit_units"]


def batched_units(todo: list[_Task], k: int) -> list[_Task | list[_Task]]:
    """``todo`` with the fits that :func:`eegmtl.eeg.batched_fit.fit_batched` can train
    together (a braindecode pipeline's fits with a validation part, grouped by pipeline,
    config and training size) gathered into lists of at most ``k``, each placed where its first
    fit was (so a longest-first order holds); other fits stay single."""
    from eegmtl.eeg.deep_baselines import BraindecodeClassifier

    batchable: dict[str, bool] = {}
    groups: dict[tuple, list[_Task]] = {}
    units: list[_Task | list[_Task]] = []
    for t in todo:
        if t.pipeline not in batchable:
            batchable[t.pipeline] = isinstance(_build(t.method), BraindecodeClassifier)
        if not (batchable[t.pipeline] and len(t.split.val)):
            units.append(t)
            continue
        key = (t.pipeline, t.config_hash, len(t.split.train))
        group = groups.get(key)
        if group is None or len(group) == k:
            group = groups[key] = []
            units.append(group)
        group.append(t)
    return units


def fit_units(units: list[_Task | list[_Task]], X: np.ndarray, y: np.ndarray,
              common: Mapping[str, Any], rows: list[dict[str, Any]], *, desc: str,
              n_jobs: int = 1, backend: str = "loky", address: str | None = None,
              torch_threads: int | None = None,
              results_path: str | os.PathLike[str] | None = None,
              checkpoint_dir: str | os.PathLike[str] | None = None, progress: bool = True,
              deadline: float | None = None,
              expected_fit_s: Mapping[str, float] | None = None, batch_fits: int = 1,
              batch_speedup: float = 1.0) -> int:
    """Fit ``units`` (single fits, or lists trained as one batch) and record them.

    Each finished fit's record is appended to ``rows`` and merged into ``results_path`` at
    once; its epoch checkpoint under ``checkpoint_dir`` is then deleted. With ``deadline``
    (``time.time()``) a unit starts only if it is expected to end before it — by the median
    single-fit time of its pipeline's fits finished in this call, else by
    ``expected_fit_s`` — a batch counting as ``max(1, batch_fits / batch_speedup)`` fits, and
    units are handed to the workers one at a time, so that the check is made as each starts
    (the parameters of :func:`eegmtl.evaluation.runner.run_protocol`). Returns the number of
    fits left for a later run by the deadline.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C or SIGTERM; ``n_recorded`` says how many fits this call kept.
    WorkerDiedError
        A worker process died (killed, out of memory, a crash in native code); the fits
        finished before it are recorded, ``n_recorded`` says how many.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    deferred: list[int] = []  # fits left for a later run by the deadline
    observed: dict[str, list[float]] = {}  # this run's single-fit times per pipeline

    def in_fits(k: int) -> float:
        """A unit of ``k`` fits' expected wall time in single fits' time."""
        return 1.0 if k <= 1 else max(1.0, batch_fits / batch_speedup)

    def starts(unit: _Task | list[_Task]) -> bool:
        """Whether ``unit`` may start now: by the fit times this run has observed for its
        pipeline, else by ``expected_fit_s``."""
        if deadline is None:
            return True
        fits = unit if isinstance(unit, list) else [unit]
        seen = observed.get(fits[0].pipeline)
        single = (float(np.median(seen)) if seen
                  else float((expected_fit_s or {}).get(fits[0].pipeline, 0.0) or 0.0))
        if time.time() + single * in_fits(len(fits)) <= deadline:
            return True
        deferred.append(len(fits))
        return False

    n_fits = sum(len(u) if isinstance(u, list) else 1 for u in units)
    bar = tqdm(total=n_fits, desc=desc, disable=not progress, unit="fit")
    one_by_one = {"pre_dispatch": "n_jobs", "batch_size": 1} if deadline is not None else {}
    n_existing = len(rows)

    def record(out: Any) -> None:
        unit = out if isinstance(out, list) else [out]
        wall = float(unit[0].get("time") or np.nan) * len(unit)  # a batch: wall / k each
        if np.isfinite(wall):
            observed.setdefault(unit[0]["pipeline"], []).append(wall / in_fits(len(unit)))
        for rec in unit:
            rows.append(rec)
            if results_path is not None:
                merge_records(pd.DataFrame([rec]), results_path)
            if checkpoint_dir is not None:  # the record is safe: its checkpoint can go
                shutil.rmtree(Path(checkpoint_dir) / fit_stem(
                    rec["protocol"], rec["pipeline"], rec["subject"], rec["fold"],
                    rec["seed"], rec["config_hash"]), ignore_errors=True)
            bar.update(1)
            bar.set_postfix_str(f"{rec['pipeline']} S{rec['subject']} "
                                f"F{rec['fold']} acc={rec['accuracy']:.3f}")

    with parallel_backend(backend, n_jobs, address=address,
                          threads_per_worker=torch_threads or 1):
        gen = Parallel(return_as="generator_unordered", **one_by_one)(
            delayed(_run_batch if isinstance(u, list) else _run_task)(u, X, y, common)
            for u in units if starts(u))
        try:
            for out in gen:
                record(out)
        except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM: how many fits this call kept
            bar.close()
            err.n_recorded = len(rows) - n_existing  # type: ignore[attr-defined]
            raise
        except worker_deaths() as err:
            bar.close()
            done = len(rows) - n_existing
            kept = (f"the {done} fits this run finished are recorded in {results_path}. Run "
                    "the same command again to resume the rest" if results_path is not None
                    else f"the {done} fits this run finished are lost (no results_path)")
            died = WorkerDiedError(
                f"a worker process died during a fit (killed, out of memory, or a crash in "
                f"native code: {type(err).__name__}); {kept} (with fewer --n-jobs if "
                "memory ran out).")
            died.n_recorded = done  # type: ignore[attr-defined]
            raise died from err
    if deferred:
        bar.set_postfix_str(f"{sum(deferred)} fits left for a later run (deadline)")
    bar.close()
    return sum(deferred)
