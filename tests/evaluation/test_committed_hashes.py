"""Committed EEG records stay resumable: the config hash the runner builds today for a registry
pipeline (e.g. ``MixNet+f-pcgrad``) equals the committed row's ``config_hash``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from eegmtl._io import config_hash
from eegmtl.evaluation.methods import is_method, resolve_methods
from eegmtl.evaluation.runner import UNHASHED_KEYS

RESULTS = Path(__file__).resolve().parents[2] / "pipelines" / "results"
_PROTOCOL = {"subject_dependent": "sd", "subject_independent": "si"}


def _configs() -> list[tuple[str, str, str, str]]:
    out = []
    for name in ("sd.csv", "si.csv", "sd_seed1.csv"):
        path = RESULTS / name
        if not path.is_file():
            continue
        df = pd.read_csv(path, dtype={"config_hash": str})
        for (pipeline, chash, config), _ in df.groupby(["pipeline", "config_hash", "config"]):
            if is_method(pipeline):
                out.append((name, pipeline, chash, config))
    return out


CONFIGS = _configs()


@pytest.mark.parametrize("name,pipeline,chash,config", CONFIGS,
                         ids=[f"{n}:{p}:{h}" for n, p, h, _ in CONFIGS])
def test_committed_hash_from_a_fresh_method_config(name, pipeline, chash, config):
    recorded = json.loads(config)
    fresh = resolve_methods([pipeline], _PROTOCOL[recorded["protocol"]])[pipeline][1]
    hashed = {**{k: v for k, v in recorded.items() if k != "method_config"},
              "method_config": {k: v for k, v in fresh.items() if k not in UNHASHED_KEYS}}
    assert config_hash(hashed) == chash


def test_flat_mixnet_rows_are_checked():
    if not (RESULTS / "sd.csv").is_file():
        pytest.skip("no committed SD records in this checkout")
    assert any(p == "MixNet+f-pcgrad" for _, p, _, _ in CONFIGS)
