"""Committed vision records stay resumable: a run built afresh with a committed row's settings
finds that row (same config hash), so options added to the flat step since (at their defaults)
change no hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from eegmtl.benchmarks.runner import run_benchmark
from eegmtl.mtl.flat import FMTL_MULTIMNIST, FlatConfig

RESULTS = Path(__file__).resolve().parents[2] / "pipelines" / "results"
FILES = ("vision_lenet.csv", "flat_variants_multimnist.csv", "architectures_multimnist.csv")


class _NoData:
    """Stands in for the data: a run that does not find its row fails here, before training."""

    def __getattr__(self, name: str):
        raise AssertionError("the committed row was not found by its config hash")


def _runs(name: str) -> list[tuple[str, dict, str]]:
    path = RESULTS / name
    if not path.is_file():
        return []
    df = pd.read_csv(path, dtype={"config_hash": str})
    df = df[df["task"] == "avg"]
    return [(name, json.loads(c), h) for c, h in zip(df["config"], df["config_hash"])]


RUNS = [run for name in FILES for run in _runs(name)]


@pytest.mark.parametrize(
    "name,config,chash", RUNS,
    ids=[f"{n}:{c['method']}:{c['dataset']}:{c['seed']}:{h}" for n, c, h in RUNS],
)
def test_committed_run_found_by_a_fresh_config(tmp_path, name, config, chash):
    if not RUNS:
        pytest.skip("no committed vision records in this checkout")
    flat = config["flat"]
    # the runner's default flat setting when it is the recorded one, otherwise built afresh
    # from the recorded fields (only the fields the record holds: the others at defaults)
    if flat is not None and FlatConfig(**flat) == FMTL_MULTIMNIST:
        flat = None
    elif flat is not None:
        flat = FlatConfig(**flat)
    path = tmp_path / name
    shutil.copy2(RESULTS / name, path)
    got = run_benchmark(
        config["dataset"], model=config["model"], method=config["method"],
        seed=config["seed"], epochs=config["epochs"], protocol=config["protocol"],
        batch_size=config["batch_size"], optimizer=config["optimizer"], lr=config["lr"],
        n_train=config["n_train"], n_val=config["n_val"], n_test=config["n_test"],
        data_kwargs=config["data_kwargs"], conflict_every=config["conflict_every"],
        flat=flat, splits=_NoData(), results_path=path, resume=True, progress=False,
    )
    assert set(got["config_hash"]) == {chash}


def test_flat_record_omits_new_fields_at_defaults():
    legacy = {"adaptive": True, "eps": 1e-12, "norm": "joint", "rho": 2.0, "rho_heads": None}
    assert FMTL_MULTIMNIST.as_record() == legacy
    looksam = FlatConfig(**legacy, mode="looksam", every=5)
    assert looksam.as_record() == {**legacy, "mode": "looksam", "every": 5, "looksam_alpha": 0.7}
    for cfg in (FMTL_MULTIMNIST, looksam, FlatConfig()):
        assert FlatConfig(**cfg.as_record()) == cfg
