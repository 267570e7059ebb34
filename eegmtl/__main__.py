"""``python -m eegmtl``: the same as the ``eegmtl`` command (:mod:`eegmtl.cli`)."""

from __future__ import annotations

import sys

from eegmtl.cli import main

if __name__ == "__main__":
    sys.exit(main())
