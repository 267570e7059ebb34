"""MixNet ablations on BCIC IV 2b (Tables S1-S3 of the MixNet supplement), chosen on validation.

Thin script over :mod:`eegmtl.experiments.ablations`: the same run as
``eegmtl ablations ...`` (options: ``python pipelines/ablations.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/ablations.py --param margin --protocol sd          # Table S1, SD
    python pipelines/ablations.py --param all --protocol sd --n-jobs 2   # S1 -> S2 -> S3
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl ablations`` with the options ``argv`` (default: the command line)."""
    return _run("ablations", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
