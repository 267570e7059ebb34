"""Multi-task versions of any braindecode network: a braindecode trunk with MixNet's heads.

:class:`MultiTaskBraindecode` turns a braindecode classifier into a three-task network with the
interface of :class:`eegmtl.models.mixnet.MixNet` (``task_names``, ``encode``, ``decode``,
``forward``, ``shared_parameters``, ``task_parameters``, ``classifier``, ``predict_proba``,
``apply_constraints``), so the MTL core's :class:`~eegmtl.mtl.trainer.Trainer` trains it with any
weighting or aggregator (``blending``, ``aligned_mtl``, ``pcgrad``, ...) exactly as it trains
MixNet, and the MixNet estimator can train it by swapping the network:

- **trunk** (shared): the braindecode model with its ``final_layer`` (braindecode's name for the
  classification layer) replaced by a flatten, i.e. *everything before the final classifier
  layer*, followed by MixNet's dense latent layer ``Linear(features, latent_dim)`` → z;
- **reconstruction** head: MixNet's decoder (dense → ELU → reshape → two transposed convs) from
  z back to the input trial ``(C, T)``;
- **metric** head: z itself (the triplet loss reads the latent, no parameters), as in MixNet;
- **classification** head: MixNet's ``Linear(latent_dim, n_classes)`` on z.

How the trunk output (the features before ``final_layer``) looks for the networks tested:

================  ===========================================================================
model             features fed to the latent layer
================  ===========================================================================
EEGNet            the last (F2, 1, T/32) feature map after pooling and dropout, flattened
ShallowFBCSPNet   the (40, n_pooled, 1) log-power map after dropout, flattened
EEGConformer      the 32-d output of its ``fc`` MLP (the penultimate representation)
CTNet             the flattened transformer tokens (its ``flatten``)
ATCNet            the TCN features of all sliding windows (F2 = 32 each), concatenated:
                  ``n_windows`` x 32 (the default of ``<ATCNet>+mtl``, ``backbone_kwargs``
                  ``{"concat": True}``). ATCNet applies one linear layer per window and
                  averages the window logits; a linear map of the concatenated features can
                  reproduce that, a shared one of the window average cannot (its five
                  layers differ). Without ``concat`` the window features are averaged (the
                  earlier trunk, kept to reproduce its records). ``out_fun`` is set to identity
other models      whatever enters ``final_layer``, flattened (a ``ModuleList`` final layer is
                  replaced entry by entry)
================  ===========================================================================

The decoder ends with MixNet's ELU by default only if ``reconstruction_activation="elu"``;
the default ``"linear"`` drops it, because raw EEG (unlike MixNet's CSP signals) is not bounded
below by -1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.models.mixnet import MixNet

__all__ = ["MultiTaskBraindecode", "trunk_from_braindecode"]


class _Flatten(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)


def trunk_from_braindecode(model: nn.Module) -> nn.Module:
    """The braindecode ``model`` with its ``final_layer`` replaced by a flatten (in place).

    Raises
    ------
    ValueError
        The model has no ``final_layer`` attribute (not a braindecode ``EEGModuleMixin``
        classifier): build the trunk by hand and pass it to :class:`MultiTaskBraindecode`.
    """
    final = getattr(model, "final_layer", None)
    if final is None:
        raise ValueError(f"{type(model).__name__} has no 'final_layer': braindecode classifiers "
                         "name their classification layer so; pass a trunk module instead.")
    if isinstance(final, nn.ModuleList):
        model.final_layer = nn.ModuleList(_Flatten() for _ in final)
    else:
        model.final_layer = _Flatten()
    if isinstance(getattr(model, "out_fun", None), nn.Module):  # ATCNet's output function
        model.out_fun = nn.Identity()
    return model


def _decoder_pools(n_times: int) -> tuple[int, int]:
    for p1, p2 in ((4, 4), (4, 2), (2, 2), (2, 1), (1, 1)):
        if n_times % (p1 * p2) == 0:
            return p1, p2
    raise AssertionError("unreachable")  # (1, 1) always divides


class MultiTaskBraindecode(nn.Module):
    """Braindecode trunk + MixNet's reconstruction / triplet / classification heads.

    Parameters
    ----------
    model : str or nn.Module
        braindecode class name (built with ``n_chans``, ``n_outputs``, ``n_times``, ``sfreq``
        and ``model_kwargs``) or an instance (its ``final_layer`` is replaced in place).
    n_channels, n_times : int
        Input trial shape ``(C, T)``.
    n_classes : int, default 2
    latent_dim : int, default 16
        Size of z.
    sfreq : float, default 250
    model_kwargs : dict, optional
        Extra arguments of the braindecode class.
    reconstruction_activation : {"linear", "elu"}, default "linear"
        Output of the decoder (``"elu"`` = MixNet's, bounded below by -1).
    max_norm : bool, default True
        MixNet's Keras max-norm constraints on the heads (decoder, latent, classifier),
        applied by :meth:`apply_constraints` after every optimiser step.
    """

    task_names: tuple[str, ...] = ("reconstruction", "metric", "classification")

    def __init__(self, model: str | nn.Module, n_channels: int, n_times: int, n_classes: int = 2,
                 latent_dim: int = 16, sfreq: float = 250.0,
                 model_kwargs: dict[str, Any] | None = None,
                 reconstruction_activation: str = "linear", max_norm: bool = True) -> None:
        super().__init__()
        if reconstruction_activation not in ("linear", "elu"):
            raise ValueError("reconstruction_activation must be 'linear' or 'elu', got "
                             f"{reconstruction_activation!r}.")
        concat_windows = False
        if isinstance(model, str):
            from eegmtl._compat import import_braindecode

            import_braindecode()
            from braindecode import models

            if not hasattr(models, model):
                raise ValueError(f"braindecode has no model {model!r}.")
            kwargs = dict(model_kwargs or {})
            if model == "ATCNet" and kwargs.get("concat"):
                # braindecode's own concat=True keeps one final layer, and its forward zips the
                # windows with the final layers, so only the first window would run: build the
                # per-window variant and let the trunk concatenate every window's features
                kwargs["concat"], concat_windows = False, True
            model = getattr(models, model)(n_chans=n_channels, n_outputs=n_classes,
                                           n_times=n_times, sfreq=sfreq, **kwargs)
        self.n_channels, self.n_times, self.n_classes = int(n_channels), int(n_times), n_classes
        self.latent_dim = int(latent_dim)
        self.backbone_name = type(model).__name__
        self.trunk = trunk_from_braindecode(model)
        if concat_windows:
            self.trunk.concat = True  # every window's features, concatenated by its forward
        was = self.trunk.training
        self.trunk.eval()
        with torch.no_grad():
            n_features = self.trunk(torch.zeros(2, self.n_channels, self.n_times)).shape[1]
        self.trunk.train(was)
        self.n_features = int(n_features)
        p1, p2 = _decoder_pools(self.n_times)
        heads = MixNet(n_channels=self.n_channels, n_times=self.n_times, n_classes=n_classes,
                       latent_dim=self.latent_dim, pool1=p1, pool2=p2,
                       max_norm_conv=2.0 if max_norm else None,
                       max_norm_dense=0.5 if max_norm else None)
        self.latent = nn.Linear(self.n_features, self.latent_dim)
        nn.init.xavier_uniform_(self.latent.weight)
        nn.init.zeros_(self.latent.bias)
        self.decoder = heads.decoder
        if reconstruction_activation == "linear":
            self.decoder.elu2 = nn.Identity()
        self.classifier = heads.classifier
        kept = {id(m) for m in self.modules()}
        self._constraints = [c for c in heads._constraints if id(c[0]) in kept]
        if max_norm:
            self._constraints.append((self.latent, (1,), 0.5))

    # ------------------------------------------------------------------ MultiTaskModel protocol
    def _check_input(self, x: Tensor) -> Tensor:
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.n_channels, self.n_times):
            raise ValueError(f"expected input (n, {self.n_channels}, {self.n_times}), got "
                             f"{tuple(x.shape)}.")
        dtype = self.latent.weight.dtype
        return x if x.dtype == dtype else x.to(dtype)

    def encode(self, x: Tensor) -> Tensor:
        """Latent z ``(n, latent_dim)``: trunk features through the dense latent layer."""
        return self.latent(self.trunk(self._check_input(x)))

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        """``{"reconstruction": x̂ (n, C, T), "metric": z, "classification": logits}``."""
        return {"reconstruction": self.decoder(rep), "metric": rep,
                "classification": self.classifier(rep)}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterable[nn.Parameter]:
        """Trunk and latent-layer parameters (used by all three tasks)."""
        return [*self.trunk.parameters(), *self.latent.parameters()]

    #: z and the class logits, class probabilities in eval mode; MixNet's Keras max-norm on the
    #: heads after every optimiser step (the trunk keeps braindecode's own parametrised
    #: constraints). They read only ``classifier``, ``encode`` and ``_constraints``, so MixNet's
    #: code is reused, as is its ``task_parameters`` (decoder / none / classifier).
    task_parameters = MixNet.task_parameters
    embed = MixNet.embed
    logits = MixNet.logits
    predict_proba = MixNet.predict_proba
    apply_constraints = MixNet.apply_constraints

    def extra_repr(self) -> str:
        return (f"backbone={self.backbone_name}, n_channels={self.n_channels}, "
                f"n_times={self.n_times}, n_features={self.n_features}, "
                f"latent_dim={self.latent_dim}")
