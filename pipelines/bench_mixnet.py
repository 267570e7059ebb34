"""Speed and memory of MixNet (prints figures, not a timed test).

Thin script over :mod:`eegmtl.experiments.bench_mixnet`: the same run as
``eegmtl bench mixnet ...`` (options: ``python pipelines/bench_mixnet.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/bench_mixnet.py                     # subject 4, 1 thread, CPU
    python pipelines/bench_mixnet.py --threads 2 --device cuda --out bench.json
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl bench mixnet`` with the options ``argv`` (default: the command line)."""
    return _run("bench-mixnet", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
