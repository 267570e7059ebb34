"""A ``Conv2d`` whose weight gradient is computed as a convolution on the CPU.

On x86 CPUs, oneDNN's weight-gradient kernel of a convolution with few input channels and a
large kernel is slow: for LeNet's first layer (``Conv2d(1, 10, 9)`` on 36×36 inputs, batch
256) it takes ~75 ms on one thread, six times the layer's forward pass and most of a LeNet
training step. The weight gradient of a stride-1, dilation-1, ungrouped convolution is itself
a convolution, of the (padded) input with the output gradient, batch and channel axes swapped:

.. math::

    \\frac{\\partial L}{\\partial W_{o,c,i,j}}
    = \\sum_{n,y,x} G_{n,o,y,x}\\, X_{n,c,y+i,x+j}
    = \\operatorname{conv}(X^{\\top}, G^{\\top})_{c,o,i,j},

with :math:`X^{\\top}` of shape (C_in, N, H, W) and :math:`G^{\\top}` of shape
(C_out, N, H_out, W_out) used as the kernel. Computed this way it takes ~13 ms for the same
layer. :class:`FastConv2d` uses that formula on the CPU and the framework's own backward
everywhere else (GPU, strided / dilated / grouped convolutions); the gradients equal the
built-in ones to float rounding (a different summation order), the forward pass is
``torch.nn.functional.conv2d`` itself. Parameters and ``state_dict`` are those of
:class:`torch.nn.Conv2d`, so checkpoints load either way. Rounding differences grow over a
training run like any change of summation order: inside :func:`builtin_conv_backward` the
layers use the built-in backward and reproduce ``nn.Conv2d`` runs bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FastConv2d", "builtin_conv_backward", "conv2d_weight_grad"]

_FAST = [True]


@contextmanager
def builtin_conv_backward() -> Iterator[None]:
    """Inside the block, :class:`FastConv2d` layers use ``nn.Conv2d``'s own backward.

    For reproducing records made with ``nn.Conv2d`` bit for bit, and for reference runs.
    """
    old, _FAST[0] = _FAST[0], False
    try:
        yield
    finally:
        _FAST[0] = old


def conv2d_weight_grad(x: Tensor, grad_out: Tensor, padding: tuple[int, int]) -> Tensor:
    """Weight gradient of a stride-1, dilation-1, ungrouped 2-D convolution, as a convolution.

    Parameters
    ----------
    x : Tensor, shape (N, C_in, H, W)
        The convolution's input.
    grad_out : Tensor, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to the convolution's output.
    padding : (int, int)
        The convolution's zero padding (rows, columns).

    Returns
    -------
    Tensor, shape (C_out, C_in, kH, kW)
        ``sum_{n,y,x} grad_out[n, o, y, x] * x_pad[n, c, y + i, x + j]``.
    """
    if padding[0] or padding[1]:
        x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    return F.conv2d(x.transpose(0, 1), grad_out.transpose(0, 1)).transpose(0, 1)


class _Conv2dFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None,
                padding: tuple[int, int]) -> Tensor:
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, weight, bias, padding = inputs
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad_out, padding=ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_w = conv2d_weight_grad(x, grad_out, ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None


class FastConv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` with the weight gradient of :func:`conv2d_weight_grad` on the CPU.

    Used when the input is a 4-D CPU tensor, the weight needs a gradient and the layer has
    stride 1, dilation 1, one group and zero padding, and not inside
    :func:`builtin_conv_backward`; otherwise ``nn.Conv2d.forward``. Under ``torch.vmap`` the
    formula is batched by ``generate_vmap_rule`` (faster than the built-in backward's batching
    for LeNet: 381 vs 481 ms for a batched flat step). Same
    parameters, same ``state_dict``, same outputs; gradients equal to float rounding.
    """

    def _fast(self, x: Tensor) -> bool:
        return (_FAST[0] and x.device.type == "cpu" and x.dim() == 4 and torch.is_grad_enabled()
                and self.weight.requires_grad and self.stride == (1, 1)
                and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros" and not isinstance(self.padding, str))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if not self._fast(x):
            return super().forward(x)
        return _Conv2dFn.apply(x, self.weight, self.bias, tuple(self.padding))
