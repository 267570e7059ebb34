"""Cross-subject evaluation of registry pipelines by MOABB, with its target-access modes.

Thin script over :mod:`eegmtl.experiments.moabb_cross_subject`: the same run as
``eegmtl moabb-si ...`` (options: ``python pipelines/moabb_cross_subject.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/moabb_cross_subject.py --methods CSP+LDA TS+SVM --subjects 1..9
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl moabb-si`` with the options ``argv`` (default: the command line)."""
    return _run("moabb-si", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
