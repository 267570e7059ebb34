"""MixNet: the three-task (reconstruction, metric learning, classification) EEG network.

A faithful PyTorch port of the network of

    P. Autthasan, R. Chaisaen, H. Phan, M. De Vos, T. Wilaiprasitporn, "MixNet: Joining Force of
    Classical and Modern Approaches Toward the Comprehensive Pipeline in Motor Imagery EEG
    Classification", IEEE Internet of Things Journal 11(17):28539-28554, 2024
    (arXiv 2409.04104), official code ``Max-Phairot-A/MixNet`` (``mixnet/models/MixNet.py``),

which keeps the architecture of its predecessor MIN2Net (Autthasan et al., IEEE TBME 69(6), 2022,
``IoBT-VISTEC/MIN2Net``) and changes only its input (filter-bank CSP "spectral-spatial signals"
instead of raw EEG) and its second filter count (``F2 = C // 2`` instead of 10).

Keras → PyTorch equivalences (padding, transposed convolution, channels-last dense layers,
BatchNorm momentum, initialisation, MaxNorm constraints) are described and implemented in
:mod:`eegmtl.models.keras_layers`; all are checked by the model tests.

Not from the original: on the CPU the two encoder convolutions are computed through real FFTs
when training (``conv_impl="auto"``), which gives the same linear cross-correlation up to float
rounding and makes a training step about 3× faster (the 64-tap weight gradient dominates).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.models.keras_layers import (
    _alias,
    _Conv1d,
    _KerasFlatten,
    _KerasUnflatten,
    _positive_int,
    _SameConvTranspose1d,
    _SamePad1d,
    max_norm_,
    same_padding,
    transposed_same_crop,
)

__all__ = ["MixNet", "same_padding", "transposed_same_crop"]

class MixNet(nn.Module):
    """MixNet encoder / decoder / classifier (hard parameter sharing, three tasks).

    Architecture (reference notes §2; shapes for the 2b defaults C = 18, T = 400, latent 4)::

        x (n, C, T) ─ conv C→C (1×k1=64, same) ─ ELU ─ BN ─ avgpool p1=4      (n, 18, 100)
                    ─ conv C→F2 (1×k2=32, same) ─ ELU ─ BN ─ avgpool p2=4     (n,  9,  25)
                    ─ flatten (225) ─ dense → z (linear)                        (n, 4)
        z ─ dense 225 ─ ELU ─ reshape (F2, T/p1/p2)                             (n,  9,  25)
          ─ conv-transpose F2→F2 (k1=64, stride p2, same) ─ ELU                 (n,  9, 100)
          ─ conv-transpose F2→C  (k2=32, stride p1, same) ─ ELU  = x̂           (n, 18, 400)
        z ─ dense n_classes = logits (softmax in :meth:`predict_proba`)

    Trainable parameters for C = 18, T = 400: 38,435 (latent 4, subject-dependent setting) and
    44,777 (latent 18, subject-independent), plus 54 BatchNorm running statistics.

    Parameters
    ----------
    n_channels : int or None, default None (18)
        Input signals ``C`` (= CSP components U × filter-bank bands N_f; 2 × 9 for BCIC IV 2b).
    n_times : int, default 400
        Samples per trial ``T`` (4 s at 100 Hz). Must be a multiple of ``pool1 * pool2``.
    n_classes : int or None, default None (2)
    latent_dim : int or None, default None
        Size of z. ``None`` → ``n_channels`` for two classes, 64 otherwise (original code).
        The paper's tuned 2b values are 4 (subject-dependent) and 18 (subject-independent).
    f2 : int or None, default None
        Filters of the second conv ``F2``. ``None`` → ``n_channels // 2`` (MixNet);
        MIN2Net used 10 (see :meth:`min2net`).
    kernel1, kernel2 : int, default 64, 32
        Temporal kernels of the two encoder convs; the decoder uses them in swapped order
        (first transposed conv ``kernel1``, second ``kernel2``), as the original code.
    pool1 : int or None, default None
        First average-pooling factor. ``None`` → ``n_times // sfreq`` as in the original code
        (4 for 4-s trials at 100 Hz). The last transposed conv upsamples by the same factor.
    pool2 : int, default 4
        Second average-pooling factor (= stride of the first transposed conv).
    sfreq : float, default 100
        Only used for the default of ``pool1``.
    max_norm_conv : float or None, default 2.0
        Keras ``MaxNorm`` on the conv and transposed-conv kernels; ``None`` disables it.
    max_norm_dense : float or None, default 0.5
        Keras ``MaxNorm`` on the latent, decoder-dense and classifier kernels; ``None`` disables.
    max_norm_output : bool, default False
        Whether the *last* transposed conv (the one producing x̂) is max-norm constrained.
        The MixNet reference notes (§2) list no constraint on it, so the default is off;
        MIN2Net's code constrains it (``True`` in :meth:`min2net`).
    bn_momentum_keras : float, default 0.1
        BatchNorm momentum **in Keras' convention** (weight of the *old* running value):
        ``running ← 0.1·running + 0.9·batch``. Stored in PyTorch as ``momentum = 1 - 0.1 = 0.9``.
    bn_eps : float, default 1e-5
    n_chans, n_outputs : int or None
        braindecode's names of ``n_channels`` and ``n_classes`` (keyword only), so that
        ``braindecode.EEGClassifier`` can build and train the network; ``n_times`` and
        ``sfreq`` have the same names in both libraries. Defaults: 18 channels, 2 classes.
    output : {"tasks", "logits"}, default "tasks"
        What :meth:`forward` returns: the dict of the three task outputs (MTL training with
        :class:`eegmtl.mtl.trainer.Trainer`) or the class logits only (single-task training
        by ``braindecode.EEGClassifier`` / skorch, which expect logits from the module).
    init : {"keras", "torch"}, default "keras"
        ``"keras"``: glorot-uniform kernels and zero biases (Keras defaults, as the original);
        ``"torch"``: PyTorch's default initialisation.
    conv_impl : {"auto", "direct", "fft"}, default "auto"
        How the two encoder convolutions are computed: ``"direct"`` (``F.conv1d``) or
        ``"fft"`` (same linear cross-correlation through real FFTs, equal up to float rounding,
        several times faster for the 64-tap kernel on the CPU). ``"auto"``: FFT on the CPU for
        training and for batches of 16 trials or more; direct for small no-grad batches
        (single-trial inference) and on GPUs (cuDNN).

    Notes
    -----
    Inputs are ``(n, C, T)`` or ``(n, 1, C, T)`` floating tensors (the 4-D form is squeezed; the
    original Keras layout ``(n, 1, T, C)`` must be permuted by the caller). Other floating
    dtypes are cast to the model's dtype. x̂ is always returned as ``(n, C, T)``; note the final
    ELU bounds it below by -1, as in the original.

    The model satisfies :class:`eegmtl.mtl.tasks.MultiTaskModel`: ``encode`` returns z,
    ``decode(z)`` returns ``{"reconstruction": x̂, "metric": z, "classification": logits}``;
    the shared parameters are the encoder's, the metric task has no parameters of its own.
    Call :meth:`apply_constraints` after every optimiser step to reproduce Keras.
    """

    task_names: tuple[str, ...] = ("reconstruction", "metric", "classification")

    def __init__(
        self,
        n_channels: int | None = None,
        n_times: int = 400,
        n_classes: int | None = None,
        latent_dim: int | None = None,
        f2: int | None = None,
        kernel1: int = 64,
        kernel2: int = 32,
        pool1: int | None = None,
        pool2: int = 4,
        sfreq: float = 100,
        max_norm_conv: float | None = 2.0,
        max_norm_dense: float | None = 0.5,
        max_norm_output: bool = False,
        bn_momentum_keras: float = 0.1,
        bn_eps: float = 1e-5,
        init: str = "keras",
        conv_impl: str = "auto",
        *,
        n_chans: int | None = None,
        n_outputs: int | None = None,
        output: str = "tasks",
    ) -> None:
        super().__init__()
        n_channels = _alias("n_channels", n_channels, "n_chans", n_chans, 18)
        n_classes = _alias("n_classes", n_classes, "n_outputs", n_outputs, 2)
        if output not in ("tasks", "logits"):
            raise ValueError(
                f"output must be 'tasks' (dict of the three task outputs) or 'logits' (class "
                f"logits only, e.g. for braindecode.EEGClassifier); got {output!r}."
            )
        self.output = output
        C = _positive_int("n_channels", n_channels)
        T = _positive_int("n_times", n_times)
        n_classes = _positive_int("n_classes", n_classes)
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}.")
        if latent_dim is None:
            latent_dim = C if n_classes == 2 else 64
        latent_dim = _positive_int("latent_dim", latent_dim)
        if f2 is None:
            f2 = max(C // 2, 1)
        f2 = _positive_int("f2", f2)
        kernel1 = _positive_int("kernel1", kernel1)
        kernel2 = _positive_int("kernel2", kernel2)
        if pool1 is None:
            if not sfreq or sfreq <= 0:
                raise ValueError(f"sfreq must be positive, got {sfreq!r}.")
            pool1 = int(T // sfreq)
            if pool1 < 1:
                raise ValueError(
                    f"n_times={T} is shorter than one second at sfreq={sfreq}: the default "
                    "pool1 = n_times // sfreq would be 0; give pool1 explicitly."
                )
        pool1 = _positive_int("pool1", pool1)
        pool2 = _positive_int("pool2", pool2)
        if T % (pool1 * pool2) != 0:
            raise ValueError(
                f"n_times={T} is not a multiple of pool1*pool2={pool1 * pool2}: the decoder "
                "could not restore the input length. Crop or resample the trials (MixNet uses "
                "400 samples = 4 s at 100 Hz) or change pool1/pool2."
            )
        for name, value in (("max_norm_conv", max_norm_conv), ("max_norm_dense", max_norm_dense)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}.")
        if not 0.0 <= bn_momentum_keras <= 1.0:
            raise ValueError(
                f"bn_momentum_keras must lie in [0, 1] (Keras convention), got {bn_momentum_keras}."
            )
        if init not in ("keras", "torch"):
            raise ValueError(f"init must be 'keras' or 'torch', got {init!r}.")

        self.n_channels, self.n_times, self.n_classes = C, T, n_classes
        self.latent_dim, self.f2 = latent_dim, f2
        self.kernel1, self.kernel2, self.pool1, self.pool2 = kernel1, kernel2, pool1, pool2
        self.max_norm_conv, self.max_norm_dense = max_norm_conv, max_norm_dense
        self.max_norm_output = bool(max_norm_output)
        self.bn_momentum_keras, self.init = float(bn_momentum_keras), init
        self.conv_impl = conv_impl
        flat_len = T // pool1 // pool2
        self.flat_size = flat_len * f2
        momentum = 1.0 - float(bn_momentum_keras)  # Keras → PyTorch convention

        self.encoder = nn.Sequential(
            OrderedDict(
                [
                    ("pad1", _SamePad1d(kernel1)),
                    ("conv1", _Conv1d(C, C, kernel1, conv_impl)),
                    ("elu1", nn.ELU()),
                    ("bn1", nn.BatchNorm1d(C, eps=bn_eps, momentum=momentum)),
                    ("pool1", nn.AvgPool1d(pool1)),
                    ("pad2", _SamePad1d(kernel2)),
                    ("conv2", _Conv1d(C, f2, kernel2, conv_impl)),
                    ("elu2", nn.ELU()),
                    ("bn2", nn.BatchNorm1d(f2, eps=bn_eps, momentum=momentum)),
                    ("pool2", nn.AvgPool1d(pool2)),
                    ("flatten", _KerasFlatten()),
                    ("latent", nn.Linear(self.flat_size, latent_dim)),
                ]
            )
        )
        self.decoder = nn.Sequential(
            OrderedDict(
                [
                    ("dense", nn.Linear(latent_dim, self.flat_size)),
                    ("elu0", nn.ELU()),
                    ("unflatten", _KerasUnflatten(f2, flat_len)),
                    ("deconv1", _SameConvTranspose1d(f2, f2, kernel1, stride=pool2)),
                    ("elu1", nn.ELU()),
                    ("deconv2", _SameConvTranspose1d(f2, C, kernel2, stride=pool1)),
                    ("elu2", nn.ELU()),
                ]
            )
        )
        self.classifier = nn.Linear(latent_dim, n_classes)

        # (module, dims over which the norm is taken, limit) for apply_constraints().
        self._constraints: list[tuple[nn.Module, tuple[int, ...], float]] = []
        if max_norm_conv is not None:
            # Conv1d weight (out, in, k): per output filter. ConvTranspose1d weight (in, out, k):
            # per input channel (Keras kernel (kh, kw, out, in), axis (0, 1, 2)).
            self._constraints += [
                (self.encoder.conv1, (1, 2), float(max_norm_conv)),
                (self.encoder.conv2, (1, 2), float(max_norm_conv)),
                (self.decoder.deconv1, (1, 2), float(max_norm_conv)),
            ]
            if self.max_norm_output:
                self._constraints.append((self.decoder.deconv2, (1, 2), float(max_norm_conv)))
        if max_norm_dense is not None:
            # Linear weight (out, in) = Keras kernel (in, out) transposed; Keras axis 0 → dim 1.
            self._constraints += [
                (layer, (1,), float(max_norm_dense))
                for layer in (self.encoder.latent, self.decoder.dense, self.classifier)
            ]
        self.reset_parameters()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def min2net(
        cls, n_channels: int = 20, n_times: int = 400, n_classes: int = 2, **kwargs: Any
    ) -> MixNet:
        """MIN2Net (Autthasan et al., IEEE TBME 2022) on time-domain EEG: same network class.

        Differences from MixNet's defaults (``IoBT-VISTEC/MIN2Net``, ``min2net/model/MIN2Net.py``):
        ``F2 = 10`` and the output transposed conv is max-norm constrained. The latent default is
        ``n_channels`` (2 classes) as in MixNet. Other keyword arguments are passed through.
        """
        kwargs.setdefault("f2", 10)
        kwargs.setdefault("max_norm_output", True)
        return cls(n_channels=n_channels, n_times=n_times, n_classes=n_classes, **kwargs)

    def reset_parameters(self) -> None:
        """(Re-)initialise every layer (``init="keras"``: glorot-uniform, zero bias; BN 1/0)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
                if self.init == "keras":
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
                else:
                    module.reset_parameters()
            elif isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()

    # ------------------------------------------------------------------ MultiTaskModel protocol
    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(
                f"MixNet expects a torch.Tensor, got {type(x).__name__}; "
                "convert with torch.as_tensor(x, dtype=torch.float32)."
            )
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        expected = (self.n_channels, self.n_times)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"MixNet expects input of shape (n_trials, {expected[0]}, {expected[1]}) "
                f"[(n_trials, n_channels, n_times), or (n_trials, 1, n_channels, n_times)], got "
                f"{tuple(x.shape)}. Check the channel/time axis order (the Keras layout "
                "(n, 1, T, C) must be permuted) or build the model with matching "
                "n_channels / n_times."
            )
        if not torch.is_floating_point(x):
            raise TypeError(f"MixNet expects a floating-point input, got dtype {x.dtype}.")
        dtype = self.classifier.weight.dtype
        return x if x.dtype == dtype else x.to(dtype)

    def encode(self, x: Tensor) -> Tensor:
        """Latent representation z, shape ``(n, latent_dim)`` (the shared representation)."""
        return self.encoder(self._check_input(x))

    def decode(self, rep: Tensor) -> dict[str, Tensor]:
        """Task outputs from z: reconstruction x̂ ``(n, C, T)``, metric z, classification logits."""
        if rep.ndim != 2 or rep.shape[1] != self.latent_dim:
            raise ValueError(
                f"decode expects z of shape (n, {self.latent_dim}), got {tuple(rep.shape)}."
            )
        return {
            "reconstruction": self.decoder(rep),
            "metric": rep,
            "classification": self.classifier(rep),
        }

    def forward(self, x: Tensor) -> dict[str, Tensor] | Tensor:
        """``decode(encode(x))``; with ``output="logits"`` only the class logits."""
        if self.output == "logits":
            return self.logits(x)
        return self.decode(self.encode(x))

    def shared_parameters(self) -> Iterable[nn.Parameter]:
        """Encoder parameters (used by all three tasks)."""
        return self.encoder.parameters()

    def task_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Head parameters: decoder (reconstruction), none (metric), classifier (classification)."""
        if task == "reconstruction":
            return self.decoder.parameters()
        if task == "metric":
            return iter(())
        if task == "classification":
            return self.classifier.parameters()
        raise KeyError(f"unknown task {task!r}; MixNet's tasks are {self.task_names}.")

    def embed(self, x: Tensor) -> Tensor:
        """The representation the class prediction reads: z, shape ``(n, latent_dim)``."""
        return self.encode(x)

    def logits(self, x: Tensor) -> Tensor:
        """Class logits ``classifier(z)``, shape ``(n, n_classes)``."""
        return self.classifier(self.encode(x))

    # ------------------------------------------------------------------ utilities
    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities ``softmax(logits)``, shape ``(n, n_classes)``, in eval mode.

        The training/eval mode of the model is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            return torch.softmax(self.logits(x), dim=1)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Apply the Keras ``MaxNorm`` constraints in place; call after every optimiser step.

        Keras' formula ``w ← w · clip(n, 0, m) / (1e-7 + n)`` with ``n`` the L2 norm over the
        constrained axes: per output filter (convs), per output unit (dense), per input channel
        (transposed convs). Weights already within the limit change by a factor
        ``n / (n + 1e-7)`` only, as in Keras.
        """
        for module, dims, limit in self._constraints:
            max_norm_(module.weight, dims, limit)

    def constrained_parameters(self) -> list[tuple[str, tuple[int, ...], float]]:
        """``(parameter name, norm dims, limit)`` of every max-norm constraint."""
        names = {id(m): n for n, m in self.named_modules()}
        return [(f"{names[id(m)]}.weight", dims, lim) for m, dims, lim in self._constraints]

    def parameter_counts(self) -> dict[str, int]:
        """Keras-style counts: trainable parameters and non-trainable BN running statistics."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        non_trainable = sum(
            m.running_mean.numel() + m.running_var.numel()
            for m in self.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
        )
        return {"trainable": trainable, "non_trainable": non_trainable}

    def extra_repr(self) -> str:
        return (
            f"n_channels={self.n_channels}, n_times={self.n_times}, n_classes={self.n_classes}, "
            f"latent_dim={self.latent_dim}, f2={self.f2}"
        )
