"""``eegmtl bench cuda`` at tiny size on the CPU (and on CUDA when a GPU is present)."""

from __future__ import annotations

import json

import pytest
import torch

from eegmtl import cli


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
])
def test_bench_cuda_tiny(tmp_path, capsys, device):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "cuda", "--device", device, "--tiny", "--synthetic",
                     "--methods", "pcgrad,f-ew", "--out", str(out)]) == 0
    fig = json.loads(out.read_text())
    assert fig["device"] == device and fig["mixnet_epochs"] == 1
    assert {"EEG net b32 (T=3) | ew", "EEG net b32 (T=3) | pcgrad",
            "EEG net b32 (T=3) | f-ew"} <= set(fig["step_ratios"])
    assert fig["latency_ms_batch256_median"] > 0 and fig["latency_ms_batch1_median"] > 0
    assert ("cuda_max_memory_allocated_mb" in fig) == (device == "cuda")
    assert "| f-ew |" in capsys.readouterr().out and out.with_suffix(".md").exists()


def test_bench_cuda_without_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        cli.main(["bench", "cuda", "--device", "cuda", "--tiny"])
