"""Evaluation metrics for multi-task learning.

- Relative multi-task performance: :func:`delta_p` (LibMTL / RLW, improvement over a base
  method, higher is better), :func:`delta_m` and :func:`delta_m_task` (Maninis et al. 2019,
  Vandenhende et al. 2021; drop relative to single-task learning, lower is better).
- Calibration of predicted class probabilities: :func:`brier_score`,
  :func:`expected_calibration_error`, :func:`predictive_entropy`.
- Gradient diagnostics of a (T, P) per-task gradient matrix: :func:`pairwise_cosine`,
  :func:`gradient_conflict` / :func:`conflict_rate`, :class:`ConflictCounter`,
  :func:`gradient_magnitude_similarity`, :func:`condition_number`.

All functions accept numpy arrays, torch tensors (any device; detached) or nested sequences
and return Python floats or numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import entr

__all__ = [
    "ConflictCounter",
    "brier_score",
    "condition_number",
    "conflict_rate",
    "delta_m",
    "delta_m_task",
    "delta_p",
    "expected_calibration_error",
    "gradient_conflict",
    "gradient_magnitude_similarity",
    "pairwise_cosine",
    "predictive_entropy",
]

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any] | float
#: Per-task metric values: a mapping task -> value(s), or a flat sequence (one metric each).
TaskMetrics = Mapping[str, Any] | ArrayLike
#: Directions: same structure as the metrics, or one bool per task / for all.
Directions = Mapping[str, Any] | ArrayLike | bool


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric (array, tensor or sequence): {err}") from err
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf.")


# ----------------------------------------------------------------------------- relative perf.
def _per_task_relative(
    metrics: TaskMetrics, reference: TaskMetrics, higher_is_better: Directions
) -> list[np.ndarray]:
    """Signed relative changes (improvement > 0), grouped per task."""
    if isinstance(metrics, Mapping) != isinstance(reference, Mapping):
        raise TypeError("metrics and the reference must both be mappings or both be arrays.")
    if isinstance(metrics, Mapping):
        assert isinstance(reference, Mapping)
        if set(metrics) != set(reference):
            raise ValueError(
                f"metrics and reference have different tasks: {sorted(metrics)} vs "
                f"{sorted(reference)}."
            )
        tasks = list(reference)
        vals = [np.atleast_1d(_to_numpy(metrics[t], f"metrics[{t!r}]")) for t in tasks]
        refs = [np.atleast_1d(_to_numpy(reference[t], f"reference[{t!r}]")) for t in tasks]
        if isinstance(higher_is_better, Mapping):
            if set(higher_is_better) != set(reference):
                raise ValueError("higher_is_better must have the same tasks as the metrics.")
            dirs = []
            for t, r in zip(tasks, refs, strict=True):
                d_t = np.atleast_1d(np.asarray(higher_is_better[t], dtype=bool))
                dirs.append(np.broadcast_to(d_t, r.shape) if d_t.size == 1 else d_t)
        elif isinstance(higher_is_better, (bool, np.bool_)):
            dirs = [np.full(r.shape, bool(higher_is_better)) for r in refs]
        else:
            d = np.asarray(higher_is_better, dtype=bool)
            if d.shape != (len(tasks),):
                raise ValueError(
                    "with mappings, higher_is_better must be a mapping, a bool, or one bool "
                    f"per task ({len(tasks)}), got shape {d.shape}."
                )
            dirs = [np.full(r.shape, bool(di)) for r, di in zip(refs, d, strict=True)]
    else:
        v = np.atleast_1d(_to_numpy(metrics, "metrics"))
        r = np.atleast_1d(_to_numpy(reference, "reference"))
        if v.ndim != 1 or v.shape != r.shape:
            raise ValueError(
                f"metrics and reference must be 1-D of equal length, got {v.shape} and {r.shape}."
            )
        d = np.broadcast_to(np.asarray(higher_is_better, dtype=bool), v.shape)
        vals, refs, dirs = (
            [v[[i]] for i in range(v.size)],
            [r[[i]] for i in range(r.size)],
            [d[[i]] for i in range(d.size)],
        )
    if not vals:
        raise ValueError("no metrics given.")
    out = []
    for i, (v, r, d) in enumerate(zip(vals, refs, dirs, strict=True)):
        if v.shape != r.shape or v.shape != d.shape:
            raise ValueError(
                f"task {i}: metric, reference and direction shapes differ: {v.shape}, "
                f"{r.shape}, {d.shape}."
            )
        _check_finite(v, "metrics")
        _check_finite(r, "reference")
        if (r == 0).any():
            raise ValueError("a reference metric is 0: the relative change is undefined.")
        sign = np.where(d, 1.0, -1.0)
        out.append(sign * (v - r) / np.abs(r))
    return out


def delta_p(metrics: TaskMetrics, base_metrics: TaskMetrics, higher_is_better: Directions) -> float:
    r"""Mean relative improvement over a base method, in %, higher is better.

    LibMTL (``utils.count_improvement``) and Lin et al., RLW, TMLR 2022, Eq. (9):

    .. math:: \Delta_p = \frac{100}{T}\sum_{t=1}^T \frac{1}{N_t}\sum_{i=1}^{N_t}
              (-1)^{p_{t,i}} \frac{M_{t,i} - M^{base}_{t,i}}{M^{base}_{t,i}},

    with :math:`p_{t,i} = 1` when lower is better. Averaged per task first, then over tasks.

    Parameters
    ----------
    metrics, base_metrics : mapping task -> value or sequence of values, or 1-D array
        With mappings, each task may have several metrics (averaged within the task). A flat
        array counts each entry as its own task.
    higher_is_better : mapping, sequence or bool
        Direction per metric (same structure as ``metrics``), per task, or for all.

    Examples
    --------
    >>> from eegmtl.mtl.metrics import delta_p
    >>> # task accuracies of a method and of equal weighting (the base); both higher-is-better
    >>> delta_p({"left": 0.92, "right": 0.88}, {"left": 0.90, "right": 0.90}, True)
    0.0
    >>> round(delta_p({"left": 0.95, "right": 0.90}, {"left": 0.90, "right": 0.90}, True), 4)
    2.7778
    >>> # mixed directions: accuracy up 10 %, error down 20 % -> (10 + 20) / 2
    >>> round(delta_p({"acc": 0.88, "err": 0.4}, {"acc": 0.8, "err": 0.5},
    ...               {"acc": True, "err": False}), 4)
    15.0
    """
    rel = _per_task_relative(metrics, base_metrics, higher_is_better)
    return float(100.0 * np.mean([r.mean() for r in rel]))


def delta_m(metrics: TaskMetrics, stl_metrics: TaskMetrics, higher_is_better: Directions) -> float:
    r"""Multi-task performance drop vs single-task learning, in %, **lower is better**.

    Maninis, Radosavovic & Kokkinos, CVPR 2019; Vandenhende et al., TPAMI 2021:

    .. math:: \Delta_m = \frac{100}{K}\sum_{i=1}^K (-1)^{l_i}
              \frac{M_{m,i} - M_{b,i}}{M_{b,i}},

    :math:`l_i = 1` when higher is better, averaged over **all K metrics** (metric-weighted:
    a task with many metrics counts more; see :func:`delta_m_task`). Negative = better than
    single-task. Same inputs as :func:`delta_p`.
    """
    rel = _per_task_relative(metrics, stl_metrics, higher_is_better)
    return float(-100.0 * np.concatenate(rel).mean())


def delta_m_task(
    metrics: TaskMetrics, stl_metrics: TaskMetrics, higher_is_better: Directions
) -> float:
    r"""Task-averaged :math:`\Delta_m` (Senushkin et al., Aligned-MTL, CVPR 2023, §6).

    The relative drop is averaged within each task first, then over tasks, so every task
    counts equally: :math:`\Delta m_{task} = -\Delta_p` with the STL model as the base.
    Lower is better. Same inputs as :func:`delta_p`.
    """
    return -delta_p(metrics, stl_metrics, higher_is_better)


# ----------------------------------------------------------------------------- calibration
def _check_probs(probs: ArrayLike, y: ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None]:
    p = _to_numpy(probs, "probs")
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(
            "probs must be (n_samples, n_classes) with n_classes >= 2, or (n_samples,) "
            f"positive-class probabilities; got shape {p.shape}."
        )
    _check_finite(p, "probs")
    if (p < -1e-6).any() or (p > 1 + 1e-6).any():
        raise ValueError("probs must lie in [0, 1]; pass softmax outputs, not logits.")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("each row of probs must sum to 1 (softmax outputs).")
    if y is None:
        return p, None
    yy = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if yy.ndim != 1 or yy.shape[0] != p.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per row of probs ({p.shape[0]}), got {yy.shape}."
        )
    if not np.issubdtype(yy.dtype, np.integer):
        if not np.all(np.mod(yy, 1) == 0):
            raise ValueError("y must hold integer class indices.")
        yy = yy.astype(np.int64)
    if (yy < 0).any() or (yy >= p.shape[1]).any():
        raise ValueError(f"class indices in y must be in [0, {p.shape[1] - 1}].")
    return p, yy


def brier_score(probs: ArrayLike, y: ArrayLike) -> float:
    r"""Multi-class Brier score (Brier, 1950), lower is better.

    :math:`\frac1N\sum_n\sum_c (p_{nc} - [y_n = c])^2`, in [0, 2]. For a 1-D ``probs`` of
    positive-class probabilities the binary form :math:`\frac1N\sum_n (p_n - y_n)^2` (as
    ``sklearn.metrics.brier_score_loss``; half the two-class sum) is returned.
    """
    binary = _to_numpy(probs, "probs").ndim == 1
    p, yy = _check_probs(probs, y)
    assert yy is not None
    onehot = np.eye(p.shape[1])[yy]
    per_sample = ((p - onehot) ** 2).sum(axis=1)
    return float(per_sample.mean() / (2.0 if binary else 1.0))


def expected_calibration_error(probs: ArrayLike, y: ArrayLike, n_bins: int = 15) -> float:
    r"""Expected calibration error (Naeini et al. 2015; Guo et al., ICML 2017, Eq. 3).

    Top-label confidence :math:`\hat p_n = \max_c p_{nc}`, binned into ``n_bins`` equal-width
    bins :math:`(\frac{b-1}{B}, \frac{b}{B}]`:
    :math:`\mathrm{ECE} = \sum_b \frac{|B_b|}{N} |\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|`.
    Returned as a fraction in [0, 1]. Ties in the arg-max go to the lowest class index.
    """
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    p, yy = _check_probs(probs, y)
    assert yy is not None
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == yy).astype(np.float64)
    # bin b holds conf in ((b-1)/B, b/B]; conf == 0 cannot occur with n_classes >= 2
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    n = conf.shape[0]
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.sum() / n * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def predictive_entropy(probs: ArrayLike, reduction: str = "mean") -> float | np.ndarray:
    r"""Entropy of the predictive distribution, :math:`-\sum_c p_c \log p_c` (nats).

    ``reduction="mean"`` (default) returns the mean over samples; ``"none"`` the (N,) array.
    :math:`0 \log 0 = 0`.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    p, _ = _check_probs(probs, None)
    h = entr(np.clip(p, 0.0, 1.0)).sum(axis=1)
    return float(h.mean()) if reduction == "mean" else h


# ----------------------------------------------------------------------------- gradients
def _check_grad_matrix(matrix: ArrayLike) -> np.ndarray:
    g = _to_numpy(matrix, "the gradient matrix")
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(
            f"expected a (n_tasks, n_params) gradient matrix, got shape {g.shape}; stack one "
            "flattened gradient per task as a row."
        )
    _check_finite(g, "the gradient matrix")
    return g


def pairwise_cosine(matrix: ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """(T, T) cosine similarities of the rows; a zero row has cosine 0 with every row."""
    g = _check_grad_matrix(matrix)
    norms = np.linalg.norm(g, axis=1)
    safe = np.where(norms > eps, norms, 1.0)
    u = g / safe[:, None]
    cos = u @ u.T
    zero = norms <= eps
    cos[zero, :] = 0.0
    cos[:, zero] = 0.0
    return np.clip(cos, -1.0, 1.0)


def gradient_conflict(matrix: ArrayLike) -> float:
    """Fraction of task pairs ``i < j`` whose gradients conflict (negative cosine).

    Yu et al., "Gradient Surgery for Multi-Task Learning" (PCGrad), NeurIPS 2020, Def. 1.
    Needs at least 2 tasks.
    """
    cos = pairwise_cosine(matrix)
    t = cos.shape[0]
    if t < 2:
        raise ValueError("gradient conflict needs at least 2 tasks (rows).")
    iu = np.triu_indices(t, k=1)
    return float((cos[iu] < 0).mean())


def conflict_rate(matrix: ArrayLike) -> float:
    """Alias of :func:`gradient_conflict` (fraction of conflicting task pairs)."""
    return gradient_conflict(matrix)


class ConflictCounter:
    """Running fraction of conflicting mini-batches (Phan et al., F-MTL, ICCV 2025, Fig. 3).

    A mini-batch conflicts when at least one pair of task gradients has a negative cosine.
    Call :meth:`update` with each step's (T, P) matrix; :attr:`rate` is the fraction so far.
    """

    def __init__(self) -> None:
        self.n_batches = 0
        self.n_conflicting = 0

    def update(self, matrix: ArrayLike) -> bool:
        """Record one mini-batch; return whether it conflicts."""
        conflicting = gradient_conflict(matrix) > 0
        self.n_batches += 1
        self.n_conflicting += int(conflicting)
        return conflicting

    @property
    def rate(self) -> float:
        """Fraction of conflicting mini-batches (NaN before the first update)."""
        return self.n_conflicting / self.n_batches if self.n_batches else float("nan")

    def reset(self) -> None:
        self.n_batches = 0
        self.n_conflicting = 0


def gradient_magnitude_similarity(matrix: ArrayLike) -> np.ndarray:
    r"""(T, T) gradient magnitude similarity :math:`2\|g_i\|\|g_j\| / (\|g_i\|^2+\|g_j\|^2)`.

    Yu et al., NeurIPS 2020 (PCGrad), Def. 2; 1 for equal norms, → 0 for very different
    norms; defined as 1 when both gradients are zero.
    """
    g = _check_grad_matrix(matrix)
    n = np.linalg.norm(g, axis=1)
    num = 2.0 * np.outer(n, n)
    den = n[:, None] ** 2 + n[None, :] ** 2
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def condition_number(matrix: ArrayLike) -> float:
    r"""Condition number :math:`\kappa = \sigma_{max} / \sigma_{min}` of the gradient matrix.

    As Senushkin et al.'s Aligned-MTL diagnostics (CVPR 2023, §4; ``mtl_metrics.py``):
    :math:`\sigma_{min}` is the smallest **non-zero** singular value (those above
    ``σ_max · max(T, P) · eps``), so a rank-deficient matrix is not infinitely ill
    conditioned. Returns NaN for an all-zero matrix.
    """
    g = _check_grad_matrix(matrix)
    s = np.linalg.svd(g, compute_uv=False)
    if s.size == 0 or s[0] == 0.0:
        return float("nan")
    tol = s[0] * max(g.shape) * np.finfo(np.float64).eps
    nz = s[s > tol]
    return float(nz[0] / nz[-1])
