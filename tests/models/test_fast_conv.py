"""FastConv2d: same forward and state_dict as nn.Conv2d, gradients equal to float rounding,
composable with torch.func (vmap over parameter sets, as the batched flat update uses)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from eegmtl.models.fast_conv import FastConv2d, builtin_conv_backward, conv2d_weight_grad
from eegmtl.models.vision import LeNetEncoder


def _pair(*args, **kwargs) -> tuple[nn.Conv2d, FastConv2d]:
    torch.manual_seed(0)
    ref = nn.Conv2d(*args, **kwargs)
    fast = FastConv2d(*args, **kwargs)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


@pytest.mark.parametrize("kwargs", [
    {"in_channels": 1, "out_channels": 4, "kernel_size": 9},
    {"in_channels": 3, "out_channels": 5, "kernel_size": 3, "padding": 1},
    {"in_channels": 2, "out_channels": 3, "kernel_size": (3, 5), "padding": (2, 0), "bias": False},
])
def test_gradients_match_conv2d(kwargs: dict) -> None:
    ref, fast = _pair(**kwargs)
    x = torch.randn(6, kwargs["in_channels"], 12, 14, dtype=torch.float64)
    ref.double(), fast.double()
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yf = ref(xr), fast(xf)
    assert torch.equal(yr, yf)  # the forward pass is F.conv2d itself
    g = torch.randn_like(yr)
    yr.backward(g), yf.backward(g)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(xf.grad, xr.grad, rtol=1e-10, atol=1e-10)
    if ref.bias is not None:
        torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-10, atol=1e-10)


def test_weight_grad_formula_against_autograd() -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 2, 9, 9, dtype=torch.float64)
    w = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    g = torch.randn(4, 3, 8, 8, dtype=torch.float64)  # padding 1: 9 + 2 - 4 + 1 = 8
    expected = torch.nn.grad.conv2d_weight(x, w.shape, g, padding=1)
    torch.testing.assert_close(conv2d_weight_grad(x, g, (1, 1)), expected)


def test_falls_back_where_the_formula_does_not_apply() -> None:
    ref, fast = _pair(3, 4, 3, stride=2)
    x = torch.randn(2, 3, 9, 9)
    ref(x).sum().backward(), fast(x).sum().backward()
    assert torch.equal(ref.weight.grad, fast.weight.grad)  # built-in backward, bitwise


def test_lenet_state_dict_and_vmap_grads() -> None:
    torch.manual_seed(0)
    enc = LeNetEncoder()
    ref = nn.Sequential(*[nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size)
                          if isinstance(m, FastConv2d) else m for m in enc])
    ref.load_state_dict(enc.state_dict())  # same keys and shapes as the nn.Conv2d trunk
    x = torch.randn(16, 1, 36, 36)
    params = {k: v.detach() for k, v in enc.named_parameters()}

    def loss(model: nn.Module):
        return lambda p: functional_call(model, p, (x,)).square().mean()

    expected = grad(loss(ref))(params)
    stacked = {k: torch.stack([v, v + 0.01]) for k, v in params.items()}
    got = vmap(grad(loss(enc)))(stacked)
    for k in params:
        torch.testing.assert_close(got[k][0], expected[k], rtol=1e-4, atol=1e-6)


def _train(steps: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    enc, head = LeNetEncoder(), nn.Linear(50, 10)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(4)
    for _ in range(steps):
        x, y = torch.rand(32, 1, 36, 36, generator=g), torch.randint(0, 10, (32,), generator=g)
        opt.zero_grad()
        F.cross_entropy(head(enc(x)), y).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in enc.state_dict().items()}


def test_training_run_equals_builtin_to_rounding_and_switch_is_bitwise() -> None:
    fast = _train(10)
    with builtin_conv_backward():
        ref = _train(10)
        again = _train(10)
    for k in ref:
        assert torch.equal(ref[k], again[k])
        torch.testing.assert_close(fast[k], ref[k], rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(fast[k], ref[k]) for k in ref)  # the fast path did run
