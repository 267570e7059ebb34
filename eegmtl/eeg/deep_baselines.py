"""Modern deep baselines for BCIC IV 2b: braindecode networks with their papers' recipes.

Every network is trained through one code path, :func:`eegmtl.eeg.baselines._eeg_classifier`
(``braindecode.EEGClassifier``; the same as the EEGNet / ShallowFBCSPNet baselines), wrapped by
:class:`BraindecodeClassifier`, a scikit-learn classifier that

1. resamples the trials from the input rate to the recipe's rate (polyphase,
   :class:`eegmtl.eeg.preprocessing.Resampler`) and, where the recipe says so, standardises them
   with the mean and SD of the *training* trials (one scalar each, as the CTNet /
   EEG-Conformer code; TCFormer's and EEG-TCNet's scale each channel);
2. early-stops on the evaluation's validation fold when ``fit`` gets ``X_val, y_val``
   (skorch ``predefined_split``; best-``valid_loss`` weights restored), else on a stratified
   20 % split of the training trials;
3. optionally augments *training* batches (:mod:`eegmtl.eeg.augmentation`).

Recipes: :data:`eegmtl.eeg.recipes.RECIPES` (optimiser, learning rate, epochs, batch, rate,
source and deviations of every network), re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from eegmtl.eeg.checks import UNIT_TO_UV, AmplitudeReference, check_fit_layout, infer_units
from eegmtl.eeg.preprocessing import (
    EpochStandardizer,
    Resampler,
    check_epochs_array,
    standardize_mode,
)
from eegmtl.eeg.recipes import RECIPES, Recipe, get_recipe, recipe_table

__all__ = [
    "RECIPES",
    "BraindecodeClassifier",
    "Recipe",
    "deep_baseline_factory",
    "make_deep_baseline",
    "recipe_table",
]


class BraindecodeClassifier(ClassifierMixin, BaseEstimator):
    """A braindecode network trained with its paper's recipe (see :data:`RECIPES`).

    Takes trials ``X (n_trials, n_channels, n_times)`` in microvolts at ``sfreq`` (what MOABB's
    paradigms return); trials that look like volts or millivolts are refused with the factor
    that fixes them. Prediction trials must have the fit's channels and length; an amplitude
    more than 10x off the fit's warns (``AmplitudeWarning``: a unit or gain change).

    Parameters
    ----------
    model : str
        Key of :data:`RECIPES` (braindecode class name), e.g. ``"ATCNet"``.
    sfreq : float, default 250
        Rate of the input trials; they are resampled to the recipe's rate.
    lr, max_epochs, batch_size, optimizer, weight_decay, betas, standardize : optional
        ``None`` → the recipe's value. ``standardize``: ``True`` / ``"all"`` (one mean and SD
        of the training trials), ``"channel"`` or ``"channel_time"``
        (:class:`~eegmtl.eeg.preprocessing.EpochStandardizer`), ``False``: none.
    augmentation : "recipe", spec or None, default "recipe"
        ``"recipe"``: the recipe's augmentation; otherwise a spec of
        :func:`eegmtl.eeg.augmentation.make_transforms` (``None``: none).
    model_kwargs : dict, optional
        Updates the recipe's network arguments.
    patience : int or None, default 30
        Early-stopping patience on the validation loss (``None``: train ``max_epochs`` and keep
        the last weights).
    random_state : int, default 0
    device : str, default "auto"
        ``cuda`` when torch sees a GPU, else ``cpu``; or a torch device name.
    checkpoint_dir : path or None, default None
        ``last.pt`` goes there after an epoch (at most every ``checkpoint_every_s`` seconds;
        atomic, with a fingerprint of the data and settings); ``fit(..., resume=True)``
        continues an interrupted fit exactly (:mod:`eegmtl.eeg.skorch_checkpoint`).
    checkpoint_every_s : float, default 30
        Minimum seconds between two checkpoint writes.
    """

    #: parameters that may differ between an interrupted fit and its resumption
    _RESUMABLE = ("device", "checkpoint_dir", "checkpoint_every_s")

    def __init__(self, model: str = "ATCNet", sfreq: float = 250.0, *, lr: float | None = None,
                 max_epochs: int | None = None, batch_size: int | None = None,
                 optimizer: str | None = None, weight_decay: float | None = None,
                 betas: tuple[float, float] | None = None, standardize: bool | None = None,
                 augmentation: Any = "recipe",
                 model_kwargs: Mapping[str, Any] | None = None, patience: int | None = 30,
                 random_state: int = 0, device: str = "auto",
                 checkpoint_dir: str | Path | None = None,
                 checkpoint_every_s: float = 30.0) -> None:
        self.model = model
        self.sfreq = sfreq
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.betas = betas
        self.standardize = standardize
        self.augmentation = augmentation
        self.model_kwargs = model_kwargs
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_s = checkpoint_every_s

    def resolved_config(self) -> dict[str, Any]:
        """Recipe values with this estimator's overrides (what ``fit`` uses)."""
        r = get_recipe(self.model)

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        aug = r.augmentation if isinstance(self.augmentation, str) and \
            self.augmentation == "recipe" else self.augmentation
        return {
            "model": r.model, "optimizer": pick(self.optimizer, r.optimizer),
            "lr": float(pick(self.lr, r.lr)), "max_epochs": int(pick(self.max_epochs,
                                                                     r.max_epochs)),
            "batch_size": int(pick(self.batch_size, r.batch_size)),
            "weight_decay": float(pick(self.weight_decay, r.weight_decay)),
            "betas": pick(self.betas, r.betas), "sfreq": r.sfreq,
            "standardize": pick(self.standardize, r.standardize),
            "augmentation": aug, "model_kwargs": {**r.model_kwargs, **(self.model_kwargs or {})},
        }

    # ------------------------------------------------------------------ preprocessing
    def _check_layout(self, X: Any, name: str = "X") -> np.ndarray:
        """``X`` checked against the fit: 3-D and finite, the fit's channels and trial length,
        an amplitude within 10x of the fit's (else an ``AmplitudeWarning``)."""
        X = check_epochs_array(np.asarray(X), ndim=3, name=name)
        check_fit_layout(X, getattr(self, "n_channels_in_", None),
                         getattr(self, "n_times_in_", None), sfreq=self.sfreq, name=name)
        reference = getattr(self, "amplitude_reference_", None)
        if reference is not None:
            AmplitudeReference(**reference).check_scale(X, name=name)
        return X

    def _prepare(self, X: Any) -> np.ndarray:
        X = check_epochs_array(np.asarray(X), ndim=3)
        if float(self.sfreq) != self.sfreq_model_:
            X = Resampler(float(self.sfreq), self.sfreq_model_, method="polyphase",
                          pad="constant").transform(X)
        if self.scale_ is not None:
            X = (X - self.scale_[0]) / self.scale_[1]
        return np.ascontiguousarray(X, dtype=np.float32)

    def _fit_inputs(self, cfg: Mapping[str, Any], X: np.ndarray, y: np.ndarray, X_val: Any,
                    y_val: Any) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """Checked network inputs of a fit: training trials at the recipe's rate (standardised
        with the training trials' mean and SD where the recipe says so), class indices, and
        the validation pair prepared the same way (or ``None``). Refuses trials that do not
        look like microvolts (:func:`~eegmtl.eeg.checks.infer_units`). Sets ``classes_``,
        ``amplitude_reference_``, ``n_channels_in_``, ``n_times_in_``, ``sfreq_model_`` and
        ``scale_``."""
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} trials but y has {len(y)} labels.")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y holds a single class; a classifier needs at least two.")
        reference = AmplitudeReference.fit(X)
        unit = infer_units(X)
        if unit != "uV":
            raise ValueError(
                f"X has a median trial amplitude (RMS) of {reference.scale:.3g}, which looks "
                f"like {unit}; {type(self).__name__} takes microvolts (as MOABB's paradigms "
                f"return them; EEG: about 1-100 µV): multiply X by {UNIT_TO_UV[unit]:g}.")
        self.amplitude_reference_ = asdict(reference)
        self.n_channels_in_, self.n_times_in_ = int(X.shape[1]), int(X.shape[2])
        self.sfreq_model_ = float(cfg["sfreq"])
        self.scale_: tuple[float, float] | None = None
        Xt = self._prepare(X)
        mode = standardize_mode(cfg["standardize"])
        if mode is not None:
            fitted = EpochStandardizer(per=mode).fit(Xt)
            self.scale_ = (fitted.mean_, fitted.scale_)
            Xt = fitted.transform(Xt).astype(np.float32, copy=False)
        val = None
        if X_val is not None:
            if not np.isin(np.asarray(y_val), self.classes_).all():
                raise ValueError("y_val holds labels that are not in y.")
            yv = np.searchsorted(self.classes_, np.asarray(y_val))
            val = (self._prepare(self._check_layout(X_val, "X_val")), yv.astype(np.int64))
        return Xt, y_idx.astype(np.int64), val

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
            resume: bool = False) -> BraindecodeClassifier:
        """Fit on ``X (n, C, T)``; early-stop on ``X_val, y_val`` when given.

        ``resume=True`` continues from ``checkpoint_dir/last.pt`` when it exists (same data and
        settings; otherwise :class:`~eegmtl.mtl.checkpoint.CheckpointMismatchError`) and ends
        with the weights and history of an uninterrupted fit. ``resumed_epochs_`` and
        ``resumed_seconds_`` say how many epochs, and how many seconds of training, came
        from the checkpoint (0 for a fresh fit).
        """
        from eegmtl._compat import import_braindecode

        import_braindecode()
        from braindecode import models
        from skorch.dataset import Dataset
        from skorch.helper import predefined_split

        from eegmtl.eeg.augmentation import augmentation_n_copies, channel_sd, make_transforms
        from eegmtl.eeg.baselines import _eeg_classifier

        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither.")
        if resume and self.checkpoint_dir is None:
            raise ValueError("fit(resume=True) needs checkpoint_dir=<folder>.")
        cfg = self.resolved_config()
        for key in ("max_epochs", "batch_size"):
            if cfg[key] < 1:
                raise ValueError(f"{key} must be a positive integer; got {cfg[key]}.")
        if not cfg["lr"] > 0:
            raise ValueError(f"lr must be > 0; got {cfg['lr']}.")
        X = check_epochs_array(np.asarray(X), ndim=3)
        y = np.asarray(y)
        Xt, y_idx, val = self._fit_inputs(cfg, X, y, X_val, y_val)
        split: Any = "internal"
        if val is not None:
            split = predefined_split(Dataset(*val))
        seed = int(self.random_state)
        opt_kwargs = {"betas": tuple(cfg["betas"])} if cfg["betas"] else {}
        transforms = make_transforms(cfg["augmentation"], sfreq=self.sfreq_model_,
                                     random_state=seed, channel_sd=channel_sd(Xt))
        ckpt, state = None, None
        if self.checkpoint_dir is not None:
            from eegmtl._io import fit_fingerprint
            from eegmtl.eeg.skorch_checkpoint import (
                EpochCheckpoint,
                load_fit_checkpoint,
                resume_fit,
            )

            fingerprint = fit_fingerprint(self, X, y, X_val, y_val, resumable=self._RESUMABLE)
            path = Path(self.checkpoint_dir) / "last.pt"
            ckpt = EpochCheckpoint(path, fingerprint, transforms,
                                   every_s=self.checkpoint_every_s)
            state = load_fit_checkpoint(path, fingerprint) if resume else None
        net = _eeg_classifier(
            getattr(models, cfg["model"]), lr=cfg["lr"], max_epochs=cfg["max_epochs"],
            batch_size=cfg["batch_size"], patience=self.patience, seed=seed, device=self.device,
            optimizer=cfg["optimizer"], weight_decay=cfg["weight_decay"],
            optimizer_kwargs=opt_kwargs, train_split=split, transforms=transforms,
            n_augmentation=augmentation_n_copies(cfg["augmentation"]),
            extra_callbacks=[("checkpoint", ckpt)] if ckpt is not None else (),
            n_chans=Xt.shape[1], n_outputs=len(self.classes_), n_times=Xt.shape[2],
            sfreq=self.sfreq_model_, **cfg["model_kwargs"],
        )
        net.set_params(verbose=0)
        if state is None:
            net.fit(Xt, y_idx.astype(np.int64))
        else:
            resume_fit(net, state, ckpt, Xt, y_idx.astype(np.int64))
        self.resumed_epochs_ = 0 if state is None else int(state["epoch"])
        self.resumed_seconds_ = 0.0 if state is None else float(state.get("elapsed", 0.0))
        self.net_ = net
        self.history_ = net.history
        self.n_epochs_trained_ = len(net.history)
        return self

    # ------------------------------------------------------------------ inference
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the network's output), ``(n, n_classes)``."""
        check_is_fitted(self, "classes_")
        X = self._check_layout(X)
        if getattr(self, "net_", None) is not None:
            return np.asarray(self.net_.predict_proba(self._prepare(X)), dtype=np.float64)
        # fitted by eegmtl.eeg.batched_fit: a plain network, no skorch wrapper
        import torch

        Xt = torch.from_numpy(self._prepare(X))
        module = self.module_.eval()
        device = next(module.parameters()).device
        size = int(self.resolved_config()["batch_size"])
        with torch.no_grad():
            out = [torch.softmax(module(Xt[i:i + size].to(device)), dim=1).cpu()
                   for i in range(0, len(Xt), size)]
        return torch.cat(out).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (in the labels' original type)."""
        proba = self.predict_proba(X)  # first: an unfitted estimator raises NotFittedError
        return self.classes_[proba.argmax(axis=1)]


def make_deep_baseline(model: str, sfreq: float = 250.0, **overrides: Any) -> BraindecodeClassifier:
    """Unfitted :class:`BraindecodeClassifier` for ``model`` (recipe values + ``overrides``)."""
    get_recipe(model)
    return BraindecodeClassifier(model=model, sfreq=sfreq, **overrides)


def deep_baseline_factory(config: Mapping[str, Any]) -> BraindecodeClassifier:
    """Registry factory: ``config = {"model": "ATCNet", **BraindecodeClassifier options}``."""
    cfg = dict(config)
    if "model" not in cfg:
        raise KeyError(f"config needs a 'model' key (one of {sorted(RECIPES)}); got {cfg}.")
    unknown = set(cfg) - set(BraindecodeClassifier().get_params())
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)} for BraindecodeClassifier; it "
                        f"accepts {sorted(BraindecodeClassifier().get_params())}.")
    return make_deep_baseline(**cfg)
