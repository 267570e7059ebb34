"""Thin script over :mod:`eegmtl.experiments.benchmark`: the same run as ``eegmtl benchmark ...``
(options: ``python pipelines/benchmark.py --help``); it records this command line in its outputs."""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl benchmark`` with the options ``argv`` (default: the command line)."""
    return _run("benchmark", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
