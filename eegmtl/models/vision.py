"""Vision backbones with task heads for the MTL benchmarks (plain torch, no torchvision).

Every model implements :class:`eegmtl.mtl.tasks.MultiTaskModel`: ``task_names``,
``encode(x) -> rep``, ``decode(rep) -> {task: output}``, ``shared_parameters()``,
``task_parameters(task)``, and ``forward(x) == decode(encode(x))``.

Models and parameter counts (asserted by ``tests/benchmarks/test_models.py``):

=========================================  ===========  ========  ===========
factory                                    shared       per head  total
=========================================  ===========  ========  ===========
``lenet_multimnist()`` (ParetoMTL)         30,890       510       31,910
``resnet18_multimnist()`` (ParetoMTL)      11,221,540   1,010     11,223,560
``resnet18_celeba()`` (40 binary tasks)    11,176,512   1,026     11,217,552
``resnet18_office(3 domains, 31 cl.)``     11,176,512   15,903    11,224,221
``resnet18_office(4 domains, 65 cl.)``     11,176,512   33,345    11,309,892
``SegNetMTAN()`` NYUv2 (13/1/3)            44,117,184   37,773+   44,229,073
``SegNetMTAN(CITYSCAPES_TASKS)`` (7/1)     41,132,608   37,383+   41,206,984
``SegNetSplit()`` NYUv2                    24,943,296   37,773+   25,055,185
=========================================  ===========  ========  ===========

("+": heads differ per task; segmentation head shown.) The ResNet-18 numbers follow from
torchvision's resnet18 (11,689,512) minus the replaced ``conv1`` / ``fc``. The SegNet-MTAN
total, 44.229 M, is the figure usually quoted for MTAN (Liu et al., CVPR 2019) -- recalled,
not checked against the paper here; the structure re-implements the Nash-MTL / CAGrad
``_SegNet`` (``AvivNavon/nash-mtl: experiments/nyuv2/models.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CITYSCAPES_TASKS",
    "NYUV2_TASKS",
    "BasicBlock",
    "HardSharingModel",
    "LeNetEncoder",
    "ResNet18Encoder",
    "SegNetMTAN",
    "SegNetSplit",
    "count_parameters",
    "lenet_multimnist",
    "resnet18_celeba",
    "resnet18_multimnist",
    "resnet18_office",
]


def count_parameters(params: Iterable[nn.Parameter]) -> int:
    """Number of scalar parameters in an iterable of parameters."""
    return sum(p.numel() for p in params)


class HardSharingModel(nn.Module):
    """A shared encoder followed by one head per task (hard parameter sharing).

    Parameters
    ----------
    encoder : nn.Module
        Maps the input to the shared representation.
    heads : mapping of str to nn.Module
        One head per task; its name is the task name (no dots).
    """

    def __init__(self, encoder: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not heads:
            raise ValueError("give at least one task head.")
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))
        self.task_names: list[str] = list(heads)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        return {name: head(rep) for name, head in self.heads.items()}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.heads:
            raise KeyError(f"unknown task {task!r}; the model has {self.task_names}.")
        return self.heads[task].parameters()


# ------------------------------------------------------------------------------------ LeNet
class LeNetEncoder(nn.Sequential):
    """ParetoMTL's MultiMNIST LeNet trunk (``multiMNIST/model_lenet.py``, Lin et al. 2019).

    Conv2d(1,10,9) → ReLU → MaxPool2 → Conv2d(10,20,5) → ReLU → MaxPool2 → Flatten(500) →
    Linear(500,50) → ReLU, for 1×36×36 inputs. 30,890 parameters.
    """

    def __init__(self, in_channels: int = 1, input_size: int = 36, rep_dim: int = 50) -> None:
        side = ((input_size - 8) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"input_size={input_size} is too small for LeNet (needs >= 18).")
        super().__init__(
            nn.Conv2d(in_channels, 10, kernel_size=9),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(20 * side * side, rep_dim),
            nn.ReLU(),
        )


def lenet_multimnist(
    task_names: Sequence[str] = ("left", "right"), n_classes: int = 10
) -> HardSharingModel:
    """LeNet for the MultiMNIST family (ParetoMTL): shared trunk + ``Linear(50, 10)`` per task.

    Shared parameters 30,890; total 31,910 with the two default heads.
    """
    return HardSharingModel(LeNetEncoder(), {t: nn.Linear(50, n_classes) for t in task_names})


# ---------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016), torchvision's layout and parameter names."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Encoder(nn.Module):
    """ResNet-18 trunk (He et al. 2016) in plain torch, with torchvision's parameter names.

    Parameters
    ----------
    in_channels : int
        Input channels (1 for MultiMNIST, 3 for RGB).
    out_features : int or None
        ``None``: the representation is the 512-d pooled feature. An int: a ``fc`` layer
        ``Linear(512, out_features)`` followed by ReLU (ParetoMTL/F-MTL MultiMNIST variant:
        ``out_features=100``).

    Notes
    -----
    The stem is torchvision's (conv 7×7 stride 2 padding 3, no bias; BN; ReLU; max-pool 3/2/1)
    for every input size, as in ParetoMTL's ``MnistResNet``. Because the names match
    torchvision's, ImageNet weights saved from ``torchvision.models.resnet18`` can be loaded
    with :meth:`load_torchvision_state_dict` (skips ``fc`` and a mismatching ``conv1``).
    Initialisation: Kaiming-normal (fan_out) convs, BN weight 1 / bias 0 (torchvision's).
    """

    def __init__(self, in_channels: int = 3, out_features: int | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        layers, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks = (BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes))
            layers.append(nn.Sequential(*blocks))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module | None = None if out_features is None else nn.Linear(512, out_features)
        self.out_features = 512 if out_features is None else int(out_features)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        if self.fc is not None:
            x = F.relu(self.fc(x))
        return x

    def load_torchvision_state_dict(self, state: Mapping[str, Tensor]) -> list[str]:
        """Load a torchvision ``resnet18`` state dict; returns the keys that were skipped."""
        own = self.state_dict()
        keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(keep, strict=False)
        return sorted(set(state) - set(keep))


def resnet18_multimnist(
    task_names: Sequence[str] = ("left", "right"), n_classes: int = 10
) -> HardSharingModel:
    """ResNet-18 for the MultiMNIST family (ParetoMTL ``MnistResNet``, used by F-MTL Table 1).

    conv1 1→64 (7×7, stride 2), ``fc`` 512→100 + ReLU (shared), heads ``Linear(100, 10)``.
    Shared parameters 11,221,540; total 11,223,560 with two heads.
    """
    return HardSharingModel(
        ResNet18Encoder(in_channels=1, out_features=100),
        {t: nn.Linear(100, n_classes) for t in task_names},
    )


#: The 40 CelebA attributes in the order of ``list_attr_celeba.txt``.
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)


def resnet18_celeba(task_names: Sequence[str] = CELEBA_ATTRIBUTES) -> HardSharingModel:
    """ResNet-18 with one binary head ``Linear(512, 2)`` per CelebA attribute.

    As in MGDA (Sener & Koltun, NeurIPS 2018, §4 CelebA: ResNet-18 shared, a linear layer
    per attribute, 2 logits + cross-entropy) and the RLW paper's CelebA protocol (64×64 input).
    Shared 11,176,512; total 11,217,552 for 40 tasks.
    """
    return HardSharingModel(ResNet18Encoder(3), {t: nn.Linear(512, 2) for t in task_names})


def resnet18_office(domains: Sequence[str], n_classes: int) -> HardSharingModel:
    """ResNet-18 for Office-31 / Office-Home (multi-input MTL, LibMTL ``examples/office``).

    One task per domain, each with its own inputs and head ``Linear(512, n_classes)``; the
    encoder is shared. LibMTL starts from ImageNet weights: load them with
    ``model.encoder.load_torchvision_state_dict(torch.load(path))`` if you have a torchvision
    checkpoint (not downloaded here). In a multi-input step, task ``t``'s loss must use only
    ``decode(encode(x_t))[t]``.
    """
    return HardSharingModel(ResNet18Encoder(3), {d: nn.Linear(512, n_classes) for d in domains})


# ---------------------------------------------------------------------- SegNet / MTAN
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


class SegNetMTAN(nn.Module):
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

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for name, p in self.named_parameters():
            if not name.startswith("heads."):
                yield p

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.heads:
            raise KeyError(f"unknown task {task!r}; the model has {self.task_names}.")
        return self.heads[task].parameters()
