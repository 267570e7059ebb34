"""Vision records carry the step's resolved arithmetic choices (``gradient_mode``,
``step_config``) as columns outside the config hash."""

from __future__ import annotations

import json

import pandas as pd
import torch

from eegmtl.benchmarks.datasets import MultiTaskSplits, MultiTaskTensorDataset
from eegmtl.benchmarks.runner import run_benchmark


def _data(n: int, seed: int) -> MultiTaskTensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n, 2), generator=g)
    return MultiTaskTensorDataset(torch.rand(n, 1, 36, 36, generator=g),
                                  {"left": y[:, 0], "right": y[:, 1]})


def test_records_hold_the_resolved_gradient_mode(tmp_path):
    splits = MultiTaskSplits(train=_data(64, 0), val=_data(32, 1), test=_data(32, 2),
                             task_names=("left", "right"))
    path = tmp_path / "res.csv"
    rec = run_benchmark("multimnist", method="pcgrad", epochs=1, splits=splits, device="cpu",
                        results_path=path, conflict_every=1000, threads=1)
    table = pd.read_csv(path)
    assert list(table.columns[-2:]) == ["gradient_mode", "step_config"]
    step = json.loads(rec["step_config"].iloc[0])
    assert set(rec["gradient_mode"]) == {step["gradient_mode"]}
    assert step["gradient_mode"] in ("vmap", "loop")  # resolved, never "auto"
    assert step["aggregator"] == "PCGrad" and step["flat"] is None
    assert "gradient_mode" not in json.loads(rec["config"].iloc[0])  # not hashed
    machine = json.loads(table["machine"].iloc[0])  # provenance, not hashed either
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "machine" not in json.loads(rec["config"].iloc[0])
