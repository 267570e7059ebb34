"""``eegmtl bench roofline``: counted work against hand computations, the batch extrapolation
against a direct count, the rates from records, the preset floor, and a run on the committed
records."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from eegmtl.experiments import bench_roofline as br
from eegmtl.experiments import roofline_counts as rc

RESULTS = Path(__file__).resolve().parents[1] / "pipelines" / "results"
EEGNET = {"model": "EEGNet", "model_kwargs": {"D": 2, "F1": 8, "drop_prob": 0.5,
                                              "kernel_length": 125},
          "batch_size": 32, "n_augmentation": 0, "sfreq": 250.0}


def _config(method_config: dict) -> str:
    return json.dumps({"data": "D", "method_config": method_config})


def test_linear_layer_flops_operators_and_bytes_by_hand() -> None:
    """Flatten + Linear(30, 2) at batch 4: forward 2·4·30·2 FLOPs (the bias is elementwise),
    a training step twice that (the weight's gradient; the input needs none), the step's
    operators include the optimiser's, the bytes at least the input's."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(30, 2))
    opt = torch.optim.Adam(net.parameters(), foreach=True)
    rc._count_at(net, opt, 4, 3, 10, train=True)  # optimiser state
    step, ops, nbytes = rc._count_at(net, opt, 4, 3, 10, train=True)
    fv, ov, bv = rc._count_at(net, opt, 4, 3, 10, train=False)
    assert (fv, step) == (2 * 4 * 30 * 2, 2 * 2 * 4 * 30 * 2)
    assert 0 < ov < ops
    assert bv >= 4 * 30 * 4  # the input is read at least once


@pytest.mark.parametrize("groups", [1, 8])
def test_convolution_backward_flops_count_groups(groups: int) -> None:
    """Conv1d(8, 8, 5) on 2 × 100 samples: forward 2·2·8·96·(8/groups)·5 FLOPs, and its
    backward the same again for the input and for the weight gradient (torch's own formula
    counts a depthwise backward 8 times over)."""
    _, flop_counter = rc._counters()
    conv = torch.nn.Conv1d(8, 8, 5, groups=groups, bias=False)
    x = torch.randn(2, 8, 100, requires_grad=True)
    counter = flop_counter()
    with counter:
        out = conv(x)
        forward = counter.get_total_flops()
        out.sum().backward()
    assert forward == 2 * 2 * 8 * 96 * (8 // groups) * 5
    assert counter.get_total_flops() == 3 * forward


def test_counts_extrapolated_from_small_batches_equal_a_direct_count() -> None:
    from eegmtl.eeg.batched_fit import recipe_network, recipe_optimizer
    from eegmtl.eeg.recipes import get_recipe

    c = rc.count_step(EEGNET)
    assert (c.batch_train, c.batch_val) == (32, 32)
    torch.manual_seed(0)
    net = recipe_network(EEGNET, n_chans=3, n_outputs=2, n_times=1000, sfreq=250.0)
    cfg = asdict(get_recipe("EEGNet"))
    opt = recipe_optimizer(cfg, net.parameters())
    for group in opt.param_groups:
        group["foreach"] = True
    rc._count_at(net, opt, 2, 3, 1000, train=True)
    fwd, ops, nbytes = rc._count_at(net, opt, 32, 3, 1000, train=True)
    assert c.flops_train == pytest.approx(fwd, rel=1e-9)
    assert (c.ops_train, c.bytes_train) == (ops, pytest.approx(nbytes, rel=1e-9))
    assert (c.flops_val, c.ops_val, c.bytes_val) == pytest.approx(
        rc._count_at(net, opt, 32, 3, 1000, train=False), rel=1e-9)
    augmented = rc.count_step({**EEGNET, "n_augmentation": 1})
    assert augmented.batch_train == 64 and augmented.flops_train > c.flops_train


def test_recipe_model_of_records() -> None:
    assert rc.recipe_model(_config({"factory": "make_eegnet", "method": "EEGNet"}))["model"] \
        == "EEGNet"
    tc = rc.recipe_model(_config({"model": "TCFormer", "batch_size": 48, "model_kwargs": {},
                                  "augmentation": {"transforms": ["segment_recombine"],
                                                   "n_augmentation": 1}}))
    assert (tc["batch_size"], tc["n_augmentation"]) == (48, 1)
    assert rc.recipe_model(_config({"method": "MixNet", "mtl": "blending"})) is None
    assert rc.recipe_model(_config({"model": "EEGNet", "mtl": "aligned_mtl"})) is None
    assert rc.recipe_model("not json") is None


def test_trainer_model_of_records() -> None:
    mixnet = _config({"method": "MixNet+pcgrad", "mtl": "pcgrad", "device": "cuda",
                      "batch_size": 32})
    assert rc.trainer_model("MixNet+pcgrad", mixnet) == {
        "pipeline": "MixNet+pcgrad", "method_config": {"mtl": "pcgrad", "batch_size": 32}}
    wrapped = _config({"model": "EEGNet", "mtl": "aligned_mtl"})
    assert rc.trainer_model("EEGNet+mtl[aligned_mtl]", wrapped)["pipeline"] \
        == "EEGNet+mtl[aligned_mtl]"
    assert rc.trainer_model("EEGNet", _config({"factory": "make_eegnet"})) is None  # recipe
    assert rc.trainer_model("CSP+LDA", _config({"method": "CSP+LDA"})) is None  # not deep
    assert rc.trainer_model("NoSuchNet", _config({"method": "NoSuchNet"})) is None


def test_trainer_fits_counted_per_epoch_add_up_for_a_longer_fit() -> None:
    """A MixNet fit with PCGrad (per-task gradients through ``torch.autograd.grad``) counted
    at 1 and 2 epochs predicts a 3-epoch fit's count; PCGrad costs more per epoch than
    equal weighting (one more backward pass per task)."""
    data_kw = {"samples": 48, "samples_val": 16}
    spec = {"pipeline": "MixNet+pcgrad",
            "method_config": {"batch_size": 16, "patience": 50, "protocol": "sd",
                              "mtl": "pcgrad"}}
    c = rc.count_fit_epochs(spec, **data_kw)
    assert (c.batch, c.steps_epoch) == (16, 3) and c.flops_epoch > 0 and c.ops_epoch > 0
    rng = np.random.default_rng(0)
    data = (10.0 * rng.standard_normal((48, 3, 1000)), np.arange(48) % 2,
            10.0 * rng.standard_normal((16, 3, 1000)), np.arange(16) % 2)
    flops3, ops3, _ = rc._count_fit(spec, 3, data, seed=0)
    work = rc.trainer_fit_work(c, epochs=3)
    assert work["steps"] == 9
    assert work["flops"] == pytest.approx(flops3, rel=1e-6)
    assert work["ops"] == pytest.approx(ops3, rel=0.02)  # data-dependent branches (mining)
    ew = rc.count_fit_epochs({"pipeline": "MixNet+ew", "method_config": {
        **spec["method_config"], "mtl": "ew"}}, **data_kw)
    assert c.flops_epoch > ew.flops_epoch


def _counts() -> rc.StepCounts:
    return rc.StepCounts(batch_train=32, batch_val=32, flops_train=3e9, ops_train=100,
                         bytes_train=1e8, flops_val=1e9, ops_val=20, bytes_val=2e7)


def test_fit_work_counts_whole_batches_and_every_validation_batch() -> None:
    w = rc.fit_work(_counts(), samples=100, samples_val=40, epochs=10)  # 3 steps, 2 val batches
    assert w == {"steps": 30, "flops": 10 * (3 * 3e9 + 2 * 1e9), "ops": 10 * (3 * 100 + 2 * 20),
                 "bytes": 10 * (3 * 1e8 + 2 * 2e7)}


def _records() -> pd.DataFrame:
    gpu = json.dumps({"gpu": "NVIDIA H200"})
    base = {"protocol": "subject_dependent", "subject": 1, "seed": 0, "samples": 100,
            "samples_val": 40, "n_epochs_trained": 10}
    eegnet = _config({"factory": "make_eegnet"})
    return pd.DataFrame([
        {**base, "pipeline": "EEGNet", "fold": 1, "time": 2.0, "config": eegnet, "machine": gpu},
        {**base, "pipeline": "EEGNet", "fold": 2, "time": 4.0, "config": eegnet, "machine": gpu},
        {**base, "pipeline": "EEGNet", "fold": 3, "time": 99.0, "config": eegnet,
         "machine": json.dumps({"gpu": None})},  # a CPU fit: not a GPU rate
        {**base, "pipeline": "EEGNet", "fold": 4, "time": 99.0, "machine": gpu, "config": _config(
            {"factory": "make_eegnet", "device": "cpu"})},  # forced onto the CPU of a GPU machine
        {**base, "pipeline": "MixNet", "fold": 1, "time": 1.0, "config": _config(
            {"method": "MixNet", "mtl": "blending"}), "machine": gpu},  # not a recipe network
    ])


def _trainer_counts() -> dict[str, rc.EpochCounts]:
    """Counts of the MixNet record of :func:`_records` (100 / 40 trials), made up."""
    key = json.dumps({"pipeline": "MixNet", "method_config": {"mtl": "blending"},
                      "samples": 100, "samples_val": 40}, sort_keys=True)
    return {key: rc.EpochCounts(batch=32, steps_epoch=3, flops_epoch=6e9, ops_epoch=900,
                                bytes_epoch=3e8, flops_setup=1e9, ops_setup=50,
                                bytes_setup=1e7)}


def test_rates_from_records_against_the_peaks() -> None:
    records = _records()
    key = json.dumps(rc.recipe_model(records["config"][0]), sort_keys=True)
    rows = br.roofline_rows(records, workers=16, counts={key: _counts(), **_trainer_counts()})
    mixnet = rows[rows["pipeline"] == "MixNet"].iloc[0]
    assert mixnet["tflops"] == pytest.approx(16 * (1e9 + 10 * 6e9) / 1.0 / 1e12)
    assert mixnet["us_per_op"] == pytest.approx(1e6 * 1.0 / (16 * (50 + 10 * 900)))
    assert (mixnet["ops_per_step"], mixnet["ms_per_step"]) == (300, pytest.approx(1e3 / 30))
    rows = rows[rows["pipeline"] == "EEGNet"].reset_index(drop=True)
    assert int(rows["fits"][0]) == 2
    flops = 10 * (3 * 3e9 + 2 * 1e9)
    assert rows["tflops"][0] == pytest.approx(16 * flops / 3.0 / 1e12)  # median time 3 s
    assert rows["pct_fp32"][0] == pytest.approx(100 * rows["tflops"][0] / 67.0)
    assert rows["us_per_op"][0] == pytest.approx(1e6 * 3.0 / (16 * 10 * 340))
    assert rows["pct_bandwidth"][0] == pytest.approx(
        100 * 16 * 10 * (3e8 + 4e7) / 3.0 / 1e12 / 4.8)
    assert rows["ms_per_step"][0] == pytest.approx(1e3 * 3.0 / 30)


def test_preset_floor_takes_epochs_from_the_other_protocol_where_needed() -> None:
    records = _records()
    si = records.iloc[[0]].assign(protocol="subject_independent", pipeline="CTNet",
                                  samples=1000, samples_val=400)
    records = pd.concat([records, si], ignore_index=True)
    key = json.dumps(rc.recipe_model(records["config"][0]), sort_keys=True)
    peaks = br.DEVICE_PEAKS["H200"]
    floor = br.preset_floor(records, peaks, counts={key: _counts()},
                            fits={"subject_dependent": 135, "subject_independent": 54},
                            pipelines=["EEGNet"])
    tuned = records.iloc[[0]].assign(pipeline="MixNet[val-tuned]", config=_config(
        {"method": "MixNet[val-tuned]", "mtl": "blending"}))
    counts = {k.replace('"MixNet"', '"MixNet[val-tuned]"'): c
              for k, c in _trainer_counts().items()}
    only_sd = br.preset_floor(pd.concat([tuned, si], ignore_index=True), peaks, counts=counts,
                              fits={"subject_dependent": 135, "subject_independent": 54},
                              pipelines=["MixNet[val-tuned]"])
    # a variant with SD settings only: no SI floor borrowed from its SD records
    assert list(only_sd["protocol"]) == ["subject_dependent"]
    assert only_sd["pflop"][0] == pytest.approx(135 * (1e9 + 10 * 6e9) / 1e15)
    sd, si_row = floor.iloc[0], floor.iloc[1]
    assert (sd["source"], si_row["source"]) == ("records", "epochs of subject_dependent")
    assert sd["s_fp32"] == pytest.approx(135 * 10 * (3 * 3e9 + 2 * 1e9) / 67e12)
    # SI: the SI records' trials (1000 / 400 -> 31 steps, 13 validation batches)
    assert si_row["pflop"] == pytest.approx(54 * 10 * (31 * 3e9 + 13 * 1e9) / 1e15)


def test_command_on_the_committed_records(tmp_path: Path) -> None:
    from eegmtl.experiments import main

    out = tmp_path / "roofline"
    assert main("bench-roofline", ["--results", str(RESULTS), "--pipelines", "EEGNet",
                                   "--out", str(out)]) == 0
    fig = json.loads(out.with_suffix(".json").read_text())
    (row,) = [r for r in fig["roofline"] if r["protocol"] == "subject_dependent"]
    assert row["gpu"] == "NVIDIA H200" and 0 < row["pct_fp32"] < 100
    assert {(r["protocol"], r["fits"]) for r in fig["preset_floor"]} == {
        ("subject_dependent", 135), ("subject_independent", 54)}
    assert "Arithmetic floor" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit, match="unknown --device"):
        main("bench-roofline", ["--results", str(RESULTS), "--device", "A100"])


def test_a_gpu_without_known_peaks_gets_rates_and_null_fractions() -> None:
    records = _records().assign(machine=json.dumps({"gpu": "Some Future GPU"}))
    key = json.dumps(rc.recipe_model(records["config"][0]), sort_keys=True)
    rows = br.roofline_rows(records, workers=16, counts={key: _counts(), **_trainer_counts()})
    assert (rows["tflops"] > 0).all() and rows["pct_fp32"].isna().all()
    row = br._records(rows)[0]
    assert row["pct_fp32"] is None and json.dumps(row, allow_nan=False)
