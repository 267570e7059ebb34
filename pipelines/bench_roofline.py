"""Thin script over :mod:`eegmtl.experiments.bench_roofline`: the same run as
``eegmtl bench roofline ...`` (options: ``python pipelines/bench_roofline.py --help``); it
records this command line in its outputs."""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl bench roofline`` with the options ``argv`` (default: the command line)."""
    return _run("bench-roofline", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
