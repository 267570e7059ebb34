"""The remaining-time estimate of a protocol run, from the fit times of existing records."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from eegmtl.evaluation.estimate import estimate_remaining, timed_on_gpu


def _plan(rows):
    return pd.DataFrame(rows, columns=["pipeline", "config_hash", "checkpoint"])


RECORDS = pd.DataFrame({
    "pipeline": ["A", "A", "A", "B", "C"],
    "config_hash": ["h1", "h1", "other", "h2", "h3"],
    "time": [100.0, 300.0, 9999.0, 50.0, 10.0],
})


def test_reference_is_same_config_then_same_name_then_none():
    plan = _plan([("A", "h1", False), ("A", "h1", True), ("A", "h1", False),
                  ("B", "new", False), ("Alias", "h3", False), ("D", "hx", False)])
    t = estimate_remaining(plan, RECORDS).set_index("pipeline")
    assert t.loc["A", "basis"] == "same config (2)" and t.loc["A", "fit_s_mean"] == 200.0
    assert t.loc["A", "todo"] == 3 and t.loc["A", "checkpointed"] == 1
    assert t.loc["A", "cpu_h"] == pytest.approx(3 * 200 / 3600)  # the other config's fit unused
    assert t.loc["B", "basis"] == "same name (1)" and t.loc["B", "cpu_h"] == pytest.approx(
        50 / 3600)
    assert t.loc["Alias", "basis"] == "same config (1)"  # an alias of C shares its hash
    assert t.loc["D", "basis"] == "none" and math.isnan(t.loc["D", "cpu_h"])
    out = estimate_remaining(plan, RECORDS)
    assert out.attrs["unknown"] == ["D"]
    assert out.attrs["total_cpu_h"] == pytest.approx((600 + 50 + 10) / 3600)
    known = t.dropna(subset=["fit_s_mean"])
    assert (known["fit_s_min"] <= known["fit_s_mean"]).all()
    assert (known["fit_s_mean"] <= known["fit_s_max"]).all()


def test_empty_plan_and_bad_input():
    empty = estimate_remaining(_plan([]), RECORDS)
    assert empty.empty and empty.attrs["total_cpu_h"] == 0.0
    with pytest.raises(ValueError, match="plan_only=True"):
        estimate_remaining(pd.DataFrame({"pipeline": ["A"]}), RECORDS)
    with pytest.raises(ValueError, match="'time'"):
        estimate_remaining(_plan([("A", "h1", False)]), RECORDS.drop(columns="time"))


def test_same_name_reference_stays_within_the_protocol():
    records = pd.DataFrame({"protocol": ["subject_dependent"] * 2 + ["subject_independent"],
                            "pipeline": ["A", "A", "A"], "config_hash": ["sd1", "sd1", "si1"],
                            "time": [100.0, 100.0, 1200.0]})
    plan = pd.DataFrame({"protocol": ["subject_independent"] * 2 + ["subject_dependent"],
                         "pipeline": ["A"] * 3, "config_hash": ["si-ea"] * 2 + ["sd-ea"],
                         "checkpoint": [False] * 3})
    t = estimate_remaining(plan, records)
    assert t["todo"].tolist() == [1, 2]  # sorted by protocol: SD first
    assert t["fit_s_mean"].tolist() == [100.0, 1200.0]  # never the other protocol's fits
    assert t.attrs["total_cpu_h"] == pytest.approx((100 + 2 * 1200) / 3600)


def test_gpu_recorded_fits_are_not_cpu_reference_times():
    cfg = {dev: json.dumps({"method_config": {"device": dev}}) for dev in ("cpu", "cuda")}
    records = RECORDS.assign(config=[cfg["cpu"], cfg["cuda"], None, cfg["cuda"], cfg["cpu"]])
    assert timed_on_gpu(records).tolist() == [False, True, False, True, False]
    t = estimate_remaining(_plan([("A", "h1", False), ("B", "h2", False)]), records)
    t = t.set_index("pipeline")
    assert t.loc["A", "basis"] == "same config (1)" and t.loc["A", "fit_s_mean"] == 100.0
    assert t.loc["B", "basis"] == "none"  # its only fit ran on a GPU


def test_a_network_fitted_with_device_auto_on_a_gpu_machine_counts_as_a_gpu_fit():
    """Without an explicit device a network picks the GPU of a machine that has one; a
    classical pipeline (or any fit on a machine without a GPU) stays a CPU fit."""
    auto = json.dumps({"method_config": {}})
    gpu, cpu = json.dumps({"gpu": "NVIDIA H100"}), json.dumps({"gpu": None})
    records = pd.DataFrame({
        "pipeline": ["EEGNet", "EEGNet", "CSP+LDA", "MixNet+EA", "NoSuchNet", "EEGNet"],
        "config": [auto, auto, auto, json.dumps({"method_config": {"device": "auto"}}), auto,
                   json.dumps({"method_config": {"device": "cpu"}})],
        "machine": [gpu, cpu, gpu, gpu, gpu, gpu]})
    assert timed_on_gpu(records).tolist() == [True, False, False, True, False, False]
    # no machine column: as before, only an explicit accelerator counts
    assert not timed_on_gpu(records.drop(columns="machine")).any()
