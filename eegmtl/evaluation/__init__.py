"""Evaluation on BCIC IV 2b along MOABB's seams: splitters, scoring, runner, records, tables.

- :mod:`~eegmtl.evaluation.splitters` -- the subject-dependent / subject-independent folds of
  the MixNet paper, as splits and as scikit-learn cross-validators.
- :mod:`~eegmtl.evaluation.methods` -- registry ``name -> factory(config) -> estimator``.
- :mod:`~eegmtl.evaluation.scoring` -- accuracy, macro-F1, κ, ROC-AUC; per-trial predictions.
- :mod:`~eegmtl.evaluation.runner` -- :func:`run_protocol` (parallel, resumable, one record per
  fit).
- :mod:`~eegmtl.evaluation.records` -- the record schema and its atomic, locked store.
- :mod:`~eegmtl.evaluation.tables` -- mean ± SD tables, MOABB export, validation-only selection.
- :mod:`~eegmtl.evaluation.stats` -- paired Wilcoxon tests on matched runs.
- :mod:`~eegmtl.evaluation.report` -- markdown report with figures from record files.
- :mod:`~eegmtl.evaluation.plots` -- per-subject, paired, task-weight and confusion plots.

Importing this package does not import torch, braindecode or the estimators.
"""

from __future__ import annotations

from eegmtl._io import config_hash
from eegmtl.evaluation.methods import (
    MethodSpec,
    available_methods,
    default_config,
    get_method,
    make_estimator,
    register_method,
)
from eegmtl.evaluation.records import RECORD_COLUMNS, load_records, merge_records, write_records
from eegmtl.evaluation.runner import run_protocol
from eegmtl.evaluation.scoring import compute_metrics, fold_predictions
from eegmtl.evaluation.splitters import (
    Split,
    SubjectDependentSplitter,
    SubjectIndependentSplitter,
    make_splits,
    subject_dependent_splits,
    subject_independent_splits,
)
from eegmtl.evaluation.stats import paired_tests
from eegmtl.evaluation.tables import (
    per_subject,
    select_on_validation,
    summarize,
    to_markdown,
    to_moabb,
)

__all__ = [
    "RECORD_COLUMNS",
    "MethodSpec",
    "Split",
    "SubjectDependentSplitter",
    "SubjectIndependentSplitter",
    "available_methods",
    "compute_metrics",
    "config_hash",
    "default_config",
    "fold_predictions",
    "get_method",
    "load_records",
    "make_estimator",
    "make_splits",
    "merge_records",
    "paired_tests",
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
