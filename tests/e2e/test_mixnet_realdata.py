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


def test_main_job_writes_its_record_on_real_data(bci2b_dir, tmp_path, monkeypatch):
    """``eegmtl train`` (the README's main job) on one subject for two epochs: one record row
    with the recorded settings' hash, the library versions and the machine it ran on."""
    import json

    import pandas as pd

    from eegmtl._io import config_hash
    from eegmtl.experiments import main as run_experiment
    from eegmtl.mixnet.config import recorded_settings

    monkeypatch.setenv("EEGMTL_DATA_DIR", str(bci2b_dir.parent))
    out = tmp_path / "main.csv"
    assert run_experiment("train", ["--subjects", str(SUBJECT), "--max-epochs", "2",
                                    "--out", str(out)]) == 0
    df = pd.read_csv(out, dtype={"config_hash": str})
    assert len(df) == 1 and df.loc[0, "subject"] == SUBJECT
    assert df.loc[0, "n_epochs_trained"] == 2 and 0.0 <= df.loc[0, "accuracy"] <= 1.0
    settings = recorded_settings(MixNetClassifier(protocol="sd", mtl="blending",
                                                  max_epochs=2).get_params())
    assert json.loads(df.loc[0, "config"]) == json.loads(json.dumps(settings, default=str))
    assert df.loc[0, "config_hash"] == config_hash(json.loads(df.loc[0, "config"]))
    assert json.loads(df.loc[0, "machine"])["cpu"]
