"""Short real-data run of MixNetClassifier on BCIC IV 2b (competition split, one subject).

Subject 4, trained on sessions 1-3 (360 trials, 20 % stratified internal validation), tested on
sessions 4-5 (240 trials), with MixNet's default settings except ``max_epochs=8`` so the test
runs in well under a minute on a CPU. Measured (``random_state`` 0 / 1 / 2, 1 thread): test
accuracy 0.975 / 0.938 / 0.933 (CSP+LDA on this subject: 0.94), so the 0.80 threshold has a wide
margin while still failing for a broken pipeline (chance is 0.5).
"""

from __future__ import annotations

import numpy as np
import pytest

from eegmtl.mixnet import MixNetClassifier

pytestmark = pytest.mark.realdata

SUBJECT = 4


@pytest.fixture(scope="module")
def split(bci2b_dir):
    from eegmtl.eeg.datasets import load_bci2b

    X, y, meta = load_bci2b(subjects=SUBJECT, path=bci2b_dir, units="uV")
    train = meta["session_index"].to_numpy() <= 3
    return X[train], y[train], X[~train], y[~train]


def test_beats_chance_on_evaluation_sessions(split):
    X_tr, y_tr, X_te, y_te = split
    assert X_tr.shape == (360, 3, 1000) and X_te.shape == (240, 3, 1000)
    est = MixNetClassifier(max_epochs=8, random_state=0).fit(X_tr, y_tr)
    acc = est.score(X_te, y_te)
    assert acc > 0.80, f"subject {SUBJECT} test accuracy {acc:.3f}"
    assert est.n_epochs_trained_ == 8


def test_same_seed_same_predictions_on_real_data(split):
    X_tr, y_tr, X_te, _ = split
    a = MixNetClassifier(max_epochs=2, random_state=7).fit(X_tr, y_tr)
    b = MixNetClassifier(max_epochs=2, random_state=7).fit(X_tr, y_tr)
    np.testing.assert_array_equal(a.predict_proba(X_te), b.predict_proba(X_te))
