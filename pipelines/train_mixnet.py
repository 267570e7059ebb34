"""Train MixNet subject-dependently on BCIC IV 2b with the competition split.

Thin script over :mod:`eegmtl.experiments.train_mixnet`: the same run as
``eegmtl train ...`` (options: ``python pipelines/train_mixnet.py --help``);
it records this command line in its outputs.

Usage::

    python pipelines/train_mixnet.py                         # all 9 subjects
    python pipelines/train_mixnet.py --subjects 4 8 --max-epochs 50
    python pipelines/train_mixnet.py --quick                 # subject 4, 5 epochs
"""

from __future__ import annotations

import sys

from eegmtl.experiments import main as _run


def main(argv: list[str] | None = None) -> int:
    """Run ``eegmtl train`` with the options ``argv`` (default: the command line)."""
    return _run("train", argv, via_script=True)


if __name__ == "__main__":
    sys.exit(main())
