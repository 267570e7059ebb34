"""Training-batch augmentation for MixNet-family networks (:func:`augment_training_loader`).

MixNet's network sees the spectral-spatial signals (filter-bank CSP output at ``sfreq_model``)
or, for ``input="time"``, the band-passed trials; the braindecode transforms of
:mod:`eegmtl.eeg.augmentation` act on those network inputs, batch by batch, in the *training*
loader only (:class:`eegmtl.eeg.augmentation.AugmentedLoader`). The validation loader (early
stopping, gradient blending's interleaved validation) and prediction never see them.
Segmentation-and-recombination on CSP signals equals S&R on the trials followed by the
(linear, per-trial) spatial filters, except at the segment joints of the band-pass filters.
"""

from __future__ import annotations

from typing import Any

__all__ = ["augment_training_loader"]


def augment_training_loader(loader: Any, augmentation: Any, *, sfreq: float, seed: int,
                            channel_sd: Any = None) -> Any:
    """``loader`` wrapped so that every training batch is augmented by ``augmentation``.

    Parameters
    ----------
    loader : iterable of ``(x, {task: target})``
        The training loader (``x`` is the network input, ``targets["classification"]`` the
        labels, ``targets["reconstruction"]`` the input itself).
    augmentation : spec or None
        Spec of :func:`eegmtl.eeg.augmentation.make_transforms` (e.g. ``{"transforms":
        ["segment_recombine"], "n_augmentation": 1}``); ``None`` returns ``loader`` unchanged.
    sfreq : float
        Rate of the network input (for time-based transform settings).
    seed : int
        Seed of the transforms.
    channel_sd : array of shape (n_channels,), optional
        SD of each network-input channel over the training trials (Gaussian noise relative to
        it; :func:`eegmtl.eeg.augmentation.channel_sd`).
    """
    from eegmtl.eeg.augmentation import (
        AugmentedLoader,
        BatchAugmenter,
        augmentation_n_copies,
        make_transforms,
    )

    transforms = make_transforms(augmentation, sfreq=sfreq, random_state=int(seed) % 2**31,
                                 channel_sd=channel_sd)
    if not transforms:
        return loader
    return AugmentedLoader(loader, BatchAugmenter(transforms, augmentation_n_copies(augmentation)))
