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

The SegNet models live in :mod:`eegmtl.models.segnet` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fast_conv import FastConv2d
from .segnet import CITYSCAPES_TASKS, NYUV2_TASKS, SegNetMTAN, SegNetSplit

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
    Linear(500,50) → ReLU, for 1×36×36 inputs. 30,890 parameters. The convolutions are
    :class:`~eegmtl.models.fast_conv.FastConv2d` (``nn.Conv2d`` with a faster weight gradient on
    the CPU; same parameters and outputs, gradients equal to float rounding).
    """

    def __init__(self, in_channels: int = 1, input_size: int = 36, rep_dim: int = 50) -> None:
        side = ((input_size - 8) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"input_size={input_size} is too small for LeNet (needs >= 18).")
        super().__init__(
            FastConv2d(in_channels, 10, kernel_size=9),
            nn.ReLU(),
            nn.MaxPool2d(2),
            FastConv2d(10, 20, kernel_size=5),
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
