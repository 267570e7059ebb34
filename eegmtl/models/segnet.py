"""SegNet trunks with dense task heads for NYUv2 / Cityscapes: split heads and MTAN attention.

Both models implement :class:`eegmtl.mtl.tasks.MultiTaskModel` (see :mod:`eegmtl.models.vision`
for the parameter counts). :class:`SegNetSplit` shares the whole SegNet encoder-decoder and puts
one prediction head per task on its last feature map; :class:`SegNetMTAN` adds the task-specific
soft-attention modules of MTAN (Liu et al., "End-to-End Multi-Task Learning with Attention", CVPR
2019, Fig. 2) on every encoder and decoder stage. The structure re-implements the Nash-MTL /
CAGrad ``_SegNet`` (``AvivNavon/nash-mtl: experiments/nyuv2/models.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eegmtl.mtl.architectures.base import TaskHeadsMixin

__all__ = ["CITYSCAPES_TASKS", "NYUV2_TASKS", "SegNetMTAN", "SegNetSplit"]


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


def _attention(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
    """MTAN attention module: [1×1 conv, BN, ReLU, 1×1 conv, BN, sigmoid] (Liu et al. Fig. 2)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_mid, 1), nn.BatchNorm2d(c_mid), nn.ReLU(inplace=True),
        nn.Conv2d(c_mid, c_out, 1), nn.BatchNorm2d(c_out), nn.Sigmoid(),
    )


def _prediction_head(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1), nn.Conv2d(c_in, c_out, 1))


def _init_xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


NYUV2_TASKS: dict[str, int] = {"segmentation": 13, "depth": 1, "normal": 3}
CITYSCAPES_TASKS: dict[str, int] = {"segmentation": 7, "depth": 1}
_FILTERS = (64, 128, 256, 512, 512)


class _SegNetTrunk(nn.Module):
    """VGG-style SegNet encoder-decoder with max-unpooling (Badrinarayanan et al. 2017), in the
    5-stage form of Liu et al. (MTAN, CVPR 2019): filters 64-128-256-512-512, one conv in the
    first two stages' extra blocks and two in the others; returns every intermediate map the
    attention modules need."""

    def __init__(self, in_channels: int = 3, filters: Sequence[int] = _FILTERS) -> None:
        super().__init__()
        f = list(filters)
        self.encoder_block = nn.ModuleList([_conv_bn_relu(in_channels, f[0])])
        self.decoder_block = nn.ModuleList([_conv_bn_relu(f[0], f[0])])
        self.conv_block_enc = nn.ModuleList([_conv_bn_relu(f[0], f[0])])
        self.conv_block_dec = nn.ModuleList([_conv_bn_relu(f[0], f[0])])
        for i in range(4):
            self.encoder_block.append(_conv_bn_relu(f[i], f[i + 1]))
            self.decoder_block.append(_conv_bn_relu(f[i + 1], f[i]))
            if i == 0:
                self.conv_block_enc.append(_conv_bn_relu(f[1], f[1]))
                self.conv_block_dec.append(_conv_bn_relu(f[0], f[0]))
            else:
                self.conv_block_enc.append(
                    nn.Sequential(
                        _conv_bn_relu(f[i + 1], f[i + 1]), _conv_bn_relu(f[i + 1], f[i + 1])
                    )
                )
                self.conv_block_dec.append(
                    nn.Sequential(_conv_bn_relu(f[i], f[i]), _conv_bn_relu(f[i], f[i]))
                )
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)

    def forward(self, x: Tensor) -> tuple[list[tuple[Tensor, Tensor]], list[Tensor], list[Tensor]]:
        enc, indices = [], []
        h = x
        for i in range(5):
            e0 = self.encoder_block[i](h)
            e1 = self.conv_block_enc[i](e0)
            h, idx = self.pool(e1)
            enc.append((e0, e1))
            indices.append(idx)
        ups, dec = [], []
        for i in range(5):
            up = self.unpool(h, indices[-i - 1])
            h = self.conv_block_dec[-i - 1](self.decoder_block[-i - 1](up))
            ups.append(up)
            dec.append(h)
        return enc, ups, dec


def _check_filters(filters: Sequence[int]) -> list[int]:
    f = [int(c) for c in filters]
    if len(f) != 5 or min(f) < 1:
        raise ValueError(f"filters must be 5 positive channel counts, got {list(filters)}.")
    return f


def _check_hw(x: Tensor) -> None:
    if x.ndim != 4 or x.shape[-1] % 32 or x.shape[-2] % 32:
        raise ValueError(
            f"SegNet needs (B, C, H, W) inputs with H and W divisible by 32 (five 2x poolings); "
            f"got {tuple(x.shape)}. NYUv2 uses 288x384, Cityscapes 128x256."
        )


class SegNetSplit(nn.Module):
    """SegNet with a shared encoder-decoder and one prediction head per task ("Split" baseline
    of Liu et al. 2019; ``SegNetSplit(model_type='standard')`` in the Nash-MTL/CAGrad code).

    ``encode`` returns the shared 64-channel full-resolution map; each head is
    [3×3 conv 64→64, 1×1 conv 64→out]. Outputs: ``segmentation`` logits (B, C, H, W) (use
    cross-entropy with ``ignore_index=-1``), ``depth`` (B, 1, H, W), ``normal`` (B, 3, H, W)
    L2-normalised over channels. ``tasks``, ``in_channels`` and ``filters`` as
    :class:`SegNetMTAN`. Parameters (NYUv2): 24,943,296 shared, 25,055,185 in total.
    """

    def __init__(
        self, tasks: Mapping[str, int] | None = None, in_channels: int = 3,
        filters: Sequence[int] = _FILTERS,
    ) -> None:
        super().__init__()
        tasks = dict(NYUV2_TASKS if tasks is None else tasks)
        self.task_names: list[str] = list(tasks)
        self.trunk = _SegNetTrunk(in_channels, _check_filters(filters))
        self.heads = nn.ModuleDict({t: _prediction_head(filters[0], c) for t, c in tasks.items()})
        _init_xavier(self)

    def encode(self, x: Tensor) -> Tensor:
        _check_hw(x)
        return self.trunk(x)[2][-1]

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        return {t: _finish(t, self.heads[t](rep)) for t in self.task_names}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()


def _finish(task: str, out: Tensor) -> Tensor:
    if task == "normal":
        return out / out.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12)
    return out


class SegNetMTAN(TaskHeadsMixin, nn.Module):
    """Multi-Task Attention Network on SegNet (Liu, Johns & Davison, CVPR 2019, §3, Fig. 2).

    A shared SegNet encoder-decoder; per task, a soft-attention branch: in each of the 5
    encoder stages an attention module ``a = g([u, prev])`` (1×1 conv-BN-ReLU-1×1 conv-BN-
    sigmoid) masks the stage's output ``a ⊙ p``, followed by a shared 3×3 conv block
    (``encoder_block_att``) and 2× max-pooling; the decoder mirrors it with bilinear 2×
    up-sampling, shared conv blocks (``decoder_block_att``) and per-task attention on
    ``[unpooled, previous]``. Heads: [3×3 conv 64→64, 1×1 conv 64→out] per task.

    Parameters
    ----------
    tasks : mapping of str to int, optional
        Task name → output channels. Default NYUv2: ``{"segmentation": 13, "depth": 1,
        "normal": 3}``; Cityscapes: ``{"segmentation": 7, "depth": 1}``.
    in_channels : int
        Image channels (3).
    filters : sequence of 5 int
        Channels of the five stages (default 64-128-256-512-512, Liu et al.); smaller values
        give a structurally identical compact model for CPU smoke runs.

    Notes
    -----
    What is "shared": following the reference MTL-method code (Nash-MTL and CAGrad
    ``SegNetMtan.shared_parameters``: every parameter whose name does not contain ``pred``),
    ``shared_parameters()`` = the SegNet trunk **and the per-task attention modules**;
    ``task_parameters(t)`` = task ``t``'s prediction head only. The attention modules are
    task-specific in the MTAN paper; counting them as shared is the convention under which the
    published Nash-MTL/CAGrad/Aligned-MTL/F-MTL MTAN numbers were produced.
    ``encode(x)`` returns the per-task attended features stacked as (B, T, 64, H, W)
    (``rep[:, t]`` feeds head ``t``), so representation-level ("-UB") gradients have a block
    structure for this model; use :class:`SegNetSplit` for a genuinely shared representation.

    Parameter count (NYUv2, 3 tasks): 44,229,073 in total, of which the three heads
    hold 111,889 (shared 44,117,184). Same structure and initialisation (Xavier-normal convs,
    zero bias, BN 1/0) as the Nash-MTL/CAGrad ``_SegNet``.
    """

    def __init__(
        self, tasks: Mapping[str, int] | None = None, in_channels: int = 3,
        filters: Sequence[int] = _FILTERS,
    ) -> None:
        super().__init__()
        tasks = dict(NYUV2_TASKS if tasks is None else tasks)
        self.task_names: list[str] = list(tasks)
        f = _check_filters(filters)
        n = len(tasks)
        self.trunk = _SegNetTrunk(in_channels, f)
        self.encoder_att = nn.ModuleList()
        self.decoder_att = nn.ModuleList()
        for _ in range(n):
            enc = nn.ModuleList([_attention(f[0], f[0], f[0])])
            dec = nn.ModuleList([_attention(2 * f[0], f[0], f[0])])
            for i in range(4):
                enc.append(_attention(2 * f[i + 1], f[i + 1], f[i + 1]))
                dec.append(_attention(f[i + 1] + f[i], f[i], f[i]))
            self.encoder_att.append(enc)
            self.decoder_att.append(dec)
        self.encoder_block_att = nn.ModuleList([_conv_bn_relu(f[0], f[1])])
        self.decoder_block_att = nn.ModuleList([_conv_bn_relu(f[0], f[0])])
        for i in range(4):
            if i < 3:
                self.encoder_block_att.append(_conv_bn_relu(f[i + 1], f[i + 2]))
                self.decoder_block_att.append(_conv_bn_relu(f[i + 1], f[i]))
            else:
                self.encoder_block_att.append(_conv_bn_relu(f[i + 1], f[i + 1]))
                self.decoder_block_att.append(_conv_bn_relu(f[i + 1], f[i + 1]))
        self.heads = nn.ModuleDict({t: _prediction_head(f[0], c) for t, c in tasks.items()})
        _init_xavier(self)

    def encode(self, x: Tensor) -> Tensor:
        _check_hw(x)
        enc, ups, dec = self.trunk(x)
        feats = []
        for t in range(len(self.task_names)):
            a = None
            for j in range(5):
                e0, e1 = enc[j]
                mask = self.encoder_att[t][j](e0 if a is None else torch.cat((e0, a), dim=1))
                a = F.max_pool2d(self.encoder_block_att[j](mask * e1), kernel_size=2, stride=2)
            for j in range(5):
                a = F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=True)
                a = self.decoder_block_att[-j - 1](a)
                mask = self.decoder_att[t][-j - 1](torch.cat((ups[j], a), dim=1))
                a = mask * dec[j]
            feats.append(a)
        return torch.stack(feats, dim=1)

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        return {t: _finish(t, self.heads[t](rep[:, i])) for i, t in enumerate(self.task_names)}
