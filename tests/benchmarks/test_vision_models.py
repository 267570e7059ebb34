"""Vision models: protocol, output shapes, parameter counts, shared/task split."""

from __future__ import annotations

import pytest
import torch

from eegmtl.models.vision import (
    CELEBA_ATTRIBUTES,
    CITYSCAPES_TASKS,
    ResNet18Encoder,
    SegNetMTAN,
    SegNetSplit,
    count_parameters,
    lenet_multimnist,
    resnet18_celeba,
    resnet18_multimnist,
    resnet18_office,
)
from eegmtl.mtl.tasks import MultiTaskModel


def check_partition(model: torch.nn.Module) -> tuple[int, dict[str, int]]:
    """shared + heads = all parameters, without overlap."""
    shared = {id(p) for p in model.shared_parameters()}
    heads = {t: {id(p) for p in model.task_parameters(t)} for t in model.task_names}
    everything = {id(p) for p in model.parameters()}
    union = set(shared)
    for ids in heads.values():
        assert not ids & union
        union |= ids
    assert union == everything
    return (count_parameters(model.shared_parameters()),
            {t: count_parameters(model.task_parameters(t)) for t in model.task_names})


def test_lenet_counts_and_shapes() -> None:
    torch.manual_seed(0)
    m = lenet_multimnist()
    assert isinstance(m, MultiTaskModel)
    shared, heads = check_partition(m)
    assert shared == 30_890 and heads == {"left": 510, "right": 510}  # perf-anchors.md §1a
    assert count_parameters(m.parameters()) == 31_910
    x = torch.rand(4, 1, 36, 36)
    rep = m.encode(x)
    assert rep.shape == (4, 50) and (rep >= 0).all()
    out = m(x)
    assert set(out) == {"left", "right"} and out["left"].shape == (4, 10)
    torch.testing.assert_close(out["right"], m.decode(rep)["right"])


def test_resnet18_multimnist() -> None:
    m = resnet18_multimnist()
    shared, heads = check_partition(m)
    # torchvision resnet18: 11,689,512 - conv1 (3->1 channel: -6,272) - fc (1000->100: -461,700)
    assert shared == 11_689_512 - 6_272 - 461_700 == 11_221_540
    assert heads == {"left": 1010, "right": 1010}
    m.eval()
    out = m(torch.rand(2, 1, 36, 36))
    assert out["left"].shape == (2, 10)
    assert (m.encode(torch.rand(2, 1, 36, 36)) >= 0).all()  # ReLU after fc


def test_resnet18_celeba_and_office() -> None:
    m = resnet18_celeba()
    shared, heads = check_partition(m)
    assert shared == 11_689_512 - 513_000 == 11_176_512  # no fc
    assert len(heads) == 40 and set(heads.values()) == {1026}
    assert list(m.task_names) == list(CELEBA_ATTRIBUTES)
    m.eval()
    out = m(torch.rand(2, 3, 64, 64))
    assert out["Smiling"].shape == (2, 2)
    o = resnet18_office(["amazon", "dslr", "webcam"], 31)
    _, heads = check_partition(o)
    assert heads == {"amazon": 15_903, "dslr": 15_903, "webcam": 15_903}
    with pytest.raises(KeyError, match="unknown task"):
        list(o.task_parameters("caltech"))


def test_torchvision_state_dict_names() -> None:
    enc = ResNet18Encoder(3)
    names = set(enc.state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
            "layer2.0.downsample.0.weight", "layer4.1.bn2.weight"} <= names
    other = ResNet18Encoder(1, out_features=100)  # conv1 and fc shapes differ
    skipped = other.load_torchvision_state_dict(enc.state_dict())
    assert skipped == ["conv1.weight"]
    torch.testing.assert_close(other.layer3[0].conv1.weight, enc.layer3[0].conv1.weight)


def test_segnet_mtan_counts() -> None:
    with torch.device("meta"):  # full-size models without allocating 44 M weights
        m = SegNetMTAN()
        c = SegNetMTAN(CITYSCAPES_TASKS)
        split = SegNetSplit(CITYSCAPES_TASKS)
    shared, heads = check_partition(m)
    assert count_parameters(m.parameters()) == 44_229_073
    assert shared == 44_117_184
    assert heads == {"segmentation": 37_773, "depth": 36_993, "normal": 37_123}
    assert c.task_names == ["segmentation", "depth"]
    assert count_parameters(c.parameters()) == 41_206_984
    shared, heads = check_partition(split)
    assert shared == 24_943_296 and heads == {"segmentation": 37_383, "depth": 36_993}


def test_segnet_mtan_forward_compact() -> None:
    torch.manual_seed(0)
    m = SegNetMTAN(filters=(8, 16, 16, 32, 32))
    check_partition(m)
    with torch.no_grad():  # train mode: batch-norm statistics of the batch
        x = torch.rand(2, 3, 32, 64)
        rep = m.encode(x)
        out = m.decode(rep)
        # attention: task features differ; each head only reads its own slice
        diff = (rep[:, 0] - rep[:, 1]).abs().max()
        assert diff > 1e-3 * rep.abs().max() > 0
    assert rep.shape == (2, 3, 8, 32, 64)
    assert out["segmentation"].shape == (2, 13, 32, 64) and out["depth"].shape == (2, 1, 32, 64)
    torch.testing.assert_close(out["normal"].norm(dim=1), torch.ones(2, 32, 64))
    with pytest.raises(ValueError, match="divisible by 32"):
        m.encode(torch.rand(1, 3, 30, 64))
    with pytest.raises(ValueError, match="5 positive"):
        SegNetMTAN(filters=(8, 16))


def test_segnet_split_forward_compact() -> None:
    m = SegNetSplit(CITYSCAPES_TASKS, filters=(8, 8, 16, 16, 16))
    check_partition(m)
    m.eval()
    with torch.no_grad():
        rep = m.encode(torch.rand(1, 3, 32, 32))
        out = m.decode(rep)
    assert rep.shape == (1, 8, 32, 32) and out["segmentation"].shape == (1, 7, 32, 32)
