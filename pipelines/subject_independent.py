"""Subject-independent (SI) evaluation on BCIC IV 2b: every method on the same splits.

Protocol (MixNet paper; ``eegmtl.evaluation.protocols``): each subject is held out in turn and
tested on its sessions 4-5; the other 8 subjects are split **by subject** into 5 folds
(validation groups of 2, 2, 2, 1, 1 subjects, as the reference code); training pools sessions
1-5 of the remaining subjects, validation pools sessions 1-5 of the fold's validation subjects.
9 target subjects x 5 folds = 45 fits per method and seed.

Same options, record format, resume behaviour and summary as ``subject_dependent.py`` (records
``pipelines/results/si.csv``, summary ``pipelines/results/si_summary.md``).

Usage::

    python pipelines/subject_independent.py --methods CSP+LDA TS+SVM FBCSP+SVM EEGNet
    python pipelines/subject_independent.py --methods MixNet --n-jobs 2
    python pipelines/subject_independent.py --quick
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from subject_dependent import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(protocol="subject_independent"))
