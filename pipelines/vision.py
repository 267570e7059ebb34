"""MultiMNIST-family benchmarks for the MTL methods: run a grid, write records and a summary.

Thin script over :mod:`eegmtl.experiments.vision`: the same run as
``eegmtl vision ...`` (options: ``python pipelines/vision.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/vision.py --epochs 3 --n-train 15000 --threads 1 --shard 0/2 &
    python pipelines/vision.py --epochs 3 --n-train 15000 --threads 1 --shard 1/2 &
    python pipelines/vision.py --summary-only        # regenerate vision_summary.md
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl vision`` with the options ``argv`` (default: the command line)."""
    return _run("vision", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
