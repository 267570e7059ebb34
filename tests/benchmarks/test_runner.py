"""eegmtl.benchmarks.runner and .records: records schema, resume, Δp vs EW, selection on
validation."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

from eegmtl.benchmarks import runner
from eegmtl.benchmarks.datasets import MultiTaskSplits, MultiTaskTensorDataset
from eegmtl.benchmarks.records import COLUMNS, fill_delta_p, write_records
from eegmtl.benchmarks.runner import run_benchmark
from eegmtl.models.fast_conv import builtin_conv_backward
from eegmtl.mtl.callbacks import Callback
from eegmtl.mtl.metrics import delta_p

SCHEMA = ("benchmark", "dataset", "model", "method", "seed", "epochs", "task", "accuracy",
          "avg_accuracy", "delta_p", "brier", "ece", "entropy", "conflict_rate", "time",
          "config_hash", "config")


def _fake_dataset(n: int, seed: int) -> MultiTaskTensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n, 2), generator=g)
    x = torch.rand(n, 1, 36, 36, generator=g) * 0.2
    # make the labels learnable: a bright patch whose position encodes each label
    for i in range(n):
        x[i, 0, y[i, 0], :8] = 1.0
        x[i, 0, 26 + y[i, 1] // 2, 28 + y[i, 1] % 2 * 4:] = 1.0
    return MultiTaskTensorDataset(x, {"left": y[:, 0], "right": y[:, 1]})


class _Watched(MultiTaskTensorDataset):
    """Test split that logs every access to its data."""

    def __init__(self, ds: MultiTaskTensorDataset, events: list[str]) -> None:
        self._x, self._t, self._events = ds.x, ds.targets, events

    @property
    def x(self):  # type: ignore[override]
        self._events.append("test")
        return self._x

    @x.setter
    def x(self, value):  # pragma: no cover - not used
        self._x = value

    @property
    def targets(self):  # type: ignore[override]
        self._events.append("test")
        return self._t

    @targets.setter
    def targets(self, value):  # pragma: no cover - not used
        self._t = value


@pytest.fixture
def splits() -> MultiTaskSplits:
    return MultiTaskSplits(
        train=_fake_dataset(512, 0), val=_fake_dataset(128, 1), test=_fake_dataset(128, 2),
        task_names=("left", "right"),
    )


def _run(splits, tmp_path, method, **kw):
    args = dict(epochs=1, splits=splits, device="cpu", results_path=tmp_path / "res.csv",
                conflict_every=2, threads=1)
    args.update(kw)
    return run_benchmark("multimnist", method=method, **args)


def test_smoke_records_have_all_schema_columns(splits, tmp_path):
    ew = _run(splits, tmp_path, "ew")
    flat = _run(splits, tmp_path, "f-pcgrad")
    table = pd.read_csv(tmp_path / "res.csv")
    assert set(SCHEMA) <= set(table.columns)
    assert list(table.columns[: len(SCHEMA)]) == list(SCHEMA)
    assert len(table) == 6 and set(table["task"]) == {"left", "right", "avg"}
    for rec, method in ((ew, "ew"), (flat, "f-pcgrad")):
        assert set(rec["method"]) == {method}
        per_task = rec[rec["task"] != "avg"]
        avg = rec[rec["task"] == "avg"].iloc[0]
        assert avg["accuracy"] == pytest.approx(per_task["accuracy"].mean())
        assert avg["avg_accuracy"] == pytest.approx(avg["accuracy"])
        # one probed mini-batch: the rate is exactly 0 (no conflict) or 1 (conflict)
        assert avg["n_conflict_probes"] == 1 and avg["conflict_rate"] in (0.0, 1.0)
        for col in ("brier", "ece", "entropy"):
            assert np.isfinite(rec[col]).all() and (rec[col] >= 0).all()
        assert (rec["entropy"] <= math.log(10) + 1e-9).all()
        cfg = json.loads(avg["config"])
        assert cfg["method"] == method and cfg["n_train"] is None
        assert avg["n_train"] == 512 and avg["n_val"] == 128 and avg["n_test"] == 128
    cfg = json.loads(flat["config"].iloc[0])
    assert cfg["flat"]["rho"] == 2.0 and cfg["flat"]["adaptive"] and cfg["flat"]["norm"] == "joint"
    assert cfg["aggregator"] == "pcgrad"
    # Δp: EW is the reference (0), the flat run gets a finite value against it
    assert (ew["delta_p"] == 0).all()
    expected = delta_p(
        dict(zip(flat["task"][flat["task"] != "avg"], flat["accuracy"][flat["task"] != "avg"])),
        dict(zip(ew["task"][ew["task"] != "avg"], ew["accuracy"][ew["task"] != "avg"])), True,
    )
    assert flat["delta_p"].iloc[0] == pytest.approx(expected)
    assert ew["config_hash"].iloc[0] != flat["config_hash"].iloc[0]
    assert ew["protocol_hash"].iloc[0] == flat["protocol_hash"].iloc[0]


def test_resume_skips_finished_runs(splits, tmp_path, monkeypatch):
    first = _run(splits, tmp_path, "rlw", n_train=256)

    def boom(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner.Trainer, "fit", boom)
    again = _run(splits, tmp_path, "rlw", n_train=256)
    pd.testing.assert_frame_equal(
        first[list(SCHEMA)].reset_index(drop=True), again[list(SCHEMA)].reset_index(drop=True),
        check_dtype=False,
    )
    assert len(pd.read_csv(tmp_path / "res.csv")) == 3
    with pytest.raises(AssertionError, match="trained again"):  # another config is not skipped
        _run(splits, tmp_path, "rlw", n_train=128)
    with pytest.raises(AssertionError, match="trained again"):  # resume=False retrains
        _run(splits, tmp_path, "rlw", n_train=256, resume=False)


def _hand_rows(method, ph, seed, left, right, chash):
    rows = [{"task": "left", "accuracy": left}, {"task": "right", "accuracy": right},
            {"task": "avg", "accuracy": (left + right) / 2}]
    return [{c: None for c in COLUMNS} | r | {
        "method": method, "protocol_hash": ph, "seed": seed, "config_hash": chash,
        "dataset": "multi_mnist", "model": "lenet", "delta_p": 123.0} for r in rows]


def test_delta_p_against_ew_of_same_protocol_and_seed(tmp_path):
    rows = (
        _hand_rows("ew", "A", 0, 0.90, 0.80, "h1")
        + _hand_rows("pcgrad", "A", 0, 0.945, 0.84, "h2")      # +5 %, +5 %  -> +5
        + _hand_rows("rlw", "A", 0, 0.99, 0.72, "h3")          # +10 %, -10 % -> 0
        + _hand_rows("ew", "A", 1, 0.50, 0.50, "h4")
        + _hand_rows("pcgrad", "A", 1, 0.55, 0.45, "h5")       # +10 %, -10 % -> 0
        + _hand_rows("cagrad", "A", 1, 0.60, 0.50, "h6")       # +20 %, 0   -> +10
        + _hand_rows("pcgrad", "B", 0, 0.99, 0.99, "h7")       # no EW with protocol B -> NaN
    )
    df = fill_delta_p(pd.DataFrame(rows))
    got = df.groupby("config_hash")["delta_p"].agg(["min", "max"])
    assert (got["min"].fillna(-1) == got["max"].fillna(-1)).all()  # same value on every row
    dp = got["min"]
    assert dp["h1"] == pytest.approx(0.0) and dp["h4"] == pytest.approx(0.0)
    assert dp["h2"] == pytest.approx(5.0)
    assert dp["h3"] == pytest.approx(0.0, abs=1e-9)
    assert dp["h5"] == pytest.approx(0.0, abs=1e-9)
    assert dp["h6"] == pytest.approx(10.0)
    assert math.isnan(dp["h7"])
    # the file writer recomputes Δp whatever order the runs arrive in
    write_records(tmp_path / "r.csv", pd.DataFrame(rows[3:9]))
    table = write_records(tmp_path / "r.csv", pd.DataFrame(rows[:3]))
    assert table.loc[table["config_hash"] == "h2", "delta_p"].iloc[0] == pytest.approx(5.0)


def test_selection_on_validation_test_touched_only_after_fit(splits, tmp_path, monkeypatch):
    events: list[str] = []
    splits.test = _Watched(splits.test, events)
    seen = {}
    orig_fit = runner.Trainer.fit

    def fit(self, *args, **kwargs):
        events.append("fit-start")
        out = orig_fit(self, *args, **kwargs)
        events.append("fit-end")
        seen["trainer"] = self
        return out

    monkeypatch.setattr(runner.Trainer, "fit", fit)
    rec = _run(splits, tmp_path, "pcgrad", epochs=3, n_train=256)
    assert events.index("fit-end") < events.index("test")
    assert "test" not in events[: events.index("fit-end")]
    trainer = seen["trainer"]
    assert trainer.monitor == "val_avg_accuracy" and trainer.mode == "max"
    hist = trainer.history_frame()
    assert len(hist) == 3 and "val_avg_accuracy" in hist
    assert not any(c.startswith("test") for c in hist.columns)
    best = int(np.argmax(hist["val_avg_accuracy"].to_numpy()))
    avg = rec[rec["task"] == "avg"].iloc[0]
    assert avg["best_epoch"] == best
    assert avg["val_avg_accuracy"] == pytest.approx(hist["val_avg_accuracy"].max())
    assert "validation" in json.loads(avg["config"])["selection"]


#: Records of small runs (3 epochs, batch 32, conflict probe every 3rd step, seed 1) made by the
#: runner before it moved to trainer callbacks (``_SelectionTrainer`` subclass and a step proxy
#: probing with its own passes): left / right test accuracy, avg Brier, avg ECE, conflict rate,
#: best epoch, best validation avg accuracy. pcgrad and f-pcgrad now read the conflict from the
#: step's own matrix; ew, rlw and rgw (representation level) still probe with extra passes.
BEFORE_CALLBACKS = {
    "ew": (0.09375, 0.1640625, 0.8945012118573756, 0.035778032108004315, 0.375, 2, 0.1328125),
    "rlw": (0.0859375, 0.0625, 0.9002306173204128, 0.04583345742954144, 0.5, 2, 0.12890625),
    "pcgrad": (0.09375, 0.1484375, 0.8941276337384001, 0.028687412787907682, 0.3125, 2,
               0.140625),
    "f-pcgrad": (0.125, 0.0625, 0.8984096036501171, 0.03482930487347402, 0.3125, 2,
                 0.1640625),
    "rgw": (0.09375, 0.0625, 0.9032410302315047, 0.034874307007742814, 0.5, 0, 0.12890625),
}


#: SIMD level (``torch.backends.cpu.get_cpu_capability()``) of the machine that made
#: BEFORE_CALLBACKS. Elsewhere the kernels round differently (an AVX512 machine: test accuracies
#: one or two of 128 samples apart after 3 epochs), so the records are compared with a
#: tolerance that still catches a changed training loop.
GOLDEN_CPU = "AVX2"


@pytest.mark.parametrize("method", sorted(BEFORE_CALLBACKS))
def test_records_equal_those_before_the_callback_runner(splits, method):
    """Same records (to float rounding) as the pre-callback runner, whatever ran before in
    the process: the run seeds the model initialisation itself."""
    same_cpu = torch.backends.cpu.get_cpu_capability() == GOLDEN_CPU
    acc_tol, brier_rel, ece_tol = (1e-9, 1e-6, None) if same_cpu else (0.02, 2e-3, 0.006)
    torch.manual_seed(12345)  # a different global state must not matter
    with builtin_conv_backward():  # the records were made with nn.Conv2d's own backward
        rec = run_benchmark("multimnist", method=method, epochs=3, batch_size=32,
                            splits=splits, device="cpu", conflict_every=3, threads=1, seed=1)
    by_task = rec.set_index("task")
    left, right, brier, ece, conflict, best, val = BEFORE_CALLBACKS[method]
    assert by_task.loc["left", "accuracy"] == pytest.approx(left, abs=acc_tol)
    assert by_task.loc["right", "accuracy"] == pytest.approx(right, abs=acc_tol)
    assert by_task.loc["avg", "brier"] == pytest.approx(brier, rel=brier_rel)
    assert by_task.loc["avg", "ece"] == (pytest.approx(ece, rel=1e-5) if same_cpu
                                         else pytest.approx(ece, abs=ece_tol))
    assert by_task.loc["avg", "conflict_rate"] == pytest.approx(conflict)
    assert by_task.loc["avg", "n_conflict_probes"] == 16  # 48 steps, every 3rd
    assert by_task.loc["avg", "best_epoch"] == best
    assert by_task.loc["avg", "val_avg_accuracy"] == pytest.approx(val, abs=acc_tol)


def test_history_file_has_one_row_per_epoch(splits, tmp_path):
    from eegmtl.benchmarks.records import load_history

    rec = _run(splits, tmp_path, "pcgrad", epochs=2, history_path=tmp_path / "hist.csv")
    hist = load_history(tmp_path / "hist.csv")
    assert list(hist["epoch"]) == [0, 1]
    assert set(hist["config_hash"]) == {rec["config_hash"].iloc[0]}
    avg = rec[rec["task"] == "avg"].iloc[0]
    assert hist["val_avg_accuracy"].max() == pytest.approx(avg["val_avg_accuracy"])
    assert {"val_left_accuracy", "val_right_accuracy", "time"} <= set(hist.columns)


class _SlowThenCrash(Callback):
    """Sleeps at the end of each epoch (inside the epoch's wall time); crashes when epoch
    ``crash_at`` begins, if set."""

    def __init__(self, sleep: float, crash_at: int | None) -> None:
        self.sleep, self.crash_at = sleep, crash_at

    def on_epoch_begin(self, trainer, epoch):
        if epoch == self.crash_at:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer, epoch, record):
        time.sleep(self.sleep)


def test_resumed_run_records_the_wall_time_of_the_whole_fit(splits, tmp_path):
    from eegmtl.benchmarks.records import load_history

    kw = dict(epochs=3, n_train=128, checkpoint_dir=tmp_path / "ck",
              history_path=tmp_path / "hist.csv")
    with pytest.raises(KeyboardInterrupt):  # two slow epochs, then interrupted
        _run(splits, tmp_path, "ew", callbacks=[_SlowThenCrash(0.4, crash_at=2)], **kw)
    assert not (tmp_path / "res.csv").exists()
    rec = _run(splits, tmp_path, "ew", callbacks=[_SlowThenCrash(0.0, crash_at=None)], **kw)
    hist = load_history(tmp_path / "hist.csv")
    assert list(hist["epoch"]) == [0, 1, 2]
    assert hist["time"].iloc[:2].min() >= 0.4  # the restored epochs keep their wall times
    fit = float(rec.loc[rec["task"] == "avg", "time"].iloc[0])
    assert fit >= hist["time"].sum()  # not only the epoch run after the resume


def test_bad_arguments_raise_clear_errors(splits, tmp_path):
    with pytest.raises(ValueError, match="MultiMNIST family"):
        run_benchmark("nyuv2", splits=splits)
    with pytest.raises(ValueError, match="unknown MTL method"):
        _run(splits, tmp_path, "not_a_method")
    with pytest.raises(ValueError, match="n_train"):
        _run(splits, tmp_path, "ew", n_train=10_000)
    with pytest.raises(ValueError, match="protocol"):
        _run(splits, tmp_path, "ew", protocol="nope")


@pytest.mark.slow
def test_real_multimnist_subset(vision_data_dir, tmp_path):
    rec = run_benchmark(
        "multifashion_mnist", method="f-cagrad", epochs=1, n_train=512, n_val=128, n_test=256,
        data_kwargs={"n_train": 2000, "n_test": 500, "cache_dir": str(tmp_path / "cache")},
        device="cpu", results_path=tmp_path / "res.csv", threads=1,
    )
    assert set(rec["dataset"]) == {"multi_fashion_mnist"} and len(rec) == 3


def test_pipeline_summary_claims_table_from_records():
    from eegmtl.experiments import vision_summary as vision

    preset = {"rho": 2.0, "adaptive": True, "norm": "joint", "rho_heads": None, "eps": 1e-12}
    sam = {**preset, "rho": 0.05, "adaptive": False, "norm": "separate"}
    base = {"protocol": "lenet", "optimizer": "adam", "lr": 1e-3, "scheduler": None,
            "batch_size": 256, "n_train": 15000, "selection": "best validation", "flat": None,
            "conflict_every": 5}
    runs = [("ew", None, 0.80, 0.70), ("rlw", None, 0.81, 0.71), ("pcgrad", None, 0.80, 0.72),
            ("f-pcgrad", preset, 0.78, 0.70), ("f-pcgrad", sam, 0.82, 0.74)]
    rows = []
    for i, (m, flat, a, b) in enumerate(runs):
        cfg = json.dumps({**base, "flat": flat})
        for task, acc in (("left", a), ("right", b), ("avg", (a + b) / 2)):
            rows.append({c: 0.0 for c in COLUMNS} | {
                "benchmark": "multimnist", "dataset": "multi_mnist", "model": "lenet",
                "method": m, "seed": 0, "epochs": 3, "task": task, "accuracy": acc,
                "avg_accuracy": (a + b) / 2, "config": cfg, "config_hash": f"h{i}",
                "protocol_hash": "p", "n_train": 15000, "n_val": 12000, "n_test": 20000,
                "device": "cpu"})
    text = vision.summarize(fill_delta_p(pd.DataFrame(rows)))
    assert "| f-pcgrad > pcgrad | MultiMNIST | 74.00 | 76.00 | -2.00 | +0.86 | no |" in text
    assert "| f-pcgrad [SAM ρ=0.05, separate norm] > pcgrad | MultiMNIST | 78.00 | 76.00 | " \
        "+2.00 | +0.86 | yes |" in text
    assert "| rlw ≥ ew | MultiMNIST | 76.00 | 75.00 | +1.00 | – | yes |" in text
    assert "**3 epochs**" in text and "**15000**" in text
    assert "4 of 39" in text and "1 other runs" in text  # default 3 × 13 grid + 1 ablation
    assert "Agreement: 2 of 3 comparisons (1 of 2 with the default settings; 1 of 1" in text


def test_rewriting_the_committed_records_changes_no_byte(tmp_path):
    """Merging a committed run again (same key) rewrites the file byte for byte."""
    import shutil
    from pathlib import Path

    committed = Path(__file__).resolve().parents[2] / "pipelines" / "results" / "vision_lenet.csv"
    if not committed.is_file():
        pytest.skip("no committed vision records in this checkout")
    path = tmp_path / committed.name
    shutil.copy2(committed, path)
    table = runner.load_records(path)
    again = table[table["config_hash"] == table["config_hash"].iloc[-1]]
    runner.write_records(path, again)
    assert path.read_bytes() == committed.read_bytes()


@pytest.mark.parametrize("method", ["rlw", "f-pcgrad"])
def test_longer_budget_extends_the_shorter_run_exactly(splits, tmp_path, method):
    """A 4-epoch run started where the 2-epoch run's checkpoint left off equals a fresh
    4-epoch run: records, best epoch and the whole per-epoch history (random weights and the
    flat step's perturbation included)."""
    from eegmtl.benchmarks.records import load_history

    common = dict(n_train=128, threads=1)
    short = _run(splits, tmp_path, method, epochs=2, checkpoint_dir=tmp_path / "ck",
                 history_path=tmp_path / "hist.csv", **common)
    extended = _run(splits, tmp_path, method, epochs=4, checkpoint_dir=tmp_path / "ck",
                    history_path=tmp_path / "hist.csv", **common)
    fresh = _run(splits, tmp_path, method, epochs=4, checkpoint_dir=tmp_path / "ck_fresh",
                 results_path=tmp_path / "fresh.csv", history_path=tmp_path / "hist_fresh.csv",
                 **common)
    assert short["config_hash"].iloc[0] != extended["config_hash"].iloc[0]
    assert (tmp_path / "ck" / extended["config_hash"].iloc[0] / "last.pt").is_file()
    for col in ("accuracy", "avg_accuracy", "brier", "best_epoch", "val_avg_accuracy",
                "conflict_rate", "config_hash"):
        assert extended[col].tolist() == fresh[col].tolist(), col
    h_ext = load_history(tmp_path / "hist.csv")
    h_ext = h_ext[h_ext["config_hash"] == extended["config_hash"].iloc[0]]
    h_new = load_history(tmp_path / "hist_fresh.csv")
    assert list(h_ext["epoch"]) == [0, 1, 2, 3]
    for col in ("val_avg_accuracy", "train_loss", "val_loss"):
        np.testing.assert_array_equal(h_ext[col].to_numpy(), h_new[col].to_numpy())
    h_short = load_history(tmp_path / "hist.csv")
    h_short = h_short[h_short["config_hash"] == short["config_hash"].iloc[0]]
    # the first two epochs were not re-run: their wall times are the short run's
    np.testing.assert_array_equal(h_ext["time"].to_numpy()[:2], h_short["time"].to_numpy())


def test_no_extension_from_another_configuration(splits, tmp_path):
    from eegmtl.benchmarks.single_run import shorter_budget_checkpoint

    _run(splits, tmp_path, "ew", epochs=1, n_train=64, checkpoint_dir=tmp_path / "ck")
    cfg = json.loads(_run(splits, tmp_path, "ew", epochs=2, n_train=64, lr=5e-4,
                          checkpoint_dir=tmp_path / "ck2")["config"].iloc[0])
    assert shorter_budget_checkpoint(cfg, tmp_path / "ck") is None  # other lr: not a prefix
    found = shorter_budget_checkpoint({**cfg, "lr": 1e-3, "epochs": 3}, tmp_path / "ck")
    assert found is not None and found[0] == 1
