"""Fold-model ensembles (soft vote of the K fold models per subject) from stored predictions.

Thin script over :mod:`eegmtl.experiments.ensemble`: the same run as
``eegmtl ensemble ...`` (options: ``python pipelines/ensemble.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/ensemble.py --predictions-dir pipelines/results/predictions \\
        --pipelines "MixNet[val-tuned]" --results pipelines/results/sd_ensembles.csv
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl ensemble`` with the options ``argv`` (default: the command line)."""
    return _run("ensemble", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
