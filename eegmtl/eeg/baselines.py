"""Baseline classifiers for BCIC IV 2b as scikit-learn pipeline factories.

Settings follow ``docs/baselines-2b.md`` (reference numbers measured on the local export with
the competition split, train sessions 1-3 / test 4-5; mean accuracy over 9 subjects):

============  =====================================================================  ========
factory       pipeline                                                               accuracy
============  =====================================================================  ========
csp_lda       ``mne.decoding.CSP(4, log=True)`` + LDA, 250 Hz 0-4 s epochs            0.714
fbcsp_svm     resample 100 Hz (polyphase) -> 9-band Butterworth-5 bank -> per band     0.749
              ``CSP(2, log=True)`` -> ``SelectKBest(mutual_info, k=8)`` -> SVC,
              grid {rbf, linear} x C {1e-2..1e2}, 5-fold CV on the training trials
ts_svm        pyriemann ``Covariances("oas")`` + ``TangentSpace`` + linear SVC        0.719
eegnet        braindecode ``EEGNet`` (F1=8, D=2, kernel 125), AdamW lr 1e-3           0.768
shallow       braindecode ``ShallowFBCSPNet`` (defaults), AdamW lr 6.25e-4            0.741
============  =====================================================================  ========

All factories return *unfitted* estimators that take ``X`` of shape ``(n, C, T)`` (any units;
CSP and tangent space are scale-invariant up to a constant feature offset; the classical ones
take any floating dtype, float32 included, with the predictions of float64) and any binary labels,
so they work in ``Pipeline``, ``clone``, ``cross_val_score`` and MOABB evaluations.
braindecode and pyriemann are imported only when their factory is called (extra
``eegmtl[baselines]``; see :mod:`eegmtl._compat`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.feature_selection import SelectKBest, mutual_info_classif
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from eegmtl.eeg.cached_search import FoldCachedGridSearchCV
from eegmtl.eeg.preprocessing import MIXNET_BANDS, FilterBank, Resampler, check_epochs_array

__all__ = [
    "BandwiseTransformer",
    "make_csp_lda",
    "make_eegnet",
    "make_fbcsp_svm",
    "make_shallow_fbcsp_net",
    "make_ts_svm",
]


def make_csp_lda(n_components: int = 4) -> Pipeline:
    """CSP + LDA: ``mne.decoding.CSP(n_components, log=True)`` (no regularisation, empirical
    covariance) and sklearn's default LDA (Koles 1991; Ramoser et al. 2000)."""
    from mne.decoding import CSP

    return Pipeline(
        [("csp", CSP(n_components=n_components, log=True)), ("lda", LinearDiscriminantAnalysis())]
    )


#: Smallest singular-value ratio (after scaling the channels to unit norm, and before) at which
#: the concatenated epochs count as full rank for :func:`_fit_band`. MNE's rank estimate
#: (``rank=None``) calls a singular value zero below ``n_channels * eps`` (~1e-15) of the
#: largest; 1e-6 leaves a margin of nine orders of magnitude.
_FULL_RANK_RATIO = 1e-6


def _clearly_full_rank(X: np.ndarray) -> bool:
    """Whether the epochs ``(n, C, T)`` concatenated over time have full rank ``C`` by a wide
    margin (eigenvalues of the ``C x C`` scatter matrix, raw and channel-normalised)."""
    c = X.shape[1]
    flat = np.ascontiguousarray(X.transpose(1, 0, 2)).reshape(c, -1)
    scatter = flat @ flat.T
    d = np.sqrt(np.diag(scatter))
    if not np.all(np.isfinite(scatter)) or not np.all(d > 0):
        return False
    for m in (scatter, scatter / np.outer(d, d)):
        ev = np.linalg.eigvalsh(m)
        if not ev[0] > _FULL_RANK_RATIO**2 * ev[-1]:
            return False
    return True


def _fit_band(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """Fit a clone of ``estimator`` on one band. An MNE ``CSP`` with ``rank=None`` on data that
    are clearly full rank is fitted with ``rank="full"``: MNE's own estimate would be the full
    rank too, so the filters are the same, without MNE's SVD-based rank estimation (about
    half of a CSP fit); rank-deficient data keep MNE's estimate."""
    from mne.decoding import CSP

    est = clone(estimator)
    if type(est) is CSP and est.rank is None and _clearly_full_rank(X):
        # a new instance: MNE's CSP binds ``rank`` into its covariance callable at __init__,
        # so set_params(rank=...) alone would not reach the fit
        est = CSP(**{**est.get_params(deep=False), "rank": "full"})
    return est.fit(X, y)


class BandwiseTransformer(TransformerMixin, BaseEstimator):
    """Fit a clone of ``estimator`` per band of ``(n, n_bands, C, T)`` input; concatenate outputs.

    Used for FBCSP with MNE's CSP per band (as in docs/baselines-2b.md). For MixNet's own CSP
    conventions use :class:`eegmtl.eeg.filterbank.FilterBankCSP` with ``output="logvar"``.
    A ``CSP(rank=None)`` is fitted with ``rank="full"`` on bands that are clearly full rank
    (same filters, without MNE's rank estimation; see ``_fit_band``).
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: np.ndarray, y: np.ndarray) -> BandwiseTransformer:
        X = check_epochs_array(X, ndim=4)
        self.estimators_ = [_fit_band(self.estimator, X[:, k], y) for k in range(X.shape[1])]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = check_epochs_array(X, ndim=4)
        if X.shape[1] != len(self.estimators_):
            raise ValueError(f"X has {X.shape[1]} bands; the fit had {len(self.estimators_)}.")
        return np.concatenate(
            [est.transform(X[:, k]) for k, est in enumerate(self.estimators_)], axis=1
        )


def make_fbcsp_svm(
    sfreq: float = 250.0,
    *,
    sfreq_out: float = 100.0,
    bands: Sequence[Sequence[float]] = MIXNET_BANDS,
    order: int = 5,
    n_components: int = 2,
    k: int = 8,
    cv_splits: int = 5,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> FoldCachedGridSearchCV:
    """FBCSP + SVM (Ang et al., 2012, Front. Neurosci. 6:39) as in docs/baselines-2b.md.

    Resample ``sfreq`` -> ``sfreq_out`` (polyphase, zero padding = ``resample_poly``), zero-phase
    Butterworth filter bank (SOS), per band ``CSP(n_components, log=True)``,
    ``SelectKBest(mutual_info_classif, k)``, ``SVC`` (``gamma="scale"``) with kernel and C chosen
    by ``GridSearchCV`` on the training trials only (stratified ``cv_splits``-fold, shuffled with
    ``random_state``; CSP and selection are refit in every fold).

    The search is a :class:`~eegmtl.eeg.cached_search.FoldCachedGridSearchCV` (a
    ``GridSearchCV`` with the same results): resampling and the filter bank (per-trial,
    stateless) run once before the search, CSP and selection once per fold, the SVC per grid
    point and fold -- 5 CSP fits instead of 50.
    """
    from functools import partial

    from mne.decoding import CSP

    pipe = Pipeline(
        [
            ("resample", Resampler(sfreq, sfreq_out, method="polyphase", pad="constant")),
            ("filterbank", FilterBank(bands=bands, sfreq=sfreq_out, order=order, output="sos")),
            ("csp", BandwiseTransformer(CSP(n_components=n_components, log=True))),
            ("select", SelectKBest(partial(mutual_info_classif, random_state=random_state), k=k)),
            ("svc", SVC(gamma="scale")),
        ]
    )
    grid = {"svc__kernel": ["rbf", "linear"], "svc__C": [1e-2, 1e-1, 1.0, 1e1, 1e2]}
    cv = StratifiedKFold(cv_splits, shuffle=True, random_state=random_state)
    return FoldCachedGridSearchCV(pipe, grid, cv=cv, n_jobs=n_jobs, n_stateless=2)


def make_ts_svm(C: float = 1.0) -> Pipeline:
    """Tangent space + linear SVM (Barachant et al., 2012): pyriemann ``Covariances("oas")``,
    ``TangentSpace(metric="riemann")``, ``SVC(kernel="linear", C=C)``."""
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace

    return Pipeline(
        [
            ("cov", Covariances("oas")),
            ("ts", TangentSpace(metric="riemann")),
            ("svc", SVC(kernel="linear", C=C)),
        ]
    )


def _silent(*_: Any, **__: Any) -> None:
    """A skorch ``sink`` that prints nothing."""


def _eeg_classifier(module: Any, *, lr: float, max_epochs: int, batch_size: int,
                    patience: int | None, seed: int, device: str, optimizer: str = "adamw",
                    weight_decay: float = 0.0, optimizer_kwargs: dict[str, Any] | None = None,
                    train_split: Any = "internal", transforms: Sequence[Any] | None = None,
                    n_augmentation: int = 0,
                    extra_callbacks: Sequence[tuple[str, Any]] = (), verbose: int = 0,
                    **module_kwargs: Any) -> Any:
    """The one ``braindecode.EEGClassifier`` recipe of every deep baseline (as
    :class:`~eegmtl.eeg.skorch_net.InterruptibleEEGClassifier`: Ctrl-C stops the run).

    ``train_split="internal"``: a stratified 20 % validation split of the training trials;
    otherwise any skorch ``train_split`` (e.g. ``predefined_split`` of a validation fold).
    ``patience=None`` trains ``max_epochs`` without early stopping (last-epoch weights).
    ``transforms``: braindecode augmentation transforms applied to *training* batches only,
    through ``AugmentedDataLoader`` as ``iterator_train`` (validation and prediction batches
    use the plain loader); ``n_augmentation > 0`` appends that many transformed copies to
    each training batch instead of transforming it in place. ``extra_callbacks``: named
    skorch callbacks called after early stopping (e.g. an epoch checkpoint). ``verbose=0``
    (default) prints nothing: no per-epoch table, no early-stopping messages (a run of many
    fits in parallel would interleave them); ``verbose=1`` prints skorch's.
    """
    from eegmtl._compat import import_braindecode

    import_braindecode()
    import torch
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    from eegmtl.eeg.skorch_callbacks import CudnnAutotune
    from eegmtl.eeg.skorch_net import InterruptibleEEGClassifier
    from eegmtl.mtl.runtime import select_device

    optimizers = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {optimizer!r}.")
    torch.manual_seed(seed)
    callbacks: list[tuple[str, Any]] = [("cudnn_autotune", CudnnAutotune())]
    if patience is not None:
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=patience, load_best=True,
            sink=print if verbose else _silent)))
    callbacks.extend(extra_callbacks)
    if isinstance(train_split, str) and train_split == "internal":
        train_split = ValidSplit(0.2, stratified=True, random_state=seed)
    iterator: dict[str, Any] = {}
    if transforms:
        from braindecode.augmentation import AugmentedDataLoader

        iterator = {"iterator_train": AugmentedDataLoader,
                    "iterator_train__transforms": list(transforms),
                    "iterator_train__n_augmentation": int(n_augmentation)}
    return InterruptibleEEGClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=optimizers[optimizer],
        optimizer__weight_decay=weight_decay,
        optimizer__lr=lr,
        **{f"optimizer__{k}": v for k, v in (optimizer_kwargs or {}).items()},
        batch_size=batch_size,
        max_epochs=max_epochs,
        train_split=train_split,
        callbacks=callbacks,
        iterator_train__shuffle=True,
        iterator_train__drop_last=True,
        **iterator,
        device=str(select_device(device)),  # "auto": cuda when torch sees a GPU, else cpu
        verbose=int(verbose),
        **{f"module__{k}": v for k, v in module_kwargs.items()},
    )


def make_eegnet(
    n_chans: int = 3, n_outputs: int = 2, n_times: int = 1000, sfreq: float = 250.0, *,
    lr: float = 1e-3, max_epochs: int = 100, batch_size: int = 32, patience: int = 30,
    seed: int = 0, device: str = "auto",
) -> Any:
    """braindecode ``EEGNet`` (Lawhern et al., 2018) in an ``EEGClassifier``, as in
    docs/baselines-2b.md: F1=8, D=2, kernel_length=125 (0.5 s), drop_prob=0.5, AdamW (no weight
    decay), batch 32, early stopping on a stratified 20 % validation split (best weights
    restored). Input ``X`` must be float32 ``(n, n_chans, n_times)``.
    """
    from eegmtl._compat import import_braindecode

    import_braindecode()
    from braindecode.models import EEGNet

    return _eeg_classifier(
        EEGNet, lr=lr, max_epochs=max_epochs, batch_size=batch_size, patience=patience,
        seed=seed, device=device, n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
        sfreq=sfreq, F1=8, D=2, kernel_length=125, drop_prob=0.5,
    )


def make_shallow_fbcsp_net(
    n_chans: int = 3, n_outputs: int = 2, n_times: int = 1000, sfreq: float = 250.0, *,
    lr: float = 6.25e-4, max_epochs: int = 100, batch_size: int = 32, patience: int = 30,
    seed: int = 0, device: str = "auto",
) -> Any:
    """braindecode ``ShallowFBCSPNet`` (Schirrmeister et al., 2017) with braindecode defaults
    in an ``EEGClassifier`` (training settings as :func:`make_eegnet`)."""
    from eegmtl._compat import import_braindecode

    import_braindecode()
    from braindecode.models import ShallowFBCSPNet

    return _eeg_classifier(
        ShallowFBCSPNet, lr=lr, max_epochs=max_epochs, batch_size=batch_size,
        patience=patience, seed=seed, device=device, n_chans=n_chans, n_outputs=n_outputs,
        n_times=n_times, sfreq=sfreq,
    )
