"""Subject-independent (SI) evaluation on BCIC IV 2b: every method on the same splits.

Thin script over :mod:`eegmtl.experiments.protocol`: the same run as
``eegmtl si ...`` (options: ``python pipelines/subject_independent.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/subject_independent.py --methods CSP+LDA TS+SVM FBCSP+SVM EEGNet
    python pipelines/subject_independent.py --methods MixNet --n-jobs 2
    python pipelines/subject_independent.py --quick
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl si`` with the options ``argv`` (default: the command line)."""
    return _run("si", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
