"""Subject-independent fit times of MixNet and FBCSP+SVM (prints figures, not a timed test).

Thin script over :mod:`eegmtl.experiments.bench_si`: the same run as
``eegmtl bench si ...`` (options: ``python pipelines/bench_si.py --help``).

Usage::

    python pipelines/bench_si.py                         # subject 1, fold 1, both methods
    python pipelines/bench_si.py --out pipelines/results/bench_si.md
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl bench si`` with the options ``argv`` (default: the command line)."""
    return _run("bench-si", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
