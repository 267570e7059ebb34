"""CSP-type baselines, subject-dependent competition split, on the real BCIC IV 2b export.

Load the local export (``$EEGMTL_BCI2B_DIR`` or ``$EEGMTL_DATA_DIR/bcic_iv_2b``) -> keep the
0-4 s window after the cue at 250 Hz (the export is already band-passed ~6.7-25 Hz, so no further
filtering) -> per subject, fit on competition sessions 1-3 (360 trials)
and test on sessions 4-5 (240 trials). Prints a per-subject table with mean +- SD (ddof=1) and
writes tidy records (the result-record schema) to ``<results folder>/csp_lda_sd.csv``.

Usage::

    eegmtl csp-lda                       # CSP+LDA (reference mean accuracy 0.714)
    eegmtl csp-lda --pipelines CSP+LDA FBCSP+SVM TS+SVM --out results/sd.csv
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eegmtl._io import config_hash, library_versions
from eegmtl.config import RESULTS_DIR_HELP, results_dir
from eegmtl.evaluation.runner import DEFAULT_DATASET
from eegmtl.evaluation.scoring import compute_metrics
from eegmtl.experiments._common import elapsed_s

__all__ = ["FACTORIES", "add_arguments", "evaluate", "run", "summary"]

TRAIN_SESSIONS, TEST_SESSIONS = (1, 2, 3), (4, 5)


#: pipeline -> (factory in eegmtl.eeg.baselines, keyword arguments)
FACTORIES: dict[str, tuple[str, dict[str, Any]]] = {
    "CSP+LDA": ("make_csp_lda", {"n_components": 4}),
    "FBCSP+SVM": ("make_fbcsp_svm", {"sfreq": 250.0, "n_jobs": 1}),
    "TS+SVM": ("make_ts_svm", {"C": 1.0}),
}


def evaluate(pipelines: list[str], subjects: list[int], data_dir: str | None, seed: int
             ) -> pd.DataFrame:
    """One record per pipeline × subject: fit on sessions 1-3, test on sessions 4-5."""
    from eegmtl.eeg import baselines
    from eegmtl.eeg.datasets import load_bci2b

    X, y, meta = load_bci2b("export", subjects, path=data_dir, units="uV")
    vers = json.dumps(library_versions(), sort_keys=True)
    rows = []
    for name in pipelines:
        factory_name, kwargs = FACTORIES[name]
        factory = getattr(baselines, factory_name)
        config = {
            "source": "export", "window_s": [0.0, 4.0], "sfreq": 250.0, "units": "uV",
            "train_sessions": list(TRAIN_SESSIONS), "test_sessions": list(TEST_SESSIONS),
            "factory": f"eegmtl.eeg.baselines.{factory.__name__}", "kwargs": kwargs,
        }
        cfg = json.dumps(config, sort_keys=True)
        cfg_hash = config_hash(config)
        for s in subjects:
            is_s = (meta["subject"] == s).to_numpy()
            train = is_s & meta["session_index"].isin(TRAIN_SESSIONS).to_numpy()
            test = is_s & meta["session_index"].isin(TEST_SESSIONS).to_numpy()
            est = factory(**kwargs)
            t0 = time.perf_counter()
            est.fit(X[train], y[train])
            fit_s = time.perf_counter() - t0
            rows.append({
                "dataset": DEFAULT_DATASET, "protocol": "subject_dependent", "pipeline": name,
                "subject": s, "fold": 0, "seed": seed,
                **(m := compute_metrics(est, X[test], y[test])), "score": m["roc_auc"],
                "samples": int(train.sum()), "samples_test": int(test.sum()), "time": fit_s,
                "n_epochs_trained": np.nan, "config_hash": cfg_hash, "config": cfg,
                "versions": vers,
            })
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> str:
    """Per-subject text table with mean ± SD (ddof = 1) per pipeline."""
    lines = []
    for name, g in df.groupby("pipeline", sort=False):
        lines.append(f"\n{name}  (subject-dependent, train sessions 1-3 -> test 4-5)")
        lines.append(f"{'subject':>8} {'accuracy':>9} {'f1_macro':>9} {'kappa':>7} {'roc_auc':>8}")
        for _, r in g.iterrows():
            lines.append(f"{r.subject:>8d} {r.accuracy:>9.3f} {r.f1_macro:>9.3f} "
                         f"{r.kappa:>7.3f} {r.roc_auc:>8.3f}")
        m, sd = g[["accuracy", "f1_macro", "kappa", "roc_auc"]].mean(), g[
            ["accuracy", "f1_macro", "kappa", "roc_auc"]].std(ddof=1)
        lines.append("mean+-SD " + " ".join(
            f"{m[c]:.3f}+-{sd[c]:.3f}" for c in ["accuracy", "f1_macro", "kappa", "roc_auc"]))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl csp-lda``."""
    parser.description = (__doc__ or "").split("\n")[0]
    p = parser
    p.add_argument("--pipelines", nargs="+", default=["CSP+LDA"], choices=sorted(FACTORIES))
    p.add_argument("--subjects", nargs="+", type=int, default=None, help="default: 1-9")
    p.add_argument("--bci2b-dir", default=None,
                   help="folder with epochs_mat/ (default: $EEGMTL_BCI2B_DIR or "
                        "$EEGMTL_DATA_DIR/bcic_iv_2b)")
    p.add_argument("--out", default=None,
                   help=f"CSV path (default: <results folder>/csp_lda_sd.csv; {RESULTS_DIR_HELP})")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Fit and score the pipelines as parsed by :func:`add_arguments`; write the records."""
    import mne

    from eegmtl.eeg.datasets import parse_subjects
    from eegmtl.evaluation.records import write_records

    mne.set_log_level("WARNING")  # MNE's CSP logs rank estimation at INFO for every fit
    df = evaluate(args.pipelines, parse_subjects(args.subjects), args.bci2b_dir, args.seed)
    out = Path(args.out) if args.out else results_dir() / "csp_lda_sd.csv"
    write_records(df, out)
    print(summary(df))
    print(f"\nwrote {len(df)} records to {out}")
    print(f"wall time {elapsed_s():.1f} s (imports, loading, fits)")
    return 0
