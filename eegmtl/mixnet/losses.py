"""Losses of MixNet's three tasks: reconstruction MSE, semi-hard triplet, class-balanced CE.

Each loss exists as a function and as an :class:`torch.nn.Module` whose call signature is
``loss(output, target)``, so it can be the ``loss`` of an :class:`eegmtl.mtl.tasks.Task`:

>>> from eegmtl.mtl.tasks import Task
>>> tasks = [Task("reconstruction", ReconstructionLoss()),
...          Task("metric", SemiHardTripletLoss(margin=0.1)),
...          Task("classification", ClassBalancedCrossEntropy())]

References: MixNet (Autthasan et al., IEEE IoT-J 2024, ``Max-Phairot-A/MixNet`` ``mixnet/loss.py``),
F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet", CVPR 2015 (triplet loss with semi-hard
negatives), TensorFlow Addons ``tfa.losses.triplet_semihard_loss`` (the exact definition used).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "pairwise_distances",
    "semi_hard_triplet_loss",
    "reconstruction_loss",
    "balanced_class_weights",
    "class_balanced_cross_entropy",
    "SemiHardTripletLoss",
    "ReconstructionLoss",
    "ClassBalancedCrossEntropy",
    "LabeledOnly",
    "UNLABELED",
]

#: Label of a trial without a class: its rows feed the reconstruction task only
#: (:class:`LabeledOnly` drops them from the label-based losses).
UNLABELED = -1


def pairwise_distances(embeddings: Tensor, squared: bool = False) -> Tensor:
    """Pairwise (squared) Euclidean distances between the rows of ``embeddings``.

    Same values as TF-Addons' ``metric_learning.pairwise_distance``: exact zeros on the
    diagonal and wherever two embeddings coincide, and a finite (zero) gradient there — the
    square root is only evaluated on strictly positive squared distances. The squared distances
    are computed from differences (not the Gram-matrix expansion TF-Addons uses), which avoids
    its cancellation error in float32 and is otherwise identical.

    Parameters
    ----------
    embeddings : Tensor, shape (n, d)
    squared : bool, default False
        Return squared distances.

    Returns
    -------
    Tensor, shape (n, n)
    """
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be 2-D (n_samples, n_features), got shape {tuple(embeddings.shape)}."
        )
    diff = embeddings.unsqueeze(1) - embeddings.unsqueeze(0)
    sq = diff.pow(2).sum(dim=-1)
    if squared:
        return sq
    zero = sq <= 0
    # Double-where: sqrt never sees 0, so its gradient stays finite and is masked to 0.
    safe = torch.where(zero, torch.ones_like(sq), sq)
    return torch.where(zero, torch.zeros_like(sq), safe.sqrt())


def _check_labels(labels: Tensor, n: int) -> Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"labels must have shape ({n},) to match the embeddings, got {tuple(labels.shape)}."
        )
    return labels


def semi_hard_triplet_loss(
    labels: Tensor, embeddings: Tensor, margin: float = 1.0, squared: bool = False
) -> Tensor:
    """Triplet loss with online semi-hard negative mining (TF-Addons definition).

    For every ordered anchor–positive pair ``(a, p)`` with ``y_a == y_p`` and ``a ≠ p`` the
    negative is the *closest negative farther than the positive*
    ``d_an = min{d(a, n) : y_n ≠ y_a, d(a, n) > d(a, p)}`` (semi-hard, Schroff et al. 2015);
    when no negative is farther than ``d(a, p)`` the anchor's *farthest* negative is used. Then

        L = Σ_(a,p) max(0, margin + d(a, p) − d_an) / #(a, p) pairs.

    This reproduces ``tfa.losses.triplet_semihard_loss(y, z, margin)`` of TF-Addons ≥ 0.11
    (``distance_metric="L2"``: plain Euclidean, *not* squared; MixNet used tfa 0.16.1 on the raw,
    non-normalised z), including its edge case: an anchor without any negative in the batch is
    compared with ``d_an = 0`` (TF-Addons' masked maximum over an empty set returns the row
    minimum, the zero self-distance), i.e. it contributes ``margin + d(a, p)``.

    Deviation: a batch without any positive pair (every label unique) gives ``0`` with a zero
    gradient here; TF-Addons returns ``0 / 0 = NaN``.

    Parameters
    ----------
    labels : Tensor, shape (n,)
        Class labels (any dtype comparable with ``==``).
    embeddings : Tensor, shape (n, d)
        Raw embeddings (MixNet's latent z); not normalised here.
    margin : float, default 1.0
        Margin α. MixNet on BCIC IV 2b: 0.1 (subject-dependent), 5.0 (subject-independent).
    squared : bool, default False
        Use squared Euclidean distances (TF-Addons < 0.11 and MIN2Net's tfa 0.9.1).

    Returns
    -------
    Tensor
        Scalar loss, differentiable w.r.t. ``embeddings``.
    """
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be 2-D (n_samples, n_features), got shape {tuple(embeddings.shape)}."
        )
    n = embeddings.shape[0]
    labels = _check_labels(labels, n).to(embeddings.device)
    dist = pairwise_distances(embeddings, squared=squared)

    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    negative = ~same
    positive_pairs = same & ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    n_pairs = int(positive_pairs.sum())
    if n_pairs == 0:
        return embeddings.sum() * 0.0

    # For each anchor, its negative distances sorted ascending (non-negatives pushed to +inf).
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    neg_sorted, _ = torch.sort(torch.where(negative, dist, inf), dim=1)
    n_neg = negative.sum(dim=1, keepdim=True)  # (n, 1)
    # idx[a, p] = first position whose negative distance is strictly greater than d(a, p).
    idx = torch.searchsorted(
        neg_sorted.detach().contiguous(), dist.detach().contiguous(), right=True
    )
    has_semi_hard = idx < n_neg
    outside = torch.gather(neg_sorted, 1, idx.clamp(max=n - 1))
    # Farthest negative of each anchor; 0 when the anchor has no negative at all (TF-Addons).
    farthest = torch.where(negative, dist, torch.zeros_like(dist)).amax(dim=1, keepdim=True)
    chosen = torch.where(has_semi_hard, outside, farthest.expand_as(dist))
    # where() instead of a product so that +inf in the unused branch can never leak a NaN.
    loss_mat = torch.where(positive_pairs, margin + dist - chosen, torch.zeros_like(dist))
    return loss_mat.clamp(min=0.0).sum() / n_pairs


def reconstruction_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all elements (Keras ``mean_squared_error`` as used by MixNet).

    MixNet's reconstruction loss is the plain MSE; MIN2Net's own code masked exact zeros of the
    target, which MixNet does not. ``target`` may carry an extra singleton axis (e.g.
    ``(n, 1, C, T)`` for an ``(n, C, T)`` output): it is reshaped when the element counts match.
    """
    if target.shape != output.shape:
        if target.shape[0] != output.shape[0] or target.numel() != output.numel():
            raise ValueError(
                f"reconstruction target shape {tuple(target.shape)} does not match the output "
                f"shape {tuple(output.shape)}."
            )
        target = target.reshape(output.shape)
    return F.mse_loss(output, target.to(output.dtype))


def balanced_class_weights(y: Tensor | np.ndarray, n_classes: int | None = None) -> Tensor:
    """scikit-learn's ``class_weight="balanced"``: ``w_k = n / (K · n_k)``.

    Parameters
    ----------
    y : array-like of int, shape (n,)
        Class indices ``0 … K-1``.
    n_classes : int or None
        ``K``; default ``max(y) + 1``. Every class must occur in ``y``.

    Returns
    -------
    Tensor, shape (K,), float32
    """
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y).reshape(-1)
    if y.numel() == 0:
        raise ValueError("balanced_class_weights needs at least one label.")
    if torch.is_floating_point(y) or torch.is_complex(y) or y.dtype == torch.bool:
        raise TypeError(
            f"labels must be integer class indices 0..K-1, got dtype {y.dtype}; "
            "encode them first (e.g. sklearn.preprocessing.LabelEncoder)."
        )
    if int(y.min()) < 0:
        raise ValueError("labels must be class indices 0..K-1; found negative labels.")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if int(y.max()) >= k:
        raise ValueError(f"label {int(y.max())} is out of range for n_classes={k}.")
    counts = torch.bincount(y.long().cpu(), minlength=k)[:k]
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"classes {missing} have no samples: balanced class weights are undefined. "
            "Every class needs at least one training trial."
        )
    return (y.numel() / (k * counts.double())).float()


def class_balanced_cross_entropy(
    logits: Tensor, y: Tensor, class_weights: Tensor | None = None
) -> Tensor:
    """Cross-entropy with per-class sample weights, reduced as Keras does.

    ``L = Σ_i w_{y_i} · CE_i / n`` — the *batch size* ``n`` is the divisor, not ``Σ_i w_{y_i}``
    (Keras ``SparseCategoricalCrossentropy()(y, p, sample_weight)`` with its default
    ``SUM_OVER_BATCH_SIZE`` reduction, which MixNet/MIN2Net use with balanced class weights).
    PyTorch's ``F.cross_entropy(weight=...)`` would divide by the weight sum instead.

    Computed from logits with ``log_softmax`` (MixNet applies softmax and Keras takes the log of
    probabilities clipped to [1e-7, 1 - 1e-7]; the values only differ for saturated outputs).

    Parameters
    ----------
    logits : Tensor, shape (n, K)
    y : Tensor of int, shape (n,)
    class_weights : Tensor of shape (K,) or None
        e.g. :func:`balanced_class_weights` of the training labels; ``None`` = unweighted mean.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (n, n_classes), got shape {tuple(logits.shape)}.")
    y = _check_labels(y, logits.shape[0]).to(logits.device).long()
    ce = F.cross_entropy(logits, y, reduction="none")
    if class_weights is None:
        return ce.mean()
    class_weights = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    if class_weights.shape != (logits.shape[1],):
        raise ValueError(
            f"class_weights must have shape ({logits.shape[1]},), got {tuple(class_weights.shape)}."
        )
    return (ce * class_weights[y]).sum() / logits.shape[0]


class SemiHardTripletLoss(nn.Module):
    """Task loss ``loss(embeddings, labels)`` = :func:`semi_hard_triplet_loss` (margin α)."""

    def __init__(self, margin: float = 1.0, squared: bool = False) -> None:
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"margin must be non-negative, got {margin!r}.")
        self.margin, self.squared = float(margin), bool(squared)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return semi_hard_triplet_loss(target, output, margin=self.margin, squared=self.squared)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, squared={self.squared}"


class ReconstructionLoss(nn.Module):
    """Task loss ``loss(x_hat, x)`` = :func:`reconstruction_loss` (plain MSE)."""

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return reconstruction_loss(output, target)


class ClassBalancedCrossEntropy(nn.Module):
    """Task loss ``loss(logits, y)`` = :func:`class_balanced_cross_entropy`.

    Parameters
    ----------
    class_weights : Tensor of shape (K,) or None
        Stored as a buffer (moves with ``.to(device)``, saved in ``state_dict``).
        Use :meth:`from_labels` for MixNet's ``class_balancing=True``.
    """

    class_weights: Tensor | None

    def __init__(self, class_weights: Tensor | np.ndarray | None = None) -> None:
        super().__init__()
        weights = None
        if class_weights is not None:
            if not isinstance(class_weights, Tensor):
                class_weights = torch.as_tensor(np.asarray(class_weights, dtype=np.float64))
            weights = class_weights.detach().to(torch.float32).reshape(-1)
            if not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError(f"class_weights must be finite and >= 0, got {weights.tolist()}.")
        self.register_buffer("class_weights", weights)

    @classmethod
    def from_labels(
        cls, y: Tensor | np.ndarray, n_classes: int | None = None
    ) -> ClassBalancedCrossEntropy:
        """Balanced weights ``n / (K · n_k)`` from the training labels."""
        return cls(balanced_class_weights(y, n_classes))

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return class_balanced_cross_entropy(output, target, self.class_weights)


class LabeledOnly(nn.Module):
    """A label-based task loss over the labelled rows of a batch only.

    ``loss(output[m], target[m])`` with ``m = target >= 0``: rows labelled :data:`UNLABELED`
    (trials without a class, e.g. unlabelled target-session trials that train the
    reconstruction task only) take no part in the triplet or classification loss. A batch
    without any labelled row gives ``0`` with a zero gradient; a fully labelled batch is passed
    through unchanged (the same value as ``loss`` alone).

    Parameters
    ----------
    loss : nn.Module
        ``loss(output, target)`` with integer class targets, e.g.
        :class:`SemiHardTripletLoss` or :class:`ClassBalancedCrossEntropy` (its class weights
        stay those of the labelled training trials).
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        labels = _check_labels(target, output.shape[0]).to(output.device)
        keep = labels >= 0
        if bool(keep.all()):
            return self.loss(output, target)
        if not bool(keep.any()):
            return output.sum() * 0.0
        return self.loss(output[keep], labels[keep])
