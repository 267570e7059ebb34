"""MixNet's three tasks on a multi-task architecture of EEG encoders: MMoE, CGC, PLE, Cross-stitch.

:class:`MultiTaskEEGArchitecture` puts the architectures of :mod:`eegmtl.mtl.architectures` in
place of MixNet's hard parameter sharing (one encoder read by the three task heads). The experts
(or columns) are copies of the network's encoder, split in two stages:

=====================  ===========================================  ===========================
network                stage 1 (trial → features)                    stage 2 (features → z)
=====================  ===========================================  ===========================
MixNet / MIN2Net       the two conv blocks up to the flatten            the dense latent layer
braindecode trunk      the trunk (:class:`~eegmtl.models.multitask.      the dense latent layer
                       MultiTaskBraindecode`: model without its
                       ``final_layer``)
=====================  ===========================================  ===========================

- ``"mmoe"`` (Ma et al., KDD 2018, Eq. 5-6): ``n_experts`` whole encoders, one softmax gate per
  task on the flattened trial;
- ``"cgc"`` (Tang et al., RecSys 2020, §4.2): ``n_shared`` shared and ``n_specific`` per-task
  whole encoders;
- ``"ple"`` (Tang et al. 2020, §4.3): two extraction levels, stage 1 then stage 2, gates on the
  trial and on the stage-1 features;
- ``"cross_stitch"`` (Misra et al., CVPR 2016): one encoder column per task, a cross-stitch unit
  between the two stages.

The heads are MixNet's: decoder (reconstruction, from the reconstruction task's z), identity
(the triplet loss reads the metric task's z) and ``Linear(latent_dim, n_classes)``
(classification, from the classification task's z). Class predictions and the embedding
(:meth:`MultiTaskEEGArchitecture.logits`, :meth:`MultiTaskEEGArchitecture.embed`) use the
classification task's z. MixNet's Keras max-norm constraints hold on every expert copy and head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.models.mixnet import MixNet
from eegmtl.mtl.architectures import CGC, PLE, CrossStitch, MMoE, MultiTaskArchitecture

__all__ = ["EEG_ARCHITECTURES", "MultiTaskEEGArchitecture", "architecture_options"]

#: accepted ``architecture`` names -> their keyword arguments and defaults
EEG_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "mmoe": {"n_experts": 3},
    "cgc": {"n_shared": 1, "n_specific": 1},
    "ple": {"n_shared": 1, "n_specific": 1},
    "cross_stitch": {"self_weight": 0.9},
}

_Constraint = tuple[nn.Module, tuple[int, ...], float]


def architecture_options(architecture: str, kwargs: Mapping[str, Any] | None = None
                         ) -> dict[str, Any]:
    """The defaults of :data:`EEG_ARCHITECTURES` ``[architecture]`` updated by ``kwargs``
    (``"hps"``, hard sharing, takes none).

    Raises
    ------
    ValueError
        A keyword the architecture does not take.
    """
    allowed = EEG_ARCHITECTURES.get(architecture, {})
    unknown = set(kwargs or {}) - set(allowed)
    if unknown:
        raise ValueError(f"architecture_kwargs {sorted(unknown)} are not accepted by architecture "
                         f"{architecture!r} (unknown keyword(s); it takes "
                         f"{sorted(allowed) or 'none'}).")
    return {**allowed, **dict(kwargs or {})}


class MultiTaskEEGArchitecture(nn.Module):
    """MixNet's reconstruction / metric / classification tasks on an MTL architecture.

    Parameters
    ----------
    architecture : {"mmoe", "cgc", "ple", "cross_stitch"}
        See the module docstring.
    n_channels, n_times : int
        Input trial shape ``(C, T)``.
    n_classes : int, default 2
    latent_dim : int, default 16
        Size of every task's z.
    sfreq : float, default 100
        Sampling rate of the input (MixNet's pooling; a braindecode model's ``sfreq``).
    variant : {"mixnet", "min2net"}, default "mixnet"
        Encoder of the experts when ``backbone`` is None.
    backbone : str, optional
        A braindecode model name: the experts are its trunk with MixNet's latent layer.
    backbone_kwargs : dict, optional
        Extra arguments of the braindecode class.
    **architecture_kwargs
        ``n_experts`` (mmoe, default 3), ``n_shared`` / ``n_specific`` (cgc, ple, default 1 / 1),
        ``self_weight`` (cross_stitch, default 0.9).

    Raises
    ------
    ValueError
        Unknown architecture or keyword, or an invalid network setting.
    """

    task_names: tuple[str, ...] = ("reconstruction", "metric", "classification")

    def __init__(self, architecture: str, n_channels: int, n_times: int, n_classes: int = 2,
                 latent_dim: int = 16, sfreq: float = 100.0, variant: str = "mixnet",
                 backbone: str | None = None, backbone_kwargs: Mapping[str, Any] | None = None,
                 **architecture_kwargs: Any) -> None:
        super().__init__()
        key = str(architecture).strip().lower()
        if key not in EEG_ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(EEG_ARCHITECTURES)} (or "
                             f"'hps' / None for MixNet's hard sharing), got {architecture!r}.")
        if variant not in ("mixnet", "min2net"):
            raise ValueError(f"variant must be 'mixnet' or 'min2net', got {variant!r}.")
        opts = architecture_options(key, architecture_kwargs)
        self.architecture = key
        self.n_channels, self.n_times, self.n_classes = int(n_channels), int(n_times), n_classes
        self.latent_dim = int(latent_dim)
        self.backbone_name = backbone or variant
        built: list[_Constraint] = []

        def network() -> nn.Module:
            if backbone is not None:
                from eegmtl.models.multitask import MultiTaskBraindecode

                net: nn.Module = MultiTaskBraindecode(
                    backbone, self.n_channels, self.n_times, n_classes, self.latent_dim, sfreq,
                    model_kwargs=dict(backbone_kwargs or {}))
            else:
                make = MixNet.min2net if variant == "min2net" else MixNet
                net = make(n_channels=self.n_channels, n_times=self.n_times,
                           n_classes=n_classes, latent_dim=self.latent_dim, sfreq=sfreq)
            built.extend(net._constraints)
            return net

        def stages() -> list[nn.Module]:
            net = network()
            if backbone is not None:
                return [net.trunk, net.latent]
            layers = list(net.encoder.children())
            return [nn.Sequential(*layers[:-1]), layers[-1]]

        def encoder() -> nn.Module:
            return nn.Sequential(*stages())

        head_net = network()
        heads = {"reconstruction": head_net.decoder, "metric": nn.Identity(),
                 "classification": head_net.classifier}
        n_in = self.n_channels * self.n_times
        self.arch: MultiTaskArchitecture
        if key == "mmoe":
            self.arch = MMoE(encoder, opts["n_experts"], heads, n_in)
        elif key == "cgc":
            self.arch = CGC(encoder, opts["n_shared"], opts["n_specific"], heads, n_in)
        elif key == "ple":
            probe = stages()[0].eval()
            with torch.no_grad():
                n_mid = probe(torch.zeros(2, self.n_channels, self.n_times)).flatten(1).shape[1]
            levels: list[Callable[[], nn.Module]] = [lambda k=k: stages()[k] for k in (0, 1)]
            self.arch = PLE(levels, opts["n_shared"], opts["n_specific"], heads,
                            [n_in, int(n_mid)])
        else:
            self.arch = CrossStitch(stages, heads, self_weight=float(opts["self_weight"]))
        self.architecture_kwargs = opts
        kept = {id(m) for m in self.modules()}
        self._constraints: list[_Constraint] = [c for c in built if id(c[0]) in kept]

    # ------------------------------------------------------------------ MultiTaskModel protocol
    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}.")
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.n_channels, self.n_times):
            raise ValueError(f"expected input (n, {self.n_channels}, {self.n_times}) [(n_trials, "
                             f"n_channels, n_times)], got {tuple(x.shape)}.")
        if not torch.is_floating_point(x):
            raise TypeError(f"expected a floating-point input, got dtype {x.dtype}.")
        dtype = next(self.parameters()).dtype
        return x if x.dtype == dtype else x.to(dtype)

    def encode(self, x: Tensor) -> Tensor:
        """Per-task z stacked, shape ``(n, 3, latent_dim)`` (task order :attr:`task_names`)."""
        return self.arch.encode(self._check_input(x))

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        """``{"reconstruction": x̂ (n, C, T), "metric": z_metric, "classification": logits}``."""
        return self.arch.decode(rep)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterable[nn.Parameter]:
        """Experts, gates and cross-stitch units (everything outside the heads)."""
        return self.arch.shared_parameters()

    def task_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Decoder (reconstruction), none (metric), classifier (classification)."""
        return self.arch.task_parameters(task)

    # ------------------------------------------------------------------ predictions
    def embed(self, x: Tensor) -> Tensor:
        """The classification task's z, shape ``(n, latent_dim)``."""
        return self.encode(x)[:, self.task_names.index("classification")]

    def logits(self, x: Tensor) -> Tensor:
        """Class logits from the classification task's z, shape ``(n, n_classes)``."""
        return self.arch.heads["classification"](self.embed(x))

    #: ``softmax(logits)`` in eval mode, and MixNet's Keras max-norm on every expert copy and
    #: head: MixNet's code, which reads only ``logits`` and ``_constraints``
    predict_proba = MixNet.predict_proba
    apply_constraints = MixNet.apply_constraints

    def extra_repr(self) -> str:
        return (f"architecture={self.architecture}, encoder={self.backbone_name}, "
                f"n_channels={self.n_channels}, n_times={self.n_times}, "
                f"latent_dim={self.latent_dim}, {self.architecture_kwargs}")
