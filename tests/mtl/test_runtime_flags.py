"""configure_runtime: cuDNN benchmark and pinned batches only for CUDA (checked on the CPU
without touching a GPU: the decision is made from the device type)."""

from __future__ import annotations

import pytest
import torch

from eegmtl.mtl.data import make_loader
from eegmtl.mtl.runtime import (
    autotune_convolutions,
    configure_runtime,
    deterministic_requested,
)


@pytest.fixture
def cudnn_flags():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = False
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


def _loader(**kw):
    return make_loader((torch.zeros(8, 2, 4), {"a": torch.zeros(8)}), 4, **kw)


def test_cpu_sets_nothing(cudnn_flags):
    loader = _loader()
    got = configure_runtime(torch.device("cpu"), loader, None)
    assert got == {"cudnn_benchmark": False, "pin_memory": False}
    assert not torch.backends.cudnn.benchmark and not loader.pinned
    x, _ = next(iter(loader))
    assert not x.is_pinned()


def test_cuda_device_switches_both_on(cudnn_flags):
    loader, val = _loader(), _loader(shuffle=False)
    got = configure_runtime(torch.device("cuda"), loader, val)
    assert got == {"cudnn_benchmark": True, "pin_memory": True}
    assert torch.backends.cudnn.benchmark and loader.pinned and val.pinned


def test_explicit_pin_memory_is_kept(cudnn_flags):
    off, on = _loader(pin_memory=False), _loader(pin_memory=True)
    configure_runtime(torch.device("cuda"), off)
    configure_runtime(torch.device("cpu"), on)
    assert not off.pinned and on.pinned


def test_no_benchmark_when_deterministic_or_shapes_vary(cudnn_flags):
    torch.backends.cudnn.deterministic = True
    assert deterministic_requested()
    assert not configure_runtime(torch.device("cuda"), _loader())["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = False
    other = torch.utils.data.DataLoader(list(range(4)))  # shapes unknown: left alone
    assert not configure_runtime(torch.device("cuda"), _loader(), other)["cudnn_benchmark"]


def test_autotune_convolutions_only_on_cuda_and_not_when_deterministic(cudnn_flags):
    assert not autotune_convolutions("cpu") and not torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic = True
    assert not autotune_convolutions(torch.device("cuda"))
    torch.backends.cudnn.deterministic = False
    assert autotune_convolutions("cuda:0") and torch.backends.cudnn.benchmark
