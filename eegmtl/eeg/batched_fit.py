"""Several fits of one braindecode recipe trained at once, as one stacked network.

:func:`fit_batched` trains K :class:`~eegmtl.eeg.deep_baselines.BraindecodeClassifier` fits
that share a recipe (network, optimiser, learning rate, batch size, epochs, augmentation,
patience) but not their data or seed — e.g. the subjects × folds × seeds of a benchmark — as
one :class:`~eegmtl.models.stacked.StackedModels`: every training step is one vmapped forward /
backward of the K networks and one optimiser step over the stacked tensors. On a GPU, where
these small networks are bound by kernel launches, K fits then cost about the launches of one.

Each fit keeps the single-fit recipe of :meth:`BraindecodeClassifier.fit
<eegmtl.eeg.deep_baselines.BraindecodeClassifier.fit>` (``braindecode.EEGClassifier`` through
skorch):

- its own network initialised from its own seed, its own shuffled batches (``drop_last``), its
  own augmentation draws (braindecode's ``AugmentedDataLoader`` with the same transforms and
  ``n_augmentation``), its own dropout masks, gradients, batch-norm statistics and Adam / AdamW
  state (elementwise over the stacked tensors);
- validation loss after every epoch on its own validation trials (evaluation mode), early
  stopping as skorch's ``EarlyStopping`` (``valid_loss``, relative threshold 1e-4,
  ``patience``) and the best epoch's weights restored.

What differs: the random streams (a fit trained alone and the same fit trained in a batch draw
different initial weights, shuffles and masks from the same seed, so results agree in
distribution, not digit for digit), and a fit that has stopped keeps being stepped, unread,
until the last fit of its batch stops (its restored best weights are unaffected). The fits of a
batch must have the same number of training batches per epoch; validation sets may differ in
size. No checkpoint / resume inside a batch: an interrupted batch is fitted again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eegmtl.eeg.deep_baselines import BraindecodeClassifier

__all__ = ["batch_key", "fit_batched", "recipe_network", "recipe_optimizer"]

#: parameters that may differ between the fits of one batch
_PER_FIT = ("random_state", "checkpoint_dir", "checkpoint_every_s")
#: skorch EarlyStopping's default relative threshold
_THRESHOLD = 1e-4


def batch_key(est: BraindecodeClassifier) -> str:
    """Fits whose estimators have the same key can be trained in one batch (same recipe and
    settings; only the seed may differ)."""
    from eegmtl._io import stable_json

    params = {k: v for k, v in est.get_params(deep=False).items() if k not in _PER_FIT}
    return stable_json({"resolved": est.resolved_config(), **params})


def recipe_network(cfg: dict[str, Any], *, n_chans: int, n_outputs: int, n_times: int,
                   sfreq: float) -> Any:
    """The braindecode network of a resolved recipe (``BraindecodeClassifier.resolved_config``)
    with its ``model_kwargs``, as the single-fit path builds it."""
    from braindecode import models

    return getattr(models, cfg["model"])(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                                         sfreq=sfreq, **cfg["model_kwargs"])


def recipe_optimizer(cfg: dict[str, Any], params: Any) -> Any:
    """The recipe's optimiser (Adam / AdamW, lr, weight decay, betas) over ``params``."""
    import torch

    kwargs: dict[str, Any] = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["betas"]:
        kwargs["betas"] = tuple(cfg["betas"])
    cls = torch.optim.AdamW if cfg["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, **kwargs)


def _check(estimators: Sequence[Any], data: Sequence[tuple]) -> None:
    if not estimators:
        raise ValueError("fit_batched needs at least one estimator.")
    if len(estimators) != len(data):
        raise ValueError(f"{len(estimators)} estimators but {len(data)} data tuples; give one "
                         "(X, y, X_val, y_val) per estimator.")
    bad = [type(e).__name__ for e in estimators if not isinstance(e, BraindecodeClassifier)]
    if bad:
        raise TypeError(f"fit_batched trains BraindecodeClassifier fits; got {bad}.")
    keys = {batch_key(e) for e in estimators}
    if len(keys) > 1:
        raise ValueError("the fits of one batch must share their recipe and settings (all but "
                         "random_state); group them by eegmtl.eeg.batched_fit.batch_key.")
    for i, d in enumerate(data):
        if len(d) != 4 or d[2] is None or d[3] is None:
            raise ValueError(f"fit {i}: fit_batched early-stops every fit on its own "
                             "validation trials; give (X, y, X_val, y_val) with X_val, y_val.")


def fit_batched(estimators: Sequence[BraindecodeClassifier], data: Sequence[tuple], *,
                device: str | None = None) -> list[BraindecodeClassifier]:
    """Fit ``estimators[i]`` on ``data[i] = (X, y, X_val, y_val)``, all at once.

    Parameters
    ----------
    estimators : sequence of BraindecodeClassifier
        Unfitted estimators with the same settings except ``random_state``
        (:func:`batch_key`).
    data : sequence of (X, y, X_val, y_val)
        Per fit: training trials ``(n, C, T)`` and labels, validation trials and labels.
    device : str, optional
        Where to train (default: the estimators' ``device``).

    Returns
    -------
    list of BraindecodeClassifier
        The same estimators, fitted: ``predict_proba`` / ``predict`` / ``score`` work as after
        ``fit``; ``history_`` (a DataFrame: epoch, train_loss, valid_loss), ``best_epoch_``,
        ``n_epochs_trained_`` (epochs until its early stop), ``batched_fits_`` (K) and
        ``step_config_`` (``{"batched_fits": K}``) are set.
    """
    _check(estimators, data)
    from eegmtl._compat import import_braindecode

    import_braindecode()
    import pandas as pd
    import torch
    import torch.nn.functional as F
    from braindecode.augmentation import AugmentedDataLoader
    from torch.utils.data import DataLoader, TensorDataset

    from eegmtl.eeg.augmentation import augmentation_n_copies, channel_sd, make_transforms
    from eegmtl.eeg.preprocessing import check_epochs_array
    from eegmtl.models.stacked import StackedModels
    from eegmtl.mtl.runtime import autotune_convolutions, select_device

    first = estimators[0]
    cfg = first.resolved_config()
    dev = select_device(device or first.device)
    autotune_convolutions(dev)  # one training batch shape, as the skorch fits
    size, k = cfg["batch_size"], len(estimators)
    inputs = []
    for est, (X, y, X_val, y_val) in zip(estimators, data, strict=True):
        X = check_epochs_array(np.asarray(X), ndim=3)
        inputs.append(est._fit_inputs(cfg, X, np.asarray(y), X_val, y_val))
    shapes = {Xt.shape[1:] for Xt, _, _ in inputs}
    n_out = {len(e.classes_) for e in estimators}
    if len(shapes) > 1 or len(n_out) > 1:
        raise ValueError(f"the fits of one batch need trials of one shape and one number of "
                         f"classes; got shapes {sorted(shapes)}, classes {sorted(n_out)}.")
    n_batches = {len(Xt) // size for Xt, _, _ in inputs}
    if n_batches == {0}:
        import warnings

        warnings.warn(f"fewer training trials than batch_size {size}: with drop_last (the "
                      "single-fit recipe's too) no training step is taken; lower batch_size.",
                      UserWarning, stacklevel=2)
    if len(n_batches) > 1:
        raise ValueError(f"the fits of one batch need the same number of training batches "
                         f"per epoch (trials // batch_size {size}); got {sorted(n_batches)} "
                         f"(training trials {[len(Xt) for Xt, _, _ in inputs]}).")
    (n_chans, n_times), n_outputs = shapes.pop(), n_out.pop()

    nets, loaders = [], []
    for est, (Xt, y_idx, _) in zip(estimators, inputs, strict=True):
        seed = int(est.random_state)
        torch.manual_seed(seed)
        nets.append(recipe_network(cfg, n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                                   sfreq=est.sfreq_model_).to(dev))
        ds = TensorDataset(torch.from_numpy(Xt), torch.from_numpy(y_idx))
        g = torch.Generator().manual_seed(seed)
        transforms = make_transforms(cfg["augmentation"], sfreq=est.sfreq_model_,
                                     random_state=seed, channel_sd=channel_sd(Xt))
        if transforms:
            loaders.append(AugmentedDataLoader(
                ds, transforms=transforms, n_augmentation=augmentation_n_copies(
                    cfg["augmentation"]), batch_size=size, shuffle=True, drop_last=True,
                generator=g))
        else:
            loaders.append(DataLoader(ds, batch_size=size, shuffle=True, drop_last=True,
                                      generator=g))
    stacked = StackedModels(nets)
    optimizer = recipe_optimizer(cfg, list(stacked.params.values()))

    # validation trials stacked (K, n_val_max, C, T), padded; a mask keeps each fit's own
    n_val = [len(v[0]) for _, _, v in inputs]
    Xv = torch.zeros(k, max(n_val), n_chans, n_times)
    yv = torch.zeros(k, max(n_val), dtype=torch.long)
    mask = torch.zeros(k, max(n_val))
    for i, (_, _, (xv, yvi)) in enumerate(inputs):
        Xv[i, :n_val[i]], yv[i, :n_val[i]], mask[i, :n_val[i]] = (
            torch.from_numpy(xv), torch.from_numpy(yvi), 1.0)
    mask = mask.to(dev)

    def valid_losses() -> torch.Tensor:
        total = torch.zeros(k, device=dev)
        with torch.no_grad():
            for j in range(0, Xv.shape[1], size):
                out = stacked.forward(Xv[:, j:j + size].to(dev), train=False)
                ce = F.cross_entropy(out.flatten(0, 1), yv[:, j:j + size].to(dev).flatten(),
                                     reduction="none").view(k, -1)
                total += (ce * mask[:, j:j + size]).sum(1)
        return total / torch.tensor(n_val, device=dev, dtype=total.dtype)

    patience = first.patience
    threshold = [float("inf")] * k  # skorch's dynamic threshold per fit
    best_epoch, misses = [0] * k, [0] * k
    stopped = [False] * k
    best_state: list[dict | None] = [None] * k
    rows: list[list[dict]] = [[] for _ in range(k)]
    for epoch in range(1, cfg["max_epochs"] + 1):
        train_sum, n_steps = torch.zeros(k, device=dev), 0
        for batches in zip(*loaders, strict=True):
            if any(isinstance(b[1], tuple | list) for b in batches):
                raise ValueError("fit_batched does not train target-mixing augmentations.")
            x = torch.stack([b[0] for b in batches]).to(dev, non_blocking=True)
            y = torch.stack([b[1] for b in batches]).to(dev, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            train_sum += stacked.gradients(x, y).detach()
            optimizer.step()
            n_steps += 1
        train = (train_sum / max(n_steps, 1)).tolist()
        valid = valid_losses().tolist()
        for i in range(k):
            if stopped[i]:
                continue
            rows[i].append({"epoch": epoch, "train_loss": train[i], "valid_loss": valid[i]})
            if valid[i] < threshold[i]:
                threshold[i] = valid[i] - _THRESHOLD * valid[i]
                best_epoch[i], misses[i] = epoch, 0
                if patience is not None:  # without early stopping the last weights are kept
                    best_state[i] = stacked.state_dict(i)
            else:
                misses[i] += 1
            if patience is not None and misses[i] == patience:
                stopped[i] = True
        if all(stopped):
            break

    for i, est in enumerate(estimators):
        state = best_state[i] if patience is not None and best_state[i] is not None \
            else stacked.state_dict(i)
        module = nets[i]  # its own architecture; the weights come from the stacked slice
        module.load_state_dict(state)
        est.module_ = module.eval()
        est.net_ = None
        est.history_ = pd.DataFrame(rows[i])
        est.best_epoch_ = best_epoch[i] if patience is not None else len(rows[i])
        est.n_epochs_trained_ = len(rows[i])
        est.batched_fits_ = k
        est.step_config_ = {"batched_fits": k}  # recorded with the fit (step_config column)
        est.resumed_epochs_, est.resumed_seconds_ = 0, 0.0
    return list(estimators)
