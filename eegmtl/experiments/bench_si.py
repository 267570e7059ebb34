"""Cross-subject fit times (``eegmtl bench si``; prints figures, not a timed test).

Times one subject-independent fit per method exactly as ``eegmtl si`` makes it (the protocol
runner, its split of fold ``--fold`` for target subject ``--subject``: training pools
sessions 1-5 of the other subjects but the fold's validation subjects), with the parts of
the fit summed by :class:`~eegmtl.experiments._fit_profile.FitTimer`:

- ``MixNet``: data (window, resampling, filter bank, CSP; batch gathering), training steps,
  MixNet's interleaved validation (one validation batch after every step, read by gradient
  blending), the per-epoch validation pass, probes, I/O;
- ``FBCSP+SVM``: preprocessing (resampling and filter bank, once), CSP per band (once per
  inner fold and for the refit), mutual-information feature selection, the SVC fits of the
  kernel x C grid search (10 candidates x 5 inner folds + the refit) and their scoring.

Targets on a 2-core machine (one thread per fit, two fits at once): SI MixNet fit <= 40 s,
SI FBCSP+SVM fit <= 30 s. The load average is printed before and after: on a shared machine
the absolute seconds are only comparable at the same load.

Usage::

    eegmtl bench si                                  # subject 1, fold 1, both methods
    eegmtl bench si --methods FBCSP+SVM --out pipelines/results/bench_si.md
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from eegmtl._io import atomic_write
from eegmtl.experiments._fit_profile import FitTimer
from eegmtl.experiments.train_mixnet import default_data_dir

__all__ = ["TARGETS_S", "add_arguments", "fbcsp_targets", "run"]

#: Fit-time targets in seconds (one thread, 2-core machine).
TARGETS_S: dict[str, float] = {"MixNet": 40.0, "FBCSP+SVM": 30.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eegmtl bench si``."""
    parser.description = (__doc__ or "").split("\n\n")[0]
    p = parser
    p.add_argument("--methods", nargs="+", default=list(TARGETS_S),
                   help="registry names to time (default: MixNet FBCSP+SVM)")
    p.add_argument("--subject", type=int, default=1, help="target subject")
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None,
                   help="also write the printed figures to this (markdown) file")


def fbcsp_targets() -> dict[str, list[tuple[Any, str]]]:
    """The parts of an FBCSP + SVM fit timed by :class:`FitTimer`."""
    from sklearn.feature_selection import SelectKBest
    from sklearn.svm import SVC

    from eegmtl.eeg.baselines import BandwiseTransformer
    from eegmtl.eeg.preprocessing import FilterBank, Resampler

    return {
        "preprocessing": [(Resampler, "transform"), (FilterBank, "transform")],
        "csp": [(BandwiseTransformer, "fit"), (BandwiseTransformer, "transform")],
        "feature_selection": [(SelectKBest, "fit")],
        "svm_fit": [(SVC, "fit")],
        "svm_score": [(SVC, "score"), (SVC, "predict")],
    }


def _time_fit(method: str, data: Any, args: argparse.Namespace) -> tuple[float, float, FitTimer]:
    from eegmtl.evaluation.runner import run_protocol

    timer = FitTimer(fbcsp_targets() if method == "FBCSP+SVM" else None)
    with tempfile.TemporaryDirectory() as tmp, timer:
        t0 = time.perf_counter()
        rec = run_protocol("si", [method], subjects=[args.subject], data=data,
                           folds=[args.fold], results_path=Path(tmp) / "r.csv",
                           progress=False, torch_threads=args.threads)
        wall = time.perf_counter() - t0
    return float(rec["time"].iloc[0]), wall, timer


def run(args: argparse.Namespace) -> int:
    """Run the benchmark as parsed by :func:`add_arguments` and print the figures."""
    os.environ.setdefault("MNE_LOGGING_LEVEL", "WARNING")
    default_data_dir()
    from eegmtl.evaluation.runner import load_default_data

    lines = [f"# Subject-independent fit times (subject {args.subject}, fold {args.fold}, "
             f"{args.threads} thread(s))", "",
             f"Command: `eegmtl bench si --methods {' '.join(args.methods)} --subject "
             f"{args.subject} --fold {args.fold} --threads {args.threads}`", "",
             f"load average before: {tuple(round(v, 2) for v in os.getloadavg())}", ""]
    print("\n".join(lines))
    data = load_default_data()
    for method in args.methods:
        fit_s, wall, timer = _time_fit(method, data, args)
        parts = dict(timer.seconds)
        timed = sum(parts.values())
        target = TARGETS_S.get(method)
        verdict = ("" if target is None else
                   f" (target <= {target:.0f} s: {'met' if fit_s <= target else 'NOT met'}, "
                   f"{fit_s / target:.2f}x the target)")
        out = [f"## {method}: fit {fit_s:.1f} s{verdict}; run wall {wall:.1f} s", "",
               "| part | seconds | share of the fit | calls |", "|---|---|---|---|"]
        for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
            out.append(f"| {k} | {v:.2f} | {100 * v / fit_s:.1f} % | {timer.calls[k]} |")
        out.append(f"| rest of the fit | {fit_s - timed:.2f} | "
                   f"{100 * (fit_s - timed) / fit_s:.1f} % | |")
        if parts:
            top = max(parts, key=parts.get)
            out += ["", f"Largest part: {top} ({100 * parts[top] / fit_s:.0f} % of the fit)."]
        print("\n".join(out) + "\n", flush=True)
        lines += out + [""]
    tail = f"load average after: {tuple(round(v, 2) for v in os.getloadavg())}"
    print(tail)
    lines.append(tail)
    if args.out is not None:
        atomic_write(args.out, "\n".join(lines) + "\n")
    return 0
