"""``eegmtl bench fits``: batched fits train the same networks as separate fits; tiny run."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from eegmtl import cli
from eegmtl.experiments.fit_steps import BatchedFits
from eegmtl.experiments.fit_steps import optimizer as _optimizer


def _shallow(seed: int) -> torch.nn.Module:
    from braindecode.models import ShallowFBCSPNet

    torch.manual_seed(seed)
    # no dropout: the batched step draws its masks per model, the separate steps in turn
    return ShallowFBCSPNet(n_chans=3, n_outputs=2, n_times=250, sfreq=250, drop_prob=0.0)


def test_batched_step_equals_separate_steps():
    """Three fits stacked into one vmapped model and stepped twice end where three separate
    fits (own optimiser each) end: per-fit gradients, per-fit batch-norm statistics."""
    models = [_shallow(s) for s in range(3)]
    batched = BatchedFits("ShallowFBCSPNet", [copy.deepcopy(m) for m in models])
    opts = [_optimizer("ShallowFBCSPNet", m.parameters()) for m in models]
    g = torch.Generator().manual_seed(0)
    live: set[str] = set()  # parameters with a gradient above rounding noise
    for step in range(2):
        x, y = torch.randn(3, 8, 3, 250, generator=g), torch.randint(0, 2, (3, 8), generator=g)
        losses = batched.step(x, y)
        for i, (m, opt) in enumerate(zip(models, opts, strict=True)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(x[i]), y[i])
            loss.backward()
            assert torch.allclose(losses[i], loss.detach(), atol=1e-5)
            for key, p in m.named_parameters():
                assert torch.allclose(batched.params[key].grad[i], p.grad, atol=1e-6,
                                      rtol=1e-4), key
                if p.grad.abs().max() > 1e-6:
                    live.add(key)
            opt.step()
            if step == 0:  # batch-norm statistics of the first batches (afterwards they
                # also carry the noise steps of the bias before the batch norm, below)
                for key, b in m.named_buffers():
                    if b.is_floating_point():
                        assert torch.allclose(batched.buffers[key][i], b, atol=1e-6), key
    # Adam turns a zero gradient's rounding noise (e.g. a convolution bias followed by batch
    # norm) into full-size steps of either sign, so only parameters that learn are compared
    assert len(live) >= 4
    for i, m in enumerate(models):
        for key, p in m.named_parameters():
            if key in live:
                assert torch.allclose(batched.params[key][i], p.detach(), atol=1e-5), key
    # and the fits differ from each other (a stacking that shared one model would not)
    w = next(iter(batched.params.values()))
    assert not torch.allclose(w[0], w[1])


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
])
def test_bench_fits_tiny(tmp_path, capsys, device):
    out = tmp_path / "fits.json"
    settings = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
    assert cli.main(["bench", "fits", "--device", device, "--tiny", "--out", str(out)]) == 0
    fig = json.loads(out.read_text())
    assert [r["model"] for r in fig["rows"]] == ["EEGNet", "ShallowFBCSPNet"]
    # the eager step's variants: bf16 everywhere, autotuner off and TF32 on CUDA only
    variants = {"bf16_speedup"} | ({"autotune_speedup", "tf32_speedup"} if device == "cuda"
                                   else set())
    for r in fig["rows"]:
        assert r["k"] == 2 and r["batch"] == 4
        assert r["eager_ms_per_fit_step"] > 0 and r["batched_ms_per_fit_step"] > 0
        assert r["max_output_diff"] < 1e-4  # the stacked models compute the same outputs
        assert {k for k in r if k.endswith("_speedup")} == {"batched_speedup"} | variants
        assert all(r[k] > 0 for k in variants)
    # the variants restore what they change (the run itself turns the autotuner on, on CUDA)
    if device == "cpu":
        assert (torch.backends.cudnn.benchmark,
                torch.get_float32_matmul_precision()) == settings
    else:
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == \
            settings[1]
    assert "| EEGNet | 4 | 2 | 1 |" in capsys.readouterr().out
    assert out.with_suffix(".md").exists()


def test_bench_fits_no_variants(tmp_path):
    out = tmp_path / "fits.json"
    assert cli.main(["bench", "fits", "--device", "cpu", "--tiny", "--models", "EEGNet",
                     "--no-variants", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert "bf16_speedup" not in row and "eager_bf16_ms_per_fit_step" not in row


def test_bench_fits_bad_input(monkeypatch):
    with pytest.raises(SystemExit, match="unknown network"):
        cli.main(["bench", "fits", "--device", "cpu", "--tiny", "--models", "NoSuchNet"])
    with pytest.raises(SystemExit, match="--k must be >= 1"):
        cli.main(["bench", "fits", "--device", "cpu", "--tiny", "--k", "0"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        cli.main(["bench", "fits", "--device", "cuda", "--tiny"])


@pytest.mark.slow
def test_compiled_step_on_cpu():
    """The compiled row: compile time and step time of one compiled EEGNet (tens of s)."""
    from eegmtl.experiments.bench_fits import add_compiled

    row = add_compiled({"model": "EEGNet", "processes": 1, "eager_ms_per_fit_step": 10.0},
                       {"device": "cpu", "seed": 0, "batch_size": 4, "rounds": 2, "warmup": 1})
    assert "compiled_error" not in row, row.get("compiled_error")
    assert row["compile_mode"] == "default" and row["compile_s"] > 0
    assert row["compiled_ms_per_fit_step"] > 0 and row["compiled_speedup"] > 0
