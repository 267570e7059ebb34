"""Training protocols of the vision benchmarks and what a run is built from: data set names,
optimiser settings per protocol, the tasks, the model and the LR schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from eegmtl.mtl import Task
from eegmtl.mtl._registry import registry_key
from eegmtl.mtl.data import MultiTaskDataset

__all__ = ["BENCHMARKS", "PROTOCOLS", "canonical_benchmark"]

#: benchmark argument -> MultiMNIST-family data set name of :func:`load_multimnist`
BENCHMARKS: dict[str, str] = {
    "multimnist": "multi_mnist",
    "multi_mnist": "multi_mnist",
    "multifashion": "multi_fashion",
    "multi_fashion": "multi_fashion",
    "multifashion_mnist": "multi_fashion_mnist",
    "multi_fashion_mnist": "multi_fashion_mnist",
    "multifashion+mnist": "multi_fashion_mnist",
    "multi_fashion_and_mnist": "multi_fashion_mnist",
}

#: Training protocols. ``epochs`` is the default when ``run_benchmark(epochs=None)``.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "lenet": {
        "model": "lenet", "optimizer": "adam", "lr": 1e-3, "scheduler": None,
        "batch_size": 256, "epochs": 100,
        "source": "LeNet (ParetoMTL) with the F-MTL/PHN optimiser (Adam 1e-3, no schedule)",
    },
    "paretomtl-lenet": {
        "model": "lenet", "optimizer": "sgd", "lr": 1e-3,
        "scheduler": {"name": "multistep", "milestones": [15, 30, 45, 60, 75, 90], "gamma": 0.5},
        "batch_size": 256, "epochs": 100,
        "source": "ParetoMTL multiMNIST/train.py (SGD 1e-3 momentum 0.9, MultiStepLR)",
    },
    "resnet18": {
        "model": "resnet18", "optimizer": "adam", "lr": 1e-3, "scheduler": None,
        "batch_size": 256, "epochs": 100,
        "source": "F-MTL Table 1 (ResNet-18, Adam 1e-3, bs 256, 100 epochs; run.sh: 200)",
    },
}

def canonical_benchmark(name: str) -> str:
    """Canonical MultiMNIST-family data set name for a benchmark argument."""
    key = registry_key(str(name))
    if key not in BENCHMARKS:
        raise ValueError(
            f"unknown benchmark {name!r}; the runner supports the MultiMNIST family: "
            f"{sorted(set(BENCHMARKS))}. (NYUv2, Cityscapes, CelebA and Office loaders exist in "
            "eegmtl.benchmarks but have no runner yet.)"
        )
    return BENCHMARKS[key]


def _accuracy(out: Tensor, y: Tensor) -> float:
    return float((out.argmax(dim=1) == y).float().mean())


def _tasks(names: Sequence[str]) -> list[Task]:
    return [
        Task(n, F.cross_entropy, metrics={"accuracy": _accuracy}, higher_is_better=True)
        for n in names
    ]


def _build_model(model: str, task_names: Sequence[str]) -> torch.nn.Module:
    from eegmtl.models.vision import lenet_multimnist, resnet18_multimnist

    key = model.lower().replace("-", "")
    if key == "lenet":
        return lenet_multimnist(tuple(task_names))
    if key == "resnet18":
        return resnet18_multimnist(tuple(task_names))
    from eegmtl.models.lenet_mtl import LENET_ARCHITECTURES  # LeNet-expert MMoE/CGC/cross-stitch

    if key in LENET_ARCHITECTURES:
        return LENET_ARCHITECTURES[key](tuple(task_names))
    raise ValueError(
        f"unknown model {model!r}; use 'lenet', 'resnet18' or one of {sorted(LENET_ARCHITECTURES)}."
    )


def _scheduler(spec: Mapping[str, Any] | None) -> Any:
    if spec is None:
        return None
    if spec.get("name") == "multistep":
        milestones, gamma = list(spec["milestones"]), float(spec["gamma"])
        return lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)
    raise ValueError(f"unknown scheduler spec {spec!r}; use None or {{'name': 'multistep', ...}}.")


def _as_mtl_dataset(ds: Any, n: int | None, name: str) -> MultiTaskDataset:
    x, targets = getattr(ds, "x", None), getattr(ds, "targets", None)
    if x is None or targets is None:
        raise TypeError(
            f"the {name} split must expose .x and .targets (MultiTaskTensorDataset or "
            f"MultiTaskDataset); got {type(ds).__name__}."
        )
    if n is not None:
        if n < 1 or n > len(x):
            raise ValueError(f"n_{name}={n} must be in [1, {len(x)}] (size of the {name} split).")
        x, targets = x[:n], {k: v[:n] for k, v in targets.items()}
    return MultiTaskDataset(x, dict(targets))
