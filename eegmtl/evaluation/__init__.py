"""Evaluation on BCIC IV 2b: protocols, method registry, tidy result records, tables, plots.

- :mod:`~eegmtl.evaluation.protocols` -- subject-dependent / subject-independent splits of the
  MixNet paper and :func:`run_protocol` (parallel, resumable, one record per fit).
- :mod:`~eegmtl.evaluation.methods` -- registry ``name -> factory(config) -> estimator``.
- :mod:`~eegmtl.evaluation.results` -- record I/O, config hashes, mean ± SD tables, MOABB export,
  validation-only model selection.
- :mod:`~eegmtl.evaluation.plots` -- per-subject, paired, task-weight and confusion plots.

Importing this package does not import torch, braindecode or the estimators.
"""

from __future__ import annotations

from eegmtl.evaluation.methods import (
    MethodSpec,
    available_methods,
    default_config,
    get_method,
    make_estimator,
    register_method,
)
from eegmtl.evaluation.protocols import (
    Split,
    compute_metrics,
    fold_predictions,
    make_splits,
    run_protocol,
    subject_dependent_splits,
    subject_independent_splits,
)
from eegmtl.evaluation.results import (
    RECORD_COLUMNS,
    config_hash,
    load_records,
    per_subject,
    select_on_validation,
    summarize,
    to_markdown,
    to_moabb,
    write_records,
)

__all__ = [
    "RECORD_COLUMNS",
    "MethodSpec",
    "Split",
    "available_methods",
    "compute_metrics",
    "fold_predictions",
    "config_hash",
    "default_config",
    "get_method",
    "load_records",
    "make_estimator",
    "make_splits",
    "per_subject",
    "register_method",
    "run_protocol",
    "select_on_validation",
    "subject_dependent_splits",
    "subject_independent_splits",
    "summarize",
    "to_markdown",
    "to_moabb",
    "write_records",
]
