"""The MTL step-time benchmark runs and prints every flat variant against EW and the target."""

from __future__ import annotations

import argparse

from eegmtl.experiments import bench_mtl


def test_bench_mtl_smoke(tmp_path, capsys):
    args = bench_mtl.add_arguments(argparse.ArgumentParser()).parse_args([
        "--rounds", "1", "--warmup", "1", "--threads", "1", "--model", "eeg", "--eeg-batch",
        "6", "--methods", "pcgrad,f-ew,f-ew[batched],f-ew[looksam5],f-ew[subset]",
        "--no-torchjd", "--out", str(tmp_path / "b.md"),
    ])
    rows = bench_mtl.run(args)
    names = {r["method"] for r in rows}
    assert {"ew", "pcgrad", "f-ew[looksam5]", "f-ew[subset]"} <= names
    out = capsys.readouterr().out
    assert "| f-ew[batched] |" in out and "<= 2.2" in out and "<= 1.5" in out
    assert "Command:" in (tmp_path / "b.md").read_text()
    assert all(r["backend"] in ("vmap", "loop", None) for r in rows)
