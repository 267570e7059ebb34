"""Training-time data augmentation for every deep pipeline, built on braindecode's transforms.

Augmentation is given as a plain JSON-like *spec* (so it can be recorded and hashed with the
results) and turned into braindecode ``Transform`` objects by :func:`make_transforms`:

==========================  ========================================================  =========
name                        braindecode transform (defaults here)                     source
==========================  ========================================================  =========
``"segment_recombine"``     ``SegmentationReconstruction(p=1, n_segments=8)``: each   Lotte 2015;
                            trial cut into 8 equal segments, each segment taken from   CTNet,
                            a random training trial of the same class (S&R)            TCFormer
``"ft_surrogate"``          ``FTSurrogate(p=0.5, phase_noise_magnitude=1)``: random    Schwabedal
                            Fourier phases                                             et al. 2019
``"smooth_time_mask"``      ``SmoothTimeMask(p=0.5, mask_len_samples=0.5 s)``          Mohsenvand
                                                                                        et al. 2020
``"channels_dropout"``      ``ChannelsDropout(p=0.5, p_drop=0.2)``                     Saeed 2021
``"gaussian_noise"``        ``GaussianNoise(p=0.5)``, noise SD 0.1 x each input        Wang 2018
                            channel's SD over the training trials (``std_rel``; an
                            absolute ``std`` overrides it)
==========================  ========================================================  =========

Augmentation touches **training batches only**:

- braindecode / skorch pipelines pass the transforms to
  :func:`eegmtl.eeg.baselines._eeg_classifier` (``iterator_train=AugmentedDataLoader``);
  validation and prediction batches use skorch's plain ``iterator_valid``.
- our own :class:`eegmtl.mtl.trainer.Trainer` (MixNet and the multi-task wrappers) gets a
  wrapped *training* loader, :class:`AugmentedLoader`; the validation loader is never wrapped.
  The input of the reconstruction task is replaced by the augmented trial, so an autoencoder
  reconstructs what it was given.

``SegmentationReconstruction`` mixes trials of the same class *within a batch* (braindecode's
implementation), whereas the CTNet/EEG-Conformer code draws the segments from the whole
training set and appends the new trials to the batch; ``n_augmentation`` (number of appended
augmented copies, braindecode ``AugmentedDataLoader``) gives the appending behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "AUGMENTATIONS",
    "AugmentedLoader",
    "BatchAugmenter",
    "augmentation_n_copies",
    "channel_sd",
    "make_transforms",
    "transform_generators",
]

#: name -> (braindecode class, default keyword arguments). ``mask_len_s`` (seconds) is converted
#: to ``mask_len_samples`` with the input rate.
AUGMENTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "segment_recombine": ("SegmentationReconstruction", {"probability": 1.0, "n_segments": 8}),
    "ft_surrogate": ("FTSurrogate", {"probability": 0.5, "phase_noise_magnitude": 1.0}),
    "smooth_time_mask": ("SmoothTimeMask", {"probability": 0.5, "mask_len_s": 0.5}),
    "channels_dropout": ("ChannelsDropout", {"probability": 0.5, "p_drop": 0.2}),
    "gaussian_noise": ("GaussianNoise", {"probability": 0.5, "std_rel": 0.1}),
}

Spec = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]] | None


def _entries(spec: Spec) -> list[dict[str, Any]]:
    if spec is None or spec is False:
        return []
    if isinstance(spec, str):
        return [{"name": spec}]
    if isinstance(spec, Mapping):
        if "transforms" in spec:
            return _entries(spec["transforms"])
        return [dict(spec)]
    out = []
    for item in spec:
        out.extend(_entries(item))
    return out


def channel_sd(X: Any) -> Any:
    """SD of each channel of training inputs ``X (n, C, T)`` over trials and time (a numpy
    array or a tensor), as :func:`make_transforms` takes it; a flat channel gets 1."""
    import numpy as np

    sd = np.asarray(X.detach().cpu() if isinstance(X, Tensor) else X, dtype=np.float64)
    sd = sd.reshape(-1, *sd.shape[-2:]).std(axis=(0, 2))
    return np.where(sd > 0, sd, 1.0)


def augmentation_n_copies(spec: Spec) -> int:
    """``n_augmentation`` of a spec ``{"transforms": [...], "n_augmentation": k}`` (else 0)."""
    if isinstance(spec, Mapping) and "transforms" in spec:
        k = int(spec.get("n_augmentation", 0))
        if k < 0:
            raise ValueError(f"n_augmentation must be >= 0, got {k}.")
        return k
    return 0


def make_transforms(spec: Spec, *, sfreq: float, random_state: int | None = None,
                    channel_sd: Any = None) -> list[Any]:
    """braindecode ``Transform`` objects from a JSON-like augmentation spec.

    Parameters
    ----------
    spec : str, dict, list or None
        A name of :data:`AUGMENTATIONS`, a dict ``{"name": ..., **overrides}``, a list of these
        (applied in order), or ``{"transforms": [...], "n_augmentation": k}``. ``None``: none.
    sfreq : float
        Sampling rate of the batches the transforms see (for ``mask_len_s``).
    random_state : int or None
        Seed; transform ``i`` gets ``random_state + i``.
    channel_sd : array of shape (n_channels,), optional
        SD of each input channel over the training trials, for ``std_rel`` (Gaussian noise
        relative to each channel's scale: the inputs range from µV to standardised units and,
        after CSP, over orders of magnitude between bands). :func:`channel_sd` computes it.

    Returns
    -------
    list of braindecode.augmentation.Transform
    """
    entries = _entries(spec)
    if not entries:
        return []
    from eegmtl._compat import import_braindecode

    import_braindecode()
    from braindecode import augmentation

    transforms = []
    for i, entry in enumerate(entries):
        entry = dict(entry)
        name = entry.pop("name", None)
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}; available: {sorted(AUGMENTATIONS)} "
                             "(give a name or a dict with a 'name' key).")
        cls_name, defaults = AUGMENTATIONS[name]
        kwargs = {**defaults, **entry}
        if "mask_len_s" in kwargs:
            kwargs["mask_len_samples"] = max(1, int(round(kwargs.pop("mask_len_s") * sfreq)))
        if "std_rel" in kwargs:
            rel = float(kwargs.pop("std_rel"))
            if "std" not in entry:  # an absolute std given in the spec wins
                if channel_sd is None:
                    raise ValueError(f"augmentation {name!r}: noise relative to the input "
                                     "(std_rel) needs channel_sd, the training inputs' SD per "
                                     "channel (eegmtl.eeg.augmentation.channel_sd); or give "
                                     "an absolute 'std'.")
                sd = torch.as_tensor(channel_sd, dtype=torch.float32).reshape(-1, 1)
                kwargs["std"] = rel * sd
        seed = None if random_state is None else int(random_state) + i
        try:
            transforms.append(getattr(augmentation, cls_name)(random_state=seed, **kwargs))
        except TypeError as err:
            raise TypeError(f"augmentation {name!r} ({cls_name}): {err}") from err
    return transforms


def transform_generators(transforms: Sequence[Any] | None) -> list[Any]:
    """The numpy ``RandomState`` generators (``rng``, as braindecode's transforms hold them) of
    ``transforms`` and their sub-transforms, in a fixed order: what a checkpoint saves so that
    a resumed fit draws the same augmentations."""
    out = []
    for t in transforms or ():
        mods = t.modules() if hasattr(t, "modules") else [t]
        out.extend(m.rng for m in mods if hasattr(getattr(m, "rng", None), "get_state"))
    return out


class BatchAugmenter:
    """Callable ``(X, y) -> (X', y')`` applying braindecode transforms to one training batch.

    Parameters
    ----------
    transforms : list of braindecode.augmentation.Transform
        Applied in order (as ``braindecode.augmentation.Compose``).
    n_augmentation : int, default 0
        ``0``: transform the batch in place (same size). ``k > 0``: keep the clean batch and
        append ``k`` independently transformed copies (batch ``(1 + k)`` times larger).
    """

    def __init__(self, transforms: Sequence[Any], n_augmentation: int = 0) -> None:
        if int(n_augmentation) < 0:
            raise ValueError(f"n_augmentation must be >= 0, got {n_augmentation}.")
        self.transforms = list(transforms)
        self.n_augmentation = int(n_augmentation)

    def _once(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        for t in self.transforms:
            X, y = t(X, y)
        return X, y

    def __call__(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        dtype = X.dtype
        if not self.transforms:
            return X, y
        if self.n_augmentation == 0:
            Xa, ya = self._once(X, y)
            return Xa.to(dtype), ya.to(y.dtype)
        xs, ys = [X], [y]
        for _ in range(self.n_augmentation):
            Xa, ya = self._once(X, y)
            xs.append(Xa.to(dtype))
            ys.append(ya.to(y.dtype))
        return torch.cat(xs), torch.cat(ys)


class AugmentedLoader:
    """Wrap a *training* loader of ``(x, {task: target})`` batches with a :class:`BatchAugmenter`.

    The labels are read from ``targets[label_key]``; every target listed in ``input_keys``
    (default: the reconstruction target, which is the input itself) is replaced by the
    augmented input, every other target by the (possibly extended) labels. ``len`` and
    ``set_epoch`` are forwarded, so the trainer's per-epoch reshuffling is unchanged.

    Parameters
    ----------
    loader : iterable
        e.g. :class:`eegmtl.mtl.data.MultiTaskLoader` over the training data.
    augmenter : callable
        ``(X, y) -> (X', y')``, e.g. :class:`BatchAugmenter`.
    label_key : str, default "classification"
    input_keys : sequence of str, default ("reconstruction",)
    """

    def __init__(self, loader: Any, augmenter: Any, *, label_key: str = "classification",
                 input_keys: Sequence[str] = ("reconstruction",)) -> None:
        self.loader = loader
        self.augmenter = augmenter
        self.label_key = label_key
        self.input_keys = tuple(input_keys)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        """The transforms' random states (:func:`transform_generators`), for exact resume."""
        gens = transform_generators(getattr(self.augmenter, "transforms", ()))
        return {"generators": [g.get_state() for g in gens]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        gens = transform_generators(getattr(self.augmenter, "transforms", ()))
        for gen, st in zip(gens, state.get("generators", [])):
            gen.set_state(st)

    def __iter__(self) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        for x, targets in self.loader:
            if self.label_key not in targets:
                raise KeyError(f"label_key {self.label_key!r} is not a target of the batch "
                               f"({sorted(targets)}); pass the classification task's name.")
            xa, ya = self.augmenter(x, targets[self.label_key])
            out = {k: (xa if k in self.input_keys else ya) for k in targets}
            yield xa, out
