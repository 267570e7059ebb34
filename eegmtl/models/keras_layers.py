"""Keras-compatible layers of MixNet: TensorFlow's "same" padding, "same" transposed
convolution, channels-last flatten / unflatten and a direct / FFT 1-D convolution.

Keras → PyTorch equivalences (used by :class:`eegmtl.models.mixnet.MixNet`):

* layout: the ``C`` spectral-spatial signals are the convolution *channels*, time is the length
  axis (Keras used ``(n, 1, T, C)`` channels-last with ``(1, k)`` kernels; here ``Conv1d``).
  Dense layers read/write the flattened feature map in Keras' channels-last order
  (``index = t * F2 + c``), so weights can be ported one-to-one.
* ``padding="same"`` for stride-1 convolutions pads ``(k - 1) // 2`` on the left and the rest on
  the right (31 / 32 for the even kernel 64), as TensorFlow does.
* ``Conv2DTranspose(strides=s, padding="same")`` returns exactly ``s ×`` the input length; the
  full transposed-convolution output is cropped by ``(k - s) // 2`` samples at the start and the
  remaining ``k - s - (k - s) // 2`` at the end (TensorFlow's rule: the adjoint of a stride-``s``
  "same" convolution).
* Keras ``BatchNormalization(momentum=0.1)`` updates ``running = 0.1·running + 0.9·batch``, i.e.
  PyTorch ``momentum = 1 - 0.1 = 0.9`` (eps 1e-5).
* Keras ``glorot_uniform`` kernels (fans = receptive field × channels, identical to
  :func:`torch.nn.init.xavier_uniform_`) and zero biases.
* Keras ``MaxNorm`` constraints are applied *after each optimiser step* by
  :meth:`MixNet.apply_constraints` (Keras applies them inside ``apply_gradients``), with Keras'
  formula ``w ← w · clip(‖w‖, 0, m) / (1e-7 + ‖w‖)``: per output filter for convolutions, per
  output unit for dense layers, per *input* channel for transposed convolutions (their Keras
  kernel is ``(kh, kw, out, in)`` and the constraint axes are ``(0, 1, 2)``).
"""

from __future__ import annotations

import scipy.fft
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["max_norm_", "same_padding", "transposed_same_crop"]

_KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), used by the MaxNorm constraint


def same_padding(kernel_size: int) -> tuple[int, int]:
    """(left, right) zero padding of TensorFlow's ``padding="same"`` for a stride-1 conv.

    TensorFlow puts the smaller half on the left: kernel 64 → (31, 32), kernel 32 → (15, 16).
    """
    total = kernel_size - 1
    return total // 2, total - total // 2


def transposed_same_crop(kernel_size: int, stride: int) -> tuple[int, int]:
    """(start, end) crop of TensorFlow's ``Conv2DTranspose(padding="same")`` along one axis.

    The full transposed convolution of ``L`` samples has ``(L - 1)·s + k`` samples; TensorFlow
    keeps ``L·s`` of them, dropping ``(k - s) // 2`` at the start and the rest at the end
    (kernel 64, stride 4 → (30, 30); kernel 32, stride 4 → (14, 14)). Requires ``k ≥ s``.
    """
    if kernel_size < stride:
        raise ValueError(
            f"transposed convolution kernel {kernel_size} is shorter than its stride {stride}: "
            "TensorFlow would zero-fill the gaps; use a kernel at least as long as the pooling."
        )
    total = kernel_size - stride
    return total // 2, total - total // 2


class _SamePad1d(nn.Module):
    """Zero padding of TensorFlow's stride-1 ``padding="same"``."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.pad = same_padding(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.pad)

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class _Conv1d(nn.Conv1d):
    """Stride-1 "valid" ``Conv1d`` computed directly or through the FFT (same result).

    On the CPU the weight gradient of a long-kernel convolution (64 taps on 400 samples) is the
    bottleneck of a MixNet training step; the FFT route (linear cross-correlation by
    zero-padded real FFTs, gradients by autograd) gives the same values up to float rounding
    (~1e-6 relative) several times faster. ``impl="auto"`` uses it on the CPU when gradients
    are computed or the batch has at least 16 trials; small no-grad batches (online
    single-trial inference) and GPUs use the direct convolution, which is faster there.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, impl: str) -> None:
        super().__init__(in_channels, out_channels, kernel_size)
        if impl not in ("auto", "direct", "fft"):
            raise ValueError(f"conv_impl must be 'auto', 'direct' or 'fft', got {impl!r}.")
        self.impl = impl

    def forward(self, x: Tensor) -> Tensor:
        use_fft = self.impl == "fft" or (
            self.impl == "auto"
            and x.device.type == "cpu"
            and (x.shape[0] >= 16 or (torch.is_grad_enabled() and self.weight.requires_grad))
        )
        if not use_fft:
            return super().forward(x)
        k = self.kernel_size[0]
        n_out = x.shape[-1] - k + 1
        n_fft = scipy.fft.next_fast_len(x.shape[-1], real=True)  # >= L: no circular wrap
        spec_x = torch.fft.rfft(x, n=n_fft)
        spec_w = torch.fft.rfft(self.weight, n=n_fft)
        # correlation: y[o, t] = sum_i sum_j w[o, i, j] x[i, t + j]  <->  X · conj(W)
        spec = torch.einsum("nif,oif->nof", spec_x, spec_w.conj())
        y = torch.fft.irfft(spec, n=n_fft)[..., :n_out]
        return y + self.bias.unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl!r}"


class _SameConvTranspose1d(nn.ConvTranspose1d):
    """``ConvTranspose1d`` with TensorFlow's ``padding="same"`` (output ``stride ×`` longer)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        start, _ = transposed_same_crop(kernel_size, stride)
        # PyTorch crops `padding` samples at both ends: (L-1)s + k - 2·start = L·s + (0 or 1);
        # the possible extra last sample is TensorFlow's larger end crop, removed in forward.
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=start)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        return super().forward(x)[..., : x.shape[-1] * self.stride[0]]


class _KerasFlatten(nn.Module):
    """Flatten ``(n, F, L)`` in Keras channels-last order: feature index ``t * F + c``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2).flatten(1)


class _KerasUnflatten(nn.Module):
    """Inverse of :class:`_KerasFlatten`: ``(n, L * F)`` → ``(n, F, L)``."""

    def __init__(self, n_filters: int, length: int) -> None:
        super().__init__()
        self.n_filters, self.length = n_filters, length

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], self.length, self.n_filters).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"n_filters={self.n_filters}, length={self.length}"


@torch.no_grad()
def max_norm_(weight: Tensor, dims: tuple[int, ...], limit: float) -> None:
    """Keras ``MaxNorm(limit)`` in place: ``w ← w · clip(n, 0, m) / (1e-7 + n)`` with ``n`` the
    L2 norm of ``weight`` over ``dims``."""
    norms = weight.norm(p=2, dim=dims, keepdim=True)
    weight.mul_(norms.clamp(max=limit) / (norms + _KERAS_EPSILON))


# --------------------------------------------------------------------- argument checks
def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _alias(name: str, value: int | None, alias: str, alias_value: int | None, default: int) -> int:
    """``value`` or its braindecode-style ``alias``; both given must agree."""
    if value is not None and alias_value is not None and int(value) != int(alias_value):
        raise ValueError(
            f"{name}={value} and {alias}={alias_value} disagree; they are the same setting "
            f"({alias} is braindecode's name), give one of them."
        )
    if value is not None:
        return value
    return default if alias_value is None else alias_value
