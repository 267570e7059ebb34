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


def test_committed_adopted_records_match_their_originals():
    """Every record the full preset took over (``adopted_from`` = ``<file>:<hash>``) is a row
    of that file with that hash and the same scores, and its own config hashes to its own
    ``config_hash`` (the originals' config with the data label replaced)."""
    from eegmtl.evaluation.adopt import relabel

    checked = 0
    for path in sorted(RESULTS.glob("benchmark_full_*.csv")):
        df = pd.read_csv(path, dtype={"config_hash": str, "adopted_from": str})
        if "adopted_from" not in df:
            continue
        key = ["protocol", "pipeline", "subject", "fold", "seed"]
        for source, rows in df[df["adopted_from"].notna()].groupby(
                df["adopted_from"].str.rsplit(":", n=1).str[0]):
            original = pd.read_csv(RESULTS / source, dtype={"config_hash": str})
            rows = rows.assign(_hash=rows["adopted_from"].str.rsplit(":", n=1).str[-1])
            both = rows.merge(original, left_on=[*key, "_hash"], right_on=[*key, "config_hash"],
                              suffixes=("", "_orig"))
            assert len(both) == len(rows), f"{path.name}: originals missing in {source}"
            assert (both["accuracy"] == both["accuracy_orig"]).all()
            assert (both["time"] == both["time_orig"]).all()
            for config, chash, orig in both[["config", "config_hash", "config_orig"]].itertuples(
                    index=False):
                assert relabel(orig, json.loads(config)["data"]) == (config, chash)
            checked += len(rows)
    if not checked:
        pytest.skip("no adopted records in this checkout")
