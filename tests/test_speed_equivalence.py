"""The fit-time breakdown and memory sampler of ``eegmtl bench mixnet`` (the speed work's
instruments): every part of a MixNet fit is timed once, the wrappers are removed again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.experiments._fit_profile import FitTimer, RSSSampler
from eegmtl.mixnet import net
from eegmtl.mixnet.config import resolve_mtl


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = rng.standard_normal((n, 18, 400)).astype(np.float32)
    x[y == 1, :4] *= 1.5
    return x, y


def _fit(max_epochs: int = 2):
    x_tr, y_tr = _data(64, 0)
    x_va, y_va = _data(16, 1)  # 16 val trials over 2 train batches: 8-trial interleaved batches
    return net.fit_network(
        x_tr, y_tr, x_va, y_va, n_classes=2, method=resolve_mtl("blending"), latent_dim=4,
        margin=0.1, warmup=1, batch_size=32, max_epochs=max_epochs, seed=0, device="cpu",
    )


def test_fit_timer_splits_a_fit_into_parts() -> None:
    torch.set_num_threads(1)
    with FitTimer() as timer:
        _, trainer, _ = _fit(max_epochs=2)
    loop = float(trainer.history_frame("epoch")["time"].sum())
    assert timer.calls["steps"] == 4  # 2 epochs x 2 batches
    assert timer.calls["interleaved_validation"] == 4
    assert timer.calls["evaluation"] == 2
    parts = timer.seconds["steps"] + timer.seconds["interleaved_validation"] + timer.seconds[
        "evaluation"]
    assert 0 < parts <= loop
    # the wrappers are removed again
    from eegmtl.mtl.step import MTLStep

    assert "timed" not in MTLStep.__call__.__qualname__


def test_rss_sampler_sees_this_process() -> None:
    pytest.importorskip("psutil")
    with RSSSampler(0.05) as mem:
        block = np.ones(20 * 2**20 // 8)  # 20 MiB
        mem.sample()
    del block
    assert mem.peak_main_mb >= 20 and mem.peak_total_mb >= mem.peak_main_mb
