"""MixNet's network and tasks, trained by the MTL core's :class:`~eegmtl.mtl.trainer.Trainer`.

:func:`fit_network` builds :class:`~eegmtl.models.mixnet.MixNet` (or its MIN2Net variant), the
three tasks [reconstruction MSE, semi-hard triplet, class-balanced cross-entropy]
(:mod:`eegmtl.mixnet.losses`) and a :class:`~eegmtl.mtl.trainer.Trainer` with MixNet's
recipe (Autthasan et al., IEEE IoT J. 11(17), 2024; official ``mixnet/trainer.py``): Adam,
ReduceLROnPlateau (x0.5 after 5 stale epochs, down to 1e-4), early stopping, best-epoch weights
restored, the interleaved validation batch after every training step and, by default, adaptive
gradient blending. Any weighting / aggregator / flat option of the core can replace the
blending (:func:`eegmtl.mixnet.config.resolve_mtl`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.eeg.augmentation import channel_sd
from eegmtl.mixnet.augment import augment_training_loader
from eegmtl.mixnet.backbone import build_network
from eegmtl.mixnet.losses import (
    UNLABELED,
    ClassBalancedCrossEntropy,
    LabeledOnly,
    ReconstructionLoss,
    SemiHardTripletLoss,
)
from eegmtl.models.mixnet import MixNet
from eegmtl.mtl.batches import SlicedLoader
from eegmtl.mtl.data import MultiTaskDataset, MultiTaskLoader
from eegmtl.mtl.runtime import seed_everything, select_device
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.trainer import Trainer

__all__ = ["build_method", "fit_network", "make_tasks"]

#: Largest batch of the full validation pass (its losses are computed per batch of this size).
_VAL_BATCH = 1024
#: Largest chunk of that pass's forward on a CPU: chunks of <= 128 trials (near-equal, >= 64
#: once a batch is split) run several times faster per trial than 1024 trials at once and give
#: the same outputs (the FFT convolutions of ``conv_impl="auto"`` serve every chunk >= 16).
_EVAL_FORWARD_CPU = 128


def make_tasks(y_train: np.ndarray, n_classes: int, margin: float, *,
               unlabeled: bool = False) -> list[Task]:
    """MixNet's three tasks in order [reconstruction, metric, classification]; the class
    weights of the cross-entropy are 'balanced' weights of ``y_train``. ``unlabeled``: the
    training data also holds rows labelled :data:`~eegmtl.mixnet.losses.UNLABELED`, which the
    triplet and classification losses skip (:class:`~eegmtl.mixnet.losses.LabeledOnly`)."""
    metric = SemiHardTripletLoss(margin=margin)
    ce = ClassBalancedCrossEntropy.from_labels(y_train, n_classes)
    return [
        Task("reconstruction", ReconstructionLoss()),
        Task("metric", LabeledOnly(metric) if unlabeled else metric),
        Task("classification", LabeledOnly(ce) if unlabeled else ce,
             metrics={"accuracy": _accuracy}),
    ]


def build_method(
    method: Mapping[str, Any], n_tasks: int, *, warmup: int, batch_size: int,
    n_train_batches: int, n_val: int | None, loss_weights: Sequence[float] | None,
) -> tuple[Any, Any]:
    """Weighting and aggregator instances of a resolved method
    (:func:`eegmtl.mixnet.config.resolve_mtl`).

    Gradient blending gets MixNet's settings: ``warmup_epochs``, ``batch_size`` and the
    interleaved validation batch size ``n_val // n_train_batches``; ``"fixed"`` gets
    ``loss_weights``.
    """
    from eegmtl.mtl.aggregators import get_aggregator
    from eegmtl.mtl.weightings import get_weighting

    w = method["weighting"]
    w_params = dict(method["weighting_params"])
    if isinstance(w, str) and w.strip().lower() == "blending":
        w_params.setdefault("warmup_epochs", warmup)
        w_params.setdefault("batch_size", batch_size)
        w_params.setdefault(
            "val_batch_size", max(1, n_val // max(1, n_train_batches)) if n_val else 1
        )
    if isinstance(w, str) and w.strip().lower() == "fixed":
        w_params.setdefault("weights", loss_weights)
    if isinstance(w, str):
        w = get_weighting(w, n_tasks, **w_params)
    a = method["aggregator"]
    if isinstance(a, str):
        a = get_aggregator(a, **dict(method["aggregator_params"]))
    return w, a


def _dataset(x: np.ndarray, y: np.ndarray) -> MultiTaskDataset:
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    return MultiTaskDataset(xt, {"reconstruction": xt, "metric": yt, "classification": yt})


def fit_network(
    x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray | None, y_va: np.ndarray | None, *,
    n_classes: int, method: Mapping[str, Any], latent_dim: int, margin: float, warmup: int,
    batch_size: int, variant: str = "mixnet", sfreq: float = 100.0, lr: float = 1e-3,
    max_epochs: int = 200, patience: int | None = 20, monitor: str = "val_loss",
    interleaved_validation: bool = True, loss_weights: Sequence[float] | None = None,
    checkpoint_dir: str | Path | None = None, resume: bool = False, progress: bool = False,
    checkpoint_every_s: float | None = None,
    seed: int = 0, device: str = "auto", augmentation: Any = None,
    backbone: str | None = None, backbone_kwargs: Mapping[str, Any] | None = None,
    architecture: str | None = None, architecture_kwargs: Mapping[str, Any] | None = None,
    optimizer: str = "adam", weight_decay: float = 0.0,
    betas: Sequence[float] | None = None, scheduler: str | None = "plateau",
    ema_decay: float | None = None, x_unlabeled: np.ndarray | None = None,
) -> tuple[MixNet, Trainer, dict[str, Any]]:
    """Build MixNet and train it on network inputs ``x_*`` ``(n, C, T)`` and labels ``0..K-1``.

    ``augmentation`` (a spec of :func:`eegmtl.eeg.augmentation.make_transforms`) augments the
    training batches only (:func:`eegmtl.mixnet.augment.augment_training_loader`);
    ``backbone`` (a braindecode model name, with ``backbone_kwargs``) replaces MixNet's encoder
    by that trunk; ``architecture`` (``"mmoe"``, ``"cgc"``, ``"ple"``, ``"cross_stitch"``, with
    ``architecture_kwargs``) replaces hard parameter sharing by that MTL architecture of encoder
    copies (:func:`eegmtl.mixnet.backbone.build_network`). ``optimizer``, ``weight_decay``,
    ``betas``, ``scheduler`` (``"plateau"``: MixNet's ReduceLROnPlateau; ``None``: a
    constant learning rate), ``ema_decay`` (weight averaging) and ``checkpoint_every_s`` go to the
    :class:`~eegmtl.mtl.trainer.Trainer`. ``x_unlabeled`` ``(n_u, C, T)``: trials without labels
    shuffled into the training batches, where they train the reconstruction task only (their
    rows are skipped by the triplet and classification losses); an epoch then covers
    ``n + n_u`` trials.

    Returns
    -------
    model : MixNet
        Trained (best epoch restored), in eval mode.
    trainer : Trainer
        The trainer (history, best epoch, device).
    model_kwargs : dict
        What rebuilds the network: ``variant`` plus the constructor arguments.
    """
    seed_everything(seed)
    net_kwargs = dict(n_channels=x_tr.shape[1], n_times=x_tr.shape[2], n_classes=n_classes,
                      latent_dim=latent_dim, sfreq=sfreq)
    arch = {"variant": variant} if backbone is None else {
        "variant": variant, "backbone": backbone, "backbone_kwargs": dict(backbone_kwargs or {})}
    if architecture is not None:  # build_network reads "hps" as hard sharing
        arch.update(architecture=architecture, architecture_kwargs=dict(architecture_kwargs or {}))
    model = build_network(**arch, **net_kwargs)
    tasks = make_tasks(y_tr, n_classes, margin, unlabeled=x_unlabeled is not None)
    x_fit, y_fit = x_tr, np.asarray(y_tr)
    if x_unlabeled is not None:
        x_fit = np.concatenate([x_tr, np.asarray(x_unlabeled, dtype=x_tr.dtype)])
        y_fit = np.concatenate([y_fit, np.full(len(x_unlabeled), UNLABELED, dtype=np.int64)])
    train_loader = MultiTaskLoader(_dataset(x_fit, y_fit), batch_size, shuffle=True, seed=seed)
    loader = augment_training_loader(train_loader, augmentation, sfreq=sfreq, seed=seed,
                                     channel_sd=channel_sd(x_tr) if augmentation else None)
    val_loader = None
    if x_va is not None:
        val_loader = SlicedLoader(_dataset(x_va, y_va), min(len(x_va), _VAL_BATCH))
    w, a = build_method(
        method, len(tasks), warmup=warmup, batch_size=batch_size,
        n_train_batches=len(train_loader), n_val=None if x_va is None else len(x_va),
        loss_weights=loss_weights,
    )
    has_val = val_loader is not None
    trainer = Trainer(
        model, tasks, weighting=w, aggregator=a, flat=method["flat"], optimizer=optimizer,
        lr=float(lr), weight_decay=float(weight_decay),
        betas=None if betas is None else (float(betas[0]), float(betas[1])),
        scheduler=scheduler, max_epochs=int(max_epochs), ema_decay=ema_decay,
        patience=patience if has_val else None, monitor=monitor if has_val else "train_loss",
        interleaved_validation=bool(interleaved_validation) and has_val,
        eval_forward_batch=_EVAL_FORWARD_CPU if select_device(device).type == "cpu" else None,
        checkpoint_dir=checkpoint_dir, checkpoint_every_s=checkpoint_every_s, progress=progress,
        seed=seed, device=device,
    )
    trainer.fit(loader, val_loader, resume=resume)
    model.eval()
    return model, trainer, {**arch, **net_kwargs}


def _accuracy(logits: Tensor, y: Tensor) -> float:
    """Accuracy over the labelled rows (labels >= 0; NaN without any)."""
    hit = (logits.argmax(dim=1) == y.long()).double()
    return float(hit[y >= 0].mean())
