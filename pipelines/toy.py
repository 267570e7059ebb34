"""Two-task landscape (CAGrad / Nash-MTL / Aligned-MTL toy): trajectories, plot and table.

Thin script over :mod:`eegmtl.experiments.toy`: the same run as
``eegmtl toy ...`` (options: ``python pipelines/toy.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/toy.py                      # all methods, scales 0.1 0.3 0.5, 35k iters
    python pipelines/toy.py --n-iter 2000 --methods ew aligned_mtl --scales 0.5
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl toy`` with the options ``argv`` (default: the command line)."""
    return _run("toy", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
