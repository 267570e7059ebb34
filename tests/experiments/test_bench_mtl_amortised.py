"""bench_mtl: LookSAM k = 10 is timed; flat training from epoch fraction s is amortised from the
plain and the flat medians."""

from __future__ import annotations

import argparse
import math

import pytest

from eegmtl.experiments import bench_mtl


def test_amortised_rows_mix_the_plain_and_the_flat_ratio():
    rows = [
        {"model": "m", "method": "ew", "ratio": 1.0, "ms": 10.0, "q1": 1, "q3": 1},
        {"model": "m", "method": "pcgrad", "ratio": 1.4, "ms": 14.0, "q1": 1, "q3": 2},
        {"model": "m", "method": "f-pcgrad", "ratio": 3.4, "ms": 34.0, "q1": 3, "q3": 4},
        {"model": "m", "method": "f-pcgrad[batched]", "ratio": 2.6, "ms": 26.0, "q1": 2, "q3": 3},
        {"model": "m", "method": "f-pcgrad[looksam5]", "ratio": 1.9, "ms": 19.0, "q1": 1, "q3": 2},
    ]
    got = {r["method"]: r for r in bench_mtl.amortised_rows(rows, 0.5)}
    assert set(got) == {"f-pcgrad[start=0.5]", "f-pcgrad[batched,start=0.5]"}
    assert got["f-pcgrad[start=0.5]"]["ratio"] == pytest.approx(0.5 * 1.4 + 0.5 * 3.4)
    assert got["f-pcgrad[batched,start=0.5]"]["ms"] == pytest.approx(20.0)
    assert math.isnan(got["f-pcgrad[start=0.5]"]["q1"])
    assert bench_mtl.amortised_rows(rows, 0.0) == []


def test_bench_prints_looksam10_and_amortised_rows(capsys):
    args = bench_mtl.add_arguments(argparse.ArgumentParser()).parse_args([
        "--rounds", "1", "--warmup", "1", "--threads", "1", "--model", "eeg", "--eeg-batch",
        "6", "--methods", "f-ew,f-ew[looksam10]", "--no-torchjd", "--start", "0.5",
    ])
    names = {r["method"] for r in bench_mtl.run(args)}
    assert {"ew", "f-ew", "f-ew[looksam10]", "f-ew[start=0.5]"} <= names
    out = capsys.readouterr().out
    assert "| f-ew[start=0.5] |" in out and "[amortised]" in out
