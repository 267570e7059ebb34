"""The network of a MixNet-family estimator: MixNet, its MIN2Net variant, or any braindecode trunk
with MixNet's heads (:class:`eegmtl.models.multitask.MultiTaskBraindecode`), with hard parameter
sharing or inside an MMoE / CGC / PLE / Cross-stitch architecture
(:class:`eegmtl.models.eeg_architectures.MultiTaskEEGArchitecture`).

:func:`build_network` is what :func:`eegmtl.mixnet.net.fit_network` and the loader of saved
estimators (:mod:`eegmtl.mixnet.io`) call, with the keyword arguments recorded in
``model_kwargs_`` (``variant`` plus constructor arguments; ``backbone`` and ``backbone_kwargs``
for a braindecode trunk; ``architecture`` and ``architecture_kwargs`` for an MTL architecture).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

__all__ = ["build_network"]


def build_network(variant: str = "mixnet", backbone: str | None = None,
                  backbone_kwargs: Mapping[str, Any] | None = None,
                  architecture: str | None = None,
                  architecture_kwargs: Mapping[str, Any] | None = None,
                  **net_kwargs: Any) -> nn.Module:
    """MixNet (``variant="mixnet"``), MIN2Net (``"min2net"``) or, with ``backbone`` (a braindecode
    model name), :class:`~eegmtl.models.multitask.MultiTaskBraindecode` on that trunk; with
    ``architecture`` (``"mmoe"``, ``"cgc"``, ``"ple"``, ``"cross_stitch"``; ``None`` or ``"hps"``
    = hard parameter sharing) that encoder inside the architecture
    (:class:`~eegmtl.models.eeg_architectures.MultiTaskEEGArchitecture`).

    ``net_kwargs``: ``n_channels``, ``n_times``, ``n_classes``, ``latent_dim``, ``sfreq``.
    """
    if architecture is not None or architecture_kwargs:
        from eegmtl.models.eeg_architectures import MultiTaskEEGArchitecture, architecture_options

        if architecture is not None and str(architecture).strip().lower() != "hps":
            return MultiTaskEEGArchitecture(architecture, variant=variant, backbone=backbone,
                                            backbone_kwargs=backbone_kwargs,
                                            **dict(architecture_kwargs or {}), **net_kwargs)
        architecture_options("hps", architecture_kwargs)  # raises: hard sharing takes none
    if backbone is not None:
        from eegmtl.models.multitask import MultiTaskBraindecode

        return MultiTaskBraindecode(backbone, model_kwargs=dict(backbone_kwargs or {}),
                                    **net_kwargs)
    from eegmtl.models.mixnet import MixNet

    if variant == "min2net":
        return MixNet.min2net(**net_kwargs)
    if variant != "mixnet":
        raise ValueError(f"variant must be 'mixnet' or 'min2net', got {variant!r}.")
    return MixNet(**net_kwargs)
