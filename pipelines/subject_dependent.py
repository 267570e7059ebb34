"""Subject-dependent (SD) evaluation on BCIC IV 2b: every method on the same splits.

Thin script over :mod:`eegmtl.experiments.protocol`: the same run as
``eegmtl sd ...`` (options: ``python pipelines/subject_dependent.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/subject_dependent.py --methods CSP+LDA TS+SVM            # all subjects
    python pipelines/subject_dependent.py --methods MixNet --n-jobs 2 --max-epochs 200
    python pipelines/subject_dependent.py --quick                             # smoke test
    python pipelines/subject_dependent.py --summary-only                      # regenerate summary
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl sd`` with the options ``argv`` (default: the command line)."""
    return _run("sd", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
