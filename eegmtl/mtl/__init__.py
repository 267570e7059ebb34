"""eegmtl.mtl -- the model-agnostic multi-task learning core (torch, numpy, scipy only).

Three concerns kept apart (DESIGN.md): per-task gradients (:mod:`~eegmtl.mtl.gradients`),
aggregators of the (T, P) gradient matrix (:mod:`~eegmtl.mtl.aggregators`), loss weightings
(:mod:`~eegmtl.mtl.weightings`); :class:`MTLStep` composes them for one step, :mod:`flat` adds
the F-MTL sharpness-aware variant, :class:`Trainer` runs epochs with validation, early stopping,
checkpoints and history. :mod:`~eegmtl.mtl.metrics` holds Δp/Δm, calibration and
gradient-conflict diagnostics.

Quick start::

    from eegmtl.mtl import Task, Trainer, make_loader
    trainer = Trainer(model, tasks, aggregator="pcgrad", flat=FlatConfig(rho=0.05))
    trainer.fit(make_loader(train, 32), make_loader(val, 32, shuffle=False))
"""

from __future__ import annotations

import importlib
from typing import Any

from eegmtl.mtl.checkpoint import load_checkpoint, save_checkpoint
from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader, make_loader, to_device
from eegmtl.mtl.flat import FMTL_MULTIMNIST, FlatConfig, frozen_batchnorm, make_flat_config
from eegmtl.mtl.gradients import GradientEngine, TaskGradients
from eegmtl.mtl.runtime import seed_everything, select_device
from eegmtl.mtl.step import MTLStep, StepResult, compute_losses, resolve_method
from eegmtl.mtl.tasks import MultiTaskModel, Task, check_tasks
from eegmtl.mtl.trainer import Trainer

# Owned by other modules; imported lazily so that a partial checkout still imports.
_LAZY = {
    "Aggregator": "eegmtl.mtl.aggregators",
    "Aggregation": "eegmtl.mtl.aggregators",
    "AGGREGATORS": "eegmtl.mtl.aggregators",
    "get_aggregator": "eegmtl.mtl.aggregators",
    "Weighting": "eegmtl.mtl.weightings",
    "WEIGHTINGS": "eegmtl.mtl.weightings",
    "get_weighting": "eegmtl.mtl.weightings",
    "aggregators": "eegmtl.mtl.aggregators",
    "weightings": "eegmtl.mtl.weightings",
    "metrics": "eegmtl.mtl.metrics",
    "gradients": "eegmtl.mtl.gradients",
    "flat": "eegmtl.mtl.flat",
}

__all__ = [
    "AGGREGATORS",
    "FMTL_MULTIMNIST",
    "WEIGHTINGS",
    "Aggregation",
    "Aggregator",
    "FlatConfig",
    "GradientEngine",
    "MTLStep",
    "MultiTaskDataset",
    "MultiTaskLoader",
    "MultiTaskModel",
    "StepResult",
    "Task",
    "TaskGradients",
    "Trainer",
    "Weighting",
    "check_tasks",
    "compute_losses",
    "frozen_batchnorm",
    "get_aggregator",
    "get_weighting",
    "load_checkpoint",
    "make_flat_config",
    "make_loader",
    "metrics",
    "resolve_method",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "to_device",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if _LAZY[name].endswith(name) else getattr(module, name)
    try:  # metric functions re-exported by name (delta_p, brier_score, ...)
        metrics = importlib.import_module("eegmtl.mtl.metrics")
    except ImportError:
        metrics = None
    if metrics is not None and name in getattr(metrics, "__all__", ()):
        return getattr(metrics, name)
    raise AttributeError(f"module 'eegmtl.mtl' has no attribute {name!r}")
