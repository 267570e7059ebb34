"""Method registry: names, protocol defaults, lazy factories, and a real-data end-to-end run."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from eegmtl._io import config_hash
from eegmtl.evaluation.catalog import VALIDATION_TUNED
from eegmtl.evaluation.methods import (
    MethodSpec,
    available_methods,
    default_config,
    get_method,
    make_estimator,
)

REQUIRED = ["MixNet", "MixNet+ew", "MixNet+rlw", "MixNet+aligned_mtl", "MixNet+pcgrad",
            "MixNet+cagrad", "MixNet+f-pcgrad", "MIN2Net", "FBCSP+SVM", "CSP+LDA", "TS+SVM",
            "EEGNet", "ShallowFBCSPNet"]


def test_registry_has_every_compared_method():
    assert set(REQUIRED) <= set(available_methods())
    with pytest.raises(KeyError, match="unknown method"):
        get_method("NoSuchNet")


def test_protocol_defaults_follow_the_reference():
    sd, si = default_config("MixNet", "sd"), default_config("MixNet", "subject_independent")
    assert (sd["batch_size"], si["batch_size"]) == (32, 100)
    assert (sd["latent_dim"], si["latent_dim"]) == (4, 18)
    assert config_hash(sd) != config_hash(si)
    spec = get_method("MixNet", "sd", max_epochs=3)
    assert isinstance(spec, MethodSpec) and spec.config["max_epochs"] == 3
    assert spec.with_config(lr=0.5).config["lr"] == 0.5 and spec.config["lr"] == 1e-3
    variants = {n: default_config(n, "sd") for n in REQUIRED if n.startswith("MixNet")}
    assert len({config_hash(c) for c in variants.values()}) == len(variants)


def test_val_tuned_settings_are_the_committed_validation_choice():
    """``MixNet[val-tuned]`` must hold what ``pipelines/ablations.py`` chose on validation."""
    summary = (Path(__file__).resolve().parents[2] / "pipelines" / "results"
               / "ablations_sd_summary.md").read_text()
    m = re.search(r"Final setting: margin = ([\d.]+), latent = (\d+), warm-up = (\d+)", summary)
    assert m, "ablations_sd_summary.md has no 'Final setting' line"
    chosen = {"margin": float(m[1]), "latent_dim": int(m[2]), "warmup": int(m[3])}
    assert VALIDATION_TUNED["subject_dependent"] == chosen
    cfg = default_config("MixNet[val-tuned]", "sd")
    assert {k: cfg[k] for k in chosen} == chosen and cfg["mtl"] == "blending"
    with pytest.raises(ValueError, match="validation"):
        default_config("MixNet[val-tuned]", "si")


def test_baseline_factory_builds_an_unfitted_pipeline():
    pytest.importorskip("mne")
    est = make_estimator("CSP+LDA")
    assert not hasattr(est, "classes_") and hasattr(est, "fit")
    with pytest.raises(TypeError, match="unknown option"):
        make_estimator("CSP+LDA", {"n_componentz": 2})


needs_estimator = pytest.mark.skipif(
    importlib.util.find_spec("eegmtl.mixnet.classifier") is None,
    reason="eegmtl.mixnet.classifier (MixNetClassifier) not available",
)


@needs_estimator
def test_mixnet_methods_build_estimators():
    for name in REQUIRED:
        if not (name.startswith("MixNet") or name == "MIN2Net"):
            continue
        for protocol, batch in (("sd", 32), ("si", 100)):
            est = make_estimator(name, {"max_epochs": 1}, protocol=protocol)
            params = est.get_params()
            assert params["max_epochs"] == 1 and params["batch_size"] == batch
            assert params["protocol"] == protocol
    assert make_estimator("MixNet+f-pcgrad").get_params()["mtl"] == "f-pcgrad"
    min2net = make_estimator("MIN2Net").get_params()
    assert (min2net["input"], min2net["mtl"], min2net["loss_weights"]) == (
        "time", "fixed", [0.5, 0.1, 1.0])
    with pytest.raises(TypeError, match="unknown option"):
        make_estimator("MixNet", {"latent": 8})


@needs_estimator
def test_mixnet_end_to_end_two_epochs(tmp_path):
    """The real MixNetClassifier through run_protocol: 1 subject, 1 fold, 2 epochs."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import pandas as pd
    from evaluation_synth import synthetic_data

    from eegmtl.evaluation import load_records, run_protocol
    from eegmtl.evaluation.plots import task_weights_plot

    data = synthetic_data(n_times=1000, n_subjects=1, n_trials=40)  # 96 train / 24 val / 80 test
    df = run_protocol("sd", ["MixNet"], subjects=[1], data=data, folds=[1], progress=False,
                      method_params={"MixNet": {"max_epochs": 2, "device": "cpu"}},
                      results_path=tmp_path / "r.csv", history_dir=tmp_path / "hist",
                      predictions_dir=tmp_path / "pred", torch_threads=1)
    r = load_records(tmp_path / "r.csv").iloc[0]
    assert len(df) == 1 and r.n_epochs_trained == 2 and r.samples_val == 24
    # the recorded test scores are those of the stored per-trial predictions
    from sklearn.metrics import accuracy_score, roc_auc_score

    pred = pd.read_csv(next((tmp_path / "pred").glob("*_predictions.csv")))
    assert len(pred) == r.samples_test == 80
    assert r.accuracy == pytest.approx(accuracy_score(pred.y_true, pred.y_pred))
    classes = sorted(pred.y_true.unique())
    assert r.roc_auc == pytest.approx(
        roc_auc_score(pred.y_true == classes[1], pred[f"score_{classes[1]}"]))
    weights = sorted((tmp_path / "hist").glob("*_weights.csv"))
    assert len(weights) == 1
    fig = task_weights_plot(pd.read_csv(weights[0]), x="step")
    assert len(fig.axes[0].get_lines()) == 3  # one trajectory per MixNet task


@pytest.mark.realdata
def test_real_data_csp_lda_one_subject_one_fold(bci2b_dir, tmp_path):
    from eegmtl.eeg.datasets import load_bci2b
    from eegmtl.evaluation import load_records, run_protocol

    data = load_bci2b(source="export", subjects=[1], units="uV")
    df = run_protocol("sd", ["CSP+LDA"], subjects=[1], data=data, folds=[1],
                      results_path=tmp_path / "sd.csv", progress=False)
    r = load_records(tmp_path / "sd.csv").iloc[0]
    assert (r.samples, r.samples_val, r.samples_test) == (288, 72, 240)
    # CSP+LDA on S1 trained on all 360 trials scores 0.642 (pipelines/results/csp_lda_sd.csv)
    assert 0.55 < r.accuracy < 0.75 and np.isfinite(r.roc_auc)
    assert len(df) == 1 and df.pipeline.item() == "CSP+LDA"


def test_method_error_names_the_wrong_part_and_suggests_close_names():
    from eegmtl.evaluation.methods import lookup, method_error

    for ok in ("MixNet", "MixNet[best]", "EEGNet+mtl[aligned_mtl]+aug",
               "MixNet[best]+arch[mmoe]"):
        assert method_error(ok) is None, ok
    assert method_error("ATCnet").startswith("did you mean 'ATCNet'?")
    assert "unknown MTL method 'foo'" in method_error("EEGNet+mtl[foo]")
    assert "unknown augmentation(s) ['bar']" in method_error("EEGNet+aug[bar]")
    assert "unknown architecture 'xyz'" in method_error("MixNet[best]+arch[xyz]")
    # an alias composes as the name it stands for
    best = "MixNet[val-tuned]+mtl[aligned_mtl]+aug"
    assert lookup("MixNet[best]+arch[mmoe]")[1]("subject_dependent") == lookup(
        best + "+arch[mmoe]")[1]("subject_dependent")
    assert f"stands for '{best}'" in method_error("MixNet[best]+aug")


def test_protocol_cli_lists_every_invalid_method_before_loading_data(monkeypatch):
    from eegmtl import cli

    monkeypatch.setenv("EEGMTL_DATA_DIR", "/nonexistent")
    with pytest.raises(SystemExit) as exc:
        cli.main(["sd", "--methods", "EEGNet", "ATCnet", "EEGNet+mtl[foo]", "--subjects", "1"])
    text = str(exc.value.code)
    assert "ATCnet: did you mean 'ATCNet'?" in text and "EEGNet+mtl[foo]: unknown MTL" in text
    assert "EEGNet:" not in text
