"""CSP-type baselines, subject-dependent competition split, on the real BCIC IV 2b export.

Thin script over :mod:`eegmtl.experiments.csp_lda`: the same run as
``eegmtl csp-lda ...`` (options: ``python pipelines/csp_lda.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/csp_lda.py                       # CSP+LDA
    python pipelines/csp_lda.py --pipelines CSP+LDA FBCSP+SVM TS+SVM --out results/sd.csv
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl csp-lda`` with the options ``argv`` (default: the command line)."""
    return _run("csp-lda", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
