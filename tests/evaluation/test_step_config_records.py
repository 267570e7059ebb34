"""EEG records carry the fitted estimator's resolved step settings (``gradient_mode``,
``step_config``) as columns outside the config hash."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from eegmtl.evaluation.runner import run_protocol

sys.path.insert(0, str(Path(__file__).parent))
from evaluation_synth import log_variance, logvar_lr, synthetic_data  # noqa: E402


class StepConfigured(LogisticRegression):
    """Logistic regression exposing a ``step_config_`` as MixNet does."""

    def fit(self, X, y):
        super().fit(X, y)
        self.step_config_ = {"gradient_mode": "loop", "flat": None, "autocast": None}
        return self


def test_records_hold_the_step_config_outside_the_config(tmp_path):
    data = synthetic_data()
    kw = dict(subjects=[1], data=data, folds=[1], progress=False)
    est = make_pipeline(FunctionTransformer(log_variance), StepConfigured())
    df = run_protocol("sd", {"m": est}, results_path=tmp_path / "a.csv", **kw)
    assert list(df["gradient_mode"]) == ["loop"]
    assert json.loads(df["step_config"].iloc[0])["gradient_mode"] == "loop"
    plain = run_protocol("sd", {"m": logvar_lr()}, results_path=tmp_path / "b.csv", **kw)
    assert plain["gradient_mode"].isna().all()  # no step: the column stays empty
    assert "gradient_mode" not in df["config"].iloc[0]  # recorded beside the hash, not in it


def test_mixnet_exposes_its_resolved_step_config():
    from eegmtl import MixNetClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 3, 1000))
    y = np.repeat([0, 1], 12)
    est = MixNetClassifier(max_epochs=1, mtl="pcgrad", device="cpu").fit(X, y)
    assert est.step_config_["gradient_mode"] in ("vmap", "loop")
    assert est.step_config_["aggregator"] == "PCGrad"
