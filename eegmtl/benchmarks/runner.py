"""Run any MTL method (weighting × aggregator × flat) on a vision benchmark; tidy records.

:func:`run_benchmark` (one data set × method × seed; the protocol, the metrics and the record
schema are described in :mod:`eegmtl.benchmarks.single_run`) and :func:`run_grid` (benchmarks ×
methods × seeds, sharded over processes or run by parallel workers, all merging into one
results file). The record helpers and protocol tables are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import pandas as pd

from eegmtl.benchmarks.protocols import BENCHMARKS, PROTOCOLS, canonical_benchmark
from eegmtl.benchmarks.protocols import _build_model as _build_model
from eegmtl.benchmarks.records import COLUMNS, fill_delta_p, load_records, write_records
from eegmtl.benchmarks.single_run import flat_for_method as flat_for_method
from eegmtl.benchmarks.single_run import run_benchmark
from eegmtl.mtl import Trainer as Trainer  # the trainer a run uses (tests patch its fit)
from eegmtl.mtl.conflict_probe import ConflictProbe

__all__ = [
    "BENCHMARKS",
    "COLUMNS",
    "PROTOCOLS",
    "ConflictProbe",
    "canonical_benchmark",
    "fill_delta_p",
    "load_records",
    "run_benchmark",
    "run_grid",
    "write_records",
]


def run_grid(
    benchmarks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int] = (0,),
    *,
    shard: tuple[int, int] = (0, 1),
    log: Any = None,
    n_jobs: int = 1,
    backend: str = "loky",
    address: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run :func:`run_benchmark` over benchmarks × methods × seeds (data loaded once per set).

    ``shard=(k, n)`` runs only every ``n``-th item starting at ``k`` (0-based), so ``n``
    processes can share one grid and one results file. ``log`` is a callable taking a str.
    ``n_jobs``, ``backend`` (``"loky"``, ``"dask"``, ``"ray"``) and ``address`` run the items
    in parallel workers (:func:`eegmtl.parallel.imap_unordered`, ``threads`` torch threads
    each, default 1); each worker loads its data and merges its records into
    ``results_path``, which must be on a file system the workers share.
    Returns the records of the runs of this shard.
    """
    k, n = int(shard[0]), int(shard[1])
    if not 0 <= k < n:
        raise ValueError(f"shard must be (k, n) with 0 <= k < n, got {shard}.")
    items = [(b, m, s) for b in benchmarks for s in seeds for m in methods]
    mine = items[k::n]
    out, loaded = [], {}
    results_path = kwargs.get("results_path")
    given = kwargs.pop("splits", None)
    if n_jobs != 1 or backend != "loky":
        from eegmtl.parallel import imap_unordered

        runs = imap_unordered(partial(_grid_run, given, kwargs, None), mine, backend=backend,
                              n_jobs=n_jobs, address=address,
                              threads_per_worker=kwargs.get("threads"))
    else:
        runs = (_grid_run(given, kwargs, loaded, item) for item in mine)
    for i, ((ds, m, s), rec, wall) in enumerate(runs):
        avg = rec[rec["task"] == "avg"].iloc[0]
        if log is not None:
            log(
                f"[{i + 1}/{len(mine)}] {ds} {m} seed={s}: avg acc {avg['avg_accuracy']:.4f} "
                f"conflict {avg['conflict_rate']:.2f} fit {avg['time']:.0f}s (wall {wall:.0f}s)"
                + ("" if results_path is None else f" -> {results_path}")
            )
        out.append(rec)
    if out and results_path is not None:  # as in the file: Δp of runs that finished before EW
        table, done = load_records(results_path), {r["config_hash"].iloc[0] for r in out}
        out = [table[table["config_hash"].isin(done)]]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=list(COLUMNS))


_LOADED: dict[str, Any] = {}  # a parallel worker's data set, kept for its next runs


def _grid_run(given: Any, kwargs: dict[str, Any], loaded: dict[str, Any] | None,
              item: tuple[str, str, int]) -> tuple[tuple[str, str, int], pd.DataFrame, float]:
    """One grid item: ((data set, method, seed), its records, wall seconds)."""
    (b, m, s), t0 = item, time.perf_counter()
    splits, ds, loaded = given, canonical_benchmark(b), _LOADED if loaded is None else loaded
    if splits is None:
        if ds not in loaded:
            from eegmtl.benchmarks.multimnist import load_multimnist

            loaded.clear()
            loaded[ds] = load_multimnist(ds, **dict(kwargs.get("data_kwargs") or {}))
        splits = loaded[ds]
    rec = run_benchmark(b, method=m, seed=s, splits=splits, **kwargs)
    return (ds, m, s), rec, time.perf_counter() - t0
