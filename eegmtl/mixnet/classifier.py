"""scikit-learn estimator for MixNet: epochs in, motor-imagery classes out.

:class:`MixNetClassifier` wraps the MixNet pipeline of P. Autthasan et al., "MixNet: Joining
Force of Classical and Modern Approaches Toward the Comprehensive Pipeline in Motor Imagery EEG
Classification", IEEE Internet of Things Journal 11(17):28539-28554, 2024 (arXiv 2409.04104):
features (:mod:`eegmtl.mixnet.features`) -> three-task network trained by the MTL core
(:mod:`eegmtl.mixnet.net`). Input checks and the validation split: :mod:`eegmtl.mixnet.inputs`;
settings: :mod:`eegmtl.mixnet.config`; save / load: :mod:`eegmtl.mixnet.io`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from eegmtl.mixnet.config import resolve_config
from eegmtl.mixnet.defaults import TRAINING_DEFAULTS
from eegmtl.mixnet.fitting import prepare_features, train_network
from eegmtl.mixnet.inference import run_network
from eegmtl.mixnet.inputs import check_predict_epochs

__all__ = ["MixNetClassifier"]


class MixNetClassifier(ClassifierMixin, BaseEstimator):
    """MixNet (filter-bank CSP + three-task network) as a scikit-learn classifier.

    Takes epochs ``X`` of shape ``(n_trials, n_channels, n_times)`` sampled at ``sfreq`` Hz and
    any labels (ints, strings). The pipeline:

    1. **features** (:class:`~eegmtl.mixnet.features.MixNetFeatures`): 0-4 s window, FFT
       resampling to 100 Hz, 9-band Butterworth filter bank 4-40 Hz (order 5, zero-phase,
       designed once at fit) and filter-bank CSP (U = 2 per band), fitted on the training part
       only -> ``(n, 18, 400)`` "spectral-spatial signals";
    2. **MixNet** (:class:`eegmtl.models.mixnet.MixNet`), three tasks [reconstruction MSE,
       semi-hard triplet, class-balanced cross-entropy] trained by
       :class:`eegmtl.mtl.trainer.Trainer` with MixNet's recipe: Adam 1e-3, ReduceLROnPlateau
       (x0.5 after 5 stale epochs, down to 1e-4), at most 200 epochs, early stopping after 20,
       best-epoch weights restored, interleaved validation (one validation batch after every
       training step) and adaptive gradient blending by default.

    ``fit`` holds out a stratified ``validation_size`` share of the training trials (or uses
    the ``X_val, y_val`` given to :meth:`fit`) for MixNet's interleaved validation, gradient
    blending, the LR schedule and early stopping; the CSP is fitted on the rest.

    Parameters
    ----------
    protocol : {"sd", "si"}, default "sd"
        Defaults of ``batch_size`` / ``margin`` / ``latent_dim`` / ``warmup``: MixNet's 2b
        values, SD 32 / 0.1 / 4 / 7, SI 100 / 5.0 / 18 / 3 (:mod:`eegmtl.mixnet.defaults`;
        ``"subject_dependent"`` / ``"subject_independent"`` accepted). Explicit values win.
    mtl : str or dict, default "blending"
        Multi-task method (:func:`~eegmtl.mixnet.config.resolve_mtl`): ``"blending"`` (MixNet's
        adaptive gradient blending), any weighting or aggregator of the core (``"rlw"``,
        ``"pcgrad"``, ``"aligned_mtl"``, ...), ``"f-"``-prefixed flat variants, ``"fixed"``.
    weighting, aggregator, flat : optional
        Override that part of ``mtl`` (names or instances; ``flat`` as in
        :class:`~eegmtl.mtl.trainer.Trainer`); ``None`` keeps what ``mtl`` says.
    loss_weights : sequence of 3 floats or None, default None
        Constant [mse, triplet, CE] weights (selects ``mtl="fixed"``); MIN2Net 2b SD:
        [0.5, 0.1, 1.0].
    sfreq : float, default 250
        Sampling rate of ``X`` in Hz (BCIC IV 2b: 250).
    tmin, tmax : float, default 0, 4
        Window ``[tmin, tmax)`` in seconds relative to the cue (MixNet 2b: 0-4 s after the cue).
    epoch_tmin, epoch_tmax : float, default 0, None
        Time of the first sample of ``X`` and end of each trial relative to the cue
        (``epoch_tmax=None``: trials end with the window, as the 0-4 s 2b export and MOABB's
        ``LeftRightImagery(tmax=4)`` on 2b). The trial length must fit ``sfreq`` and this
        interval (give or take one sample), which catches a wrong ``sfreq``.
    sfreq_model, bands, filter_order, n_components : default 100, None, 5, 2
        Resampling rate (Hz), filter-bank bands (``(low, high)`` pairs or the text form
        ``"LO-HI/WIDTH"``, e.g. ``"4-28/4"``; ``None``: MixNet's 9 bands 4-8, ..., 36-40
        Hz), Butterworth order and CSP filters per band ``U`` (MixNet's values).
    input : {"fbcsp", "time"}, default "fbcsp"
        ``"fbcsp"``: MixNet's spectral-spatial input (two classes: the CSP is binary).
        ``"time"``: MIN2Net's 8-30 Hz time-domain input, no CSP, any number of classes.
    input_scale : {"auto", "uV", "mV", "V"} or float, default "auto"
        MixNet works in microvolts (its CSP outputs keep the input's amplitude). The unit is
        diagnosed from the median trial amplitude (:func:`eegmtl.eeg.checks.check_units`):
        ``"auto"`` converts volts and millivolts to µV; a declared unit that the amplitude
        contradicts (e.g. volts declared as µV) raises with the factor that fixes it; a float
        is a factor to µV and skips the diagnosis. At prediction, data far from the fit's
        amplitude (ratio outside [0.1, 10]) gives an ``AmplitudeWarning`` with the ratio.
        Outlier (artefact) trials at fit give an ``OutlierTrialWarning`` with their indices.
    latent_dim, margin, warmup, batch_size : optional
        Latent size, triplet margin α, blending warm-up W (epochs), batch size; ``None`` takes
        the ``protocol`` default.
    lr, max_epochs, patience : default 1e-3, 200, 20
        Adam learning rate, epochs, early-stopping patience (``None``: no early stopping).
    monitor : str, default "val_loss"
        Trainer key for model selection, early stopping and the LR schedule (MixNet: weighted
        interleaved validation loss; or ``"val_classification_accuracy"``, ...).
    validation_size : float or None, default 0.2
        Stratified share held out for validation when ``fit`` gets no ``X_val``; ``None``: no
        validation (not with ``"blending"``; the training loss is monitored).
    interleaved_validation : bool, default True
        MixNet's interleaved validation (one val batch after every step; needed by blending).
    checkpoint_dir : path or None, default None
        ``last.pt`` (atomic, after an epoch; with the augmentation's random states) and
        ``estimator.json`` (seed, data fingerprint) go there; ``fit(..., resume=True)``
        continues an interrupted fit of the same data exactly.
    checkpoint_every_s : float or None, default None
        Write ``last.pt`` at most once per this many seconds (``None``: after every epoch).
    random_state : int, RandomState or None, default None
        Seeds the validation split, the initialisation and the batch order.
    device : str, default "auto"
        ``"auto"`` = CUDA if available, else CPU; or ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    verbose : bool or int, default False
        Progress bar over the epochs.
    augmentation : spec or None, default None
        braindecode transforms applied to the *training* batches of the network input only
        (:func:`eegmtl.mixnet.augment.augment_training_loader`), e.g. ``{"transforms":
        ["segment_recombine"], "n_augmentation": 1}``.
    backbone, backbone_kwargs : str and dict or None, default None
        A braindecode model name: its trunk with MixNet's heads replaces MixNet's encoder
        (:class:`eegmtl.models.multitask.MultiTaskBraindecode`; use ``input="time"``).
    architecture, architecture_kwargs : str and dict or None, default None
        ``None`` / ``"hps"``: hard parameter sharing (MixNet). ``"mmoe"`` (``n_experts``),
        ``"cgc"``, ``"ple"`` (``n_shared``, ``n_specific``) or ``"cross_stitch"``
        (``self_weight``): the encoder (MixNet's, or the ``backbone``'s) copied as experts or
        task columns (:class:`eegmtl.models.eeg_architectures.MultiTaskEEGArchitecture`); the
        class prediction reads the classification task's z.
    optimizer, weight_decay, betas : optional
        ``None``: MixNet's Adam without weight decay and torch's betas (0.9, 0.999). Else
        ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9), the decay, and Adam's (β1, β2) —
        e.g. a braindecode network's own recipe (``<model>+mtl[...]+recipe`` in the method
        registry).
    lr_schedule : {"plateau", "constant"} or None, default None
        ``None`` / ``"plateau"``: MixNet's ReduceLROnPlateau on ``monitor``; ``"constant"``:
        the learning rate stays at ``lr``.
    standardize : bool, {"all", "channel", "channel_time"} or None, default None
        ``True`` / ``"all"``: z-score the network input with one mean and SD over the
        training part's values; ``"channel"`` / ``"channel_time"``: per channel (and sample)
        (:class:`~eegmtl.eeg.preprocessing.EpochStandardizer`), as recipes that standardise
        their input do; ``None`` / ``False``: MixNet's microvolt input.
    ema_decay : float or None, default None
        Validate, select and keep an exponential moving average of the network's weights
        (decay per step in (0, 1); :class:`~eegmtl.mtl.callbacks.WeightAveraging`) instead of
        the trained weights. ``None``: the trained weights (MixNet).
    unlabeled_trials : {"transductive"} or None, default None
        ``"transductive"``: the evaluation harness (:mod:`eegmtl.evaluation.fit_fold`) gives
        ``fit`` the fold's trials outside its training part — validation and test trials,
        *without their labels* — as ``X_unlabeled``, so that the reconstruction task also
        learns the target sessions' (or subject's) signals, the semi-supervised use of the
        autoencoder task; the same transductive setting as Euclidean alignment fitted on every
        recording's own trials. ``None``: the harness gives none (MixNet). ``fit`` uses an
        ``X_unlabeled`` passed to it either way.

    Attributes
    ----------
    classes_ : ndarray
        The labels, sorted; ``predict`` returns values of this array.
    model_ : MixNet
        The trained network (best epoch), in eval mode.
    features_ : MixNetFeatures
        Window, resampling, filter bank (designed at fit) and CSP, fitted on the training part.
    csp_ : FilterBankCSP or None
        Its CSP step (``None`` for ``input="time"``).
    scale_ : float
        Factor applied to the input (1e6 for volts under ``input_scale="auto"``).
    amplitude_reference_ : dict
        Robust amplitude of the fit data (:class:`~eegmtl.eeg.checks.AmplitudeReference`
        fields), checked at prediction.
    n_times_in_, n_channels_in_ : int
        Shape of the epochs seen by ``fit`` (prediction data must match).
    n_epochs_trained_, best_epoch_ : int
    resumed_epochs_, resumed_seconds_ : int, float
        Epochs (and their training seconds) a ``resume=True`` fit took from its checkpoint.
    history_ : pandas.DataFrame
        One row per epoch: per-task train/val losses, weights, lr, validation accuracy, time.
    weights_history_ : pandas.DataFrame
        One row per training step: ``epoch``, ``step``, ``weight_<task>`` (for plots of the
        blending weights) and the per-task train/interleaved-val losses.
    config_ : dict
        The resolved settings (protocol defaults applied, MTL method resolved).
    step_config_ : dict
        The training step's resolved arithmetic choices
        (:meth:`eegmtl.mtl.step.MTLStep.config`: ``gradient_mode``, flat setting, ...).
    seed_ : int
        The integer seed used.

    Notes
    -----
    Deviations from the original code: the 4-s window is resampled on its own (the original
    resampled an 8-s epoch, see :mod:`eegmtl.eeg.preprocessing`); CSP filter signs are fixed
    (:mod:`eegmtl.eeg.filterbank`); the trainer additionally makes one full validation pass per
    epoch for the history (the monitored ``val_loss`` is still MixNet's interleaved one).

    Examples
    --------
    >>> import numpy as np
    >>> from eegmtl import MixNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3, 1000))  # 40 trials, 3 channels, 4 s at 250 Hz, in uV
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, 0] *= 2.0  # class 1: more power on the first channel
    >>> clf = MixNetClassifier(max_epochs=1, random_state=0, device="cpu").fit(X, y)
    >>> clf.predict(X[:5]).shape, clf.predict_proba(X[:5]).shape
    ((5,), (5, 2))
    >>> clf.transform(X[:5]).shape  # latent z (latent_dim = 4 in the subject-dependent setting)
    (5, 4)
    >>> list(clf.weights_history_.filter(like="weight_").columns)
    ['weight_reconstruction', 'weight_metric', 'weight_classification']
    """

    def __init__(
        self,
        protocol: str = "sd",
        mtl: str | Mapping[str, Any] | None = "blending",
        weighting: Any = None,
        aggregator: Any = None,
        flat: Any = None,
        loss_weights: Sequence[float] | None = None,
        sfreq: float = 250.0,
        tmin: float = 0.0,
        tmax: float = 4.0,
        epoch_tmin: float = 0.0,
        epoch_tmax: float | None = None,
        sfreq_model: float = 100.0,
        bands: str | Sequence[Sequence[float]] | None = None,
        filter_order: int = 5,
        n_components: int = 2,
        input: str = "fbcsp",  # noqa: A002 - the name used by the method registry
        input_scale: str | float = "auto",
        latent_dim: int | None = None,
        margin: float | None = None,
        warmup: int | None = None,
        batch_size: int | None = None,
        lr: float = TRAINING_DEFAULTS["lr"],
        max_epochs: int = TRAINING_DEFAULTS["max_epochs"],
        patience: int | None = TRAINING_DEFAULTS["patience"],
        monitor: str = "val_loss",
        validation_size: float | None = 0.2,
        interleaved_validation: bool = True,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every_s: float | None = None,
        random_state: Any = None,
        device: str = "auto",
        verbose: bool | int = False,
        augmentation: Any = None,
        backbone: str | None = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        architecture: str | None = None,
        architecture_kwargs: Mapping[str, Any] | None = None,
        optimizer: str | None = None,
        weight_decay: float | None = None,
        betas: Sequence[float] | None = None,
        lr_schedule: str | None = None,
        standardize: bool | str | None = None,
        ema_decay: float | None = None,
        unlabeled_trials: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.mtl = mtl
        self.weighting = weighting
        self.aggregator = aggregator
        self.flat = flat
        self.loss_weights = loss_weights
        self.sfreq = sfreq
        self.tmin = tmin
        self.tmax = tmax
        self.epoch_tmin = epoch_tmin
        self.epoch_tmax = epoch_tmax
        self.sfreq_model = sfreq_model
        self.bands = bands
        self.filter_order = filter_order
        self.n_components = n_components
        self.input = input
        self.input_scale = input_scale
        self.latent_dim = latent_dim
        self.margin = margin
        self.warmup = warmup
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.monitor = monitor
        self.validation_size = validation_size
        self.interleaved_validation = interleaved_validation
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_s = checkpoint_every_s
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.augmentation = augmentation
        self.backbone = backbone
        self.backbone_kwargs = backbone_kwargs
        self.architecture = architecture
        self.architecture_kwargs = architecture_kwargs
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.betas = betas
        self.lr_schedule = lr_schedule
        self.standardize = standardize
        self.ema_decay = ema_decay
        self.unlabeled_trials = unlabeled_trials

    def _resolved_config(self) -> dict[str, Any]:
        return resolve_config(self.get_params(deep=False))

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any,
        X_val: Any = None,
        y_val: Any = None,
        *,
        X_unlabeled: Any = None,
        resume: bool = False,
    ) -> MixNetClassifier:
        """Fit preprocessing, CSP and MixNet on ``(X, y)``.

        Parameters
        ----------
        X : array-like, shape (n_trials, n_channels, n_times)
            Epochs at ``sfreq`` Hz (µV, mV or V, see ``input_scale``), any real dtype (computed
            in float64).
        y : array-like, shape (n_trials,)
            Labels of any type; two classes for ``input="fbcsp"``.
        X_val, y_val : optional
            Explicit validation trials (e.g. the protocol's validation fold); otherwise a
            stratified ``validation_size`` split of ``X`` is used. The CSP is fitted on the
            training trials only.
        X_unlabeled : array-like, shape (n_unlabeled, n_channels, n_times), optional
            Trials without labels (same channels, length and units as ``X``), e.g. the test
            sessions' trials in a transductive setting: shuffled into the training batches,
            they train the reconstruction task only (the triplet and classification losses
            skip them); the CSP is not fitted on them. Augmentation transforms them too
            (segmentation-and-recombination mixes unlabelled trials among themselves only).
        resume : bool, default False
            Continue from ``checkpoint_dir/last.pt`` if it exists (same data and parameters,
            e.g. after an interruption, or with a larger ``max_epochs``). Other data or settings
            (compared by the fingerprint in ``checkpoint_dir/estimator.json``) raise
            :class:`~eegmtl.mtl.checkpoint.CheckpointMismatchError`.

        Returns
        -------
        self
        """
        cfg = self._resolved_config()
        x_tr, y_tr, x_va, y_va, x_un = prepare_features(self, cfg, X, y, X_val, y_val,
                                                         X_unlabeled, resume=resume)
        train_network(self, cfg, x_tr, y_tr, x_va, y_va, x_un, resume=resume)
        return self

    # ------------------------------------------------------------------ inference
    def _batched(self, X: Any, fn: Any) -> np.ndarray:
        x = self.preprocess(X)
        return run_network(self.model_, x, fn)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the classifier on z), shape ``(n, n_classes)``."""
        return self._batched(X, lambda m, xb: torch.softmax(m.logits(xb), dim=1))

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits; for two classes the log-odds of ``classes_[1]``, shape ``(n,)``."""
        logits = self._batched(X, lambda m, xb: m.logits(xb))
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of every trial (values of ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def transform(self, X: Any) -> np.ndarray:
        """Latent representation z, shape ``(n, latent_dim)``."""
        return self._batched(X, lambda m, xb: m.embed(xb))

    def preprocess(self, X: Any) -> np.ndarray:
        """The network input (CSP spectral-spatial signals), shape ``(n, U·N_f, 400)``."""
        check_is_fitted(self, "model_")
        return self.features_.transform(check_predict_epochs(self, X))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save the fitted estimator (see :func:`eegmtl.mixnet.io.save_estimator`)."""
        from eegmtl.mixnet.io import save_estimator

        return save_estimator(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> MixNetClassifier:
        """Load an estimator written by :meth:`save` (see :mod:`eegmtl.mixnet.io`)."""
        from eegmtl.mixnet.io import load_estimator

        est = load_estimator(path, device=device)
        if not isinstance(est, cls):
            raise TypeError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}.")
        return est

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags
