"""The two halves of :meth:`MixNetClassifier.fit <eegmtl.mixnet.classifier.MixNetClassifier.fit>`:
checked data -> validation split -> fitted features, then the network trained by the MTL core
(:func:`eegmtl.mixnet.net.fit_network`) and its fitted attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from eegmtl.mixnet.config import check_labels, json_config, training_options
from eegmtl.mixnet.features import MixNetFeatures
from eegmtl.mixnet.inputs import (
    check_fit_epochs,
    check_predict_epochs,
    checkpoint_seed,
    data_fingerprint,
    split_validation,
)
from eegmtl.mixnet.net import fit_network

__all__ = ["prepare_features", "train_network"]

Arrays = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None",
               "np.ndarray | None"]


def prepare_features(
    est: Any, cfg: Mapping[str, Any], X: Any, y: Any, X_val: Any, y_val: Any,
    X_unlabeled: Any = None, *, resume: bool,
) -> Arrays:
    """Check ``X, y`` (:func:`~eegmtl.mixnet.inputs.check_fit_epochs`), fix the seed (recorded
    with the data fingerprint in a ``checkpoint_dir``), split off the validation part and fit
    the features on the training part; sets ``scale_``, ``amplitude_reference_``,
    ``n_channels_in_``, ``n_times_in_``, ``classes_``, ``seed_``, ``features_``, ``csp_`` and
    ``config_``. Returns the network inputs ``(x_tr, y_tr, x_va, y_va, x_unlabeled)``
    (unlabelled trials checked as prediction epochs and transformed by the fitted features)."""
    X, y, est.scale_ = check_fit_epochs(est, X, y)
    classes, y_idx = np.unique(y, return_inverse=True)
    check_labels(classes, y_idx, est.input)
    fingerprint = None if est.checkpoint_dir is None else data_fingerprint(
        est, X, y, X_val, y_val, X_unlabeled)
    seed = checkpoint_seed(est.checkpoint_dir, est.random_state, resume, cfg["protocol"],
                           fingerprint)
    est.n_channels_in_, est.n_times_in_ = int(X.shape[1]), int(X.shape[2])
    X_tr, y_tr, X_va, y_va = split_validation(
        est, X, y_idx, classes, X_val, y_val, seed=seed, method=cfg["method"]
    )
    est.features_ = MixNetFeatures(
        sfreq=est.sfreq, tmin=est.tmin, tmax=est.tmax, epoch_tmin=est.epoch_tmin,
        sfreq_model=est.sfreq_model, bands=est.bands, filter_order=est.filter_order,
        n_components=est.n_components, input=est.input, scale=est.scale_,
        standardize=est.standardize or False,
    )
    x_tr = est.features_.fit_transform(X_tr, y_tr)
    x_va = None if X_va is None else est.features_.transform(X_va)
    x_un = None
    if X_unlabeled is not None:
        x_un = est.features_.transform(check_predict_epochs(est, X_unlabeled, "X_unlabeled"))
    est.csp_ = est.features_.csp_
    est.classes_ = classes
    est.config_ = json_config(cfg)
    est.seed_ = seed
    return x_tr, y_tr, x_va, y_va, x_un


def train_network(
    est: Any, cfg: Mapping[str, Any], x_tr: np.ndarray, y_tr: np.ndarray,
    x_va: np.ndarray | None, y_va: np.ndarray | None, x_un: np.ndarray | None = None, *,
    resume: bool,
) -> None:
    """Train MixNet on the network inputs; sets ``model_``, ``model_kwargs_``, ``device_``,
    ``n_epochs_trained_``, ``resumed_epochs_``, ``resumed_seconds_``, ``best_epoch_``,
    ``best_weights_``, ``history_``, ``weights_history_`` and ``step_config_``."""
    model, trainer, est.model_kwargs_ = fit_network(
        x_tr, y_tr, x_va, y_va, n_classes=len(est.classes_), method=cfg["method"],
        latent_dim=cfg["latent_dim"], margin=cfg["margin"], warmup=cfg["warmup"],
        batch_size=cfg["batch_size"], variant="min2net" if est.input == "time" else "mixnet",
        sfreq=est.sfreq_model, lr=est.lr, max_epochs=est.max_epochs,
        patience=est.patience, monitor=est.monitor,
        interleaved_validation=est.interleaved_validation, loss_weights=est.loss_weights,
        checkpoint_dir=est.checkpoint_dir, resume=resume, progress=bool(est.verbose),
        checkpoint_every_s=est.checkpoint_every_s,
        seed=est.seed_, device=est.device, augmentation=est.augmentation,
        backbone=est.backbone, backbone_kwargs=est.backbone_kwargs,
        architecture=est.architecture,
        architecture_kwargs=est.architecture_kwargs, x_unlabeled=x_un,
        **training_options(est.get_params(deep=False)),
    )
    est.model_ = model
    est.device_ = str(trainer.device)
    est.n_epochs_trained_ = int(trainer.n_epochs_trained_)
    est.resumed_epochs_ = int(trainer.resumed_epochs_)
    est.resumed_seconds_ = float(trainer.resumed_seconds_)
    est.best_epoch_ = None if trainer.best_epoch_ is None else int(trainer.best_epoch_)
    est.best_weights_ = trainer.best_weights_
    est.history_ = trainer.history_frame("epoch")
    est.weights_history_ = trainer.history_frame("step").reset_index(drop=True)
    est.step_config_ = trainer.step.config()
