"""Step-time benchmark of the MTL core (thin script over :mod:`eegmtl.experiments.bench_mtl`).

Usage::

    python pipelines/bench_mtl.py --quick            # few rounds, both models
    python pipelines/bench_mtl.py --rounds 40 --threads 2 --model lenet
    python pipelines/bench_mtl.py --methods flat --threads 1 --out pipelines/results/bench_mtl.md
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    from eegmtl.experiments.bench_mtl import add_arguments

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    return add_arguments(parser).parse_args(argv)


def main(args: argparse.Namespace) -> None:
    from eegmtl.experiments.bench_mtl import run

    run(args)


if __name__ == "__main__":
    if "--active-wait" not in sys.argv:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the torch import
    main(_parse())
