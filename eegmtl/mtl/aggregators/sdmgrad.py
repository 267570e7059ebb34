"""SDMGrad: stochastic direction-oriented multi-objective gradient, single-batch form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eegmtl.mtl.aggregators._utils import (
    as_pref,
    check_nonnegative,
    check_positive_int,
    check_task_count,
    combine,
    gramian,
)
from eegmtl.mtl.aggregators.base import Aggregation, Aggregator
from eegmtl.mtl.aggregators.modo import _state_or_uniform, load_vector, project_to_simplex

__all__ = ["SDMGrad"]


class SDMGrad(Aggregator):
    r"""SDMGrad (Xiao, Ban & Ji, *Direction-oriented Multi-objective Learning: Simple and
    Provable Stochastic Algorithms*, NeurIPS 2023, Algorithm 1, Eq. 6-8).

    The update stays close to a target direction :math:`g_0 = G^\top\tilde w` (default: the mean
    gradient, :math:`\tilde w = 1/T`) while maximising the worst-task improvement. The weights
    :math:`w \in \Delta` minimise :math:`\tfrac12\|G^\top(w + \lambda\tilde w)\|^2` by
    ``n_iter`` steps of projected SGD with momentum (step ``lr``, momentum ``momentum``, the
    velocity restarted at every call, :math:`w` warm-started from the previous call), on the
    Gramian divided by :math:`s^2`, :math:`s = \mathrm{mean}_t \sqrt{(GG^\top)_{tt}}` (+1e-8,
    makes ``lr`` scale free; paper §6.1):

    .. math::
        w \leftarrow \Pi_\Delta\bigl(w - \mathrm{lr}\,v\bigr),\quad
        v \leftarrow \mathrm{momentum}\,v + \tfrac{GG^\top}{s^2}(w + \lambda\tilde w),
        \qquad d = G^\top\,\frac{w + \lambda\tilde w}{1 + \lambda}.

    Defaults ``lambda_ = 0.3``, ``n_iter = 20``, ``momentum = 0.5``, ``lr = 10`` (the official
    experiments and TorchJD's ``SDMGradWeighting``; the official class default is
    ``lambda_ = 0.6``; LibMTL 1.1.5 uses ``lr = 5``). Computed from the T x T Gramian only;
    touches the shared parameters only. ``weights`` are :math:`(w+\lambda\tilde w)/(1+\lambda)`
    (``vector == weights @ G``).

    Deviation (single batch): the paper's stochastic algorithm draws three independent
    mini-batches per step (:math:`\xi, \xi'` give the unbiased product
    :math:`\nabla L_\xi \nabla L_{\xi'}^\top` for the weight solve, :math:`\zeta` the update;
    LibMTL and the official code do so). As a pure function of one batch's (T, P) matrix, the
    batch's own Gramian is used for both, i.e. TorchJD's ``SDMGradWeighting`` applied to
    :math:`J J^\top` (biased; the paper's guarantee needs the independent draws).

    Stateful: ``reset()``; ``state_dict()``/``load_state_dict()`` (torch, through
    ``get_extra_state()``/``set_extra_state()``) save/restore the warm-start weights :math:`w`.
    In flat (F-) steps the aggregator is called twice per step.

    Parameters
    ----------
    lambda_
        Pull towards the target direction (>= 0, default 0.3); 0 gives a stochastic MGDA.
    lr, momentum, n_iter
        Inner projected-SGD step size (> 0, default 10), momentum in [0, 1) (0.5) and
        iterations per call (20).
    pref
        Target weights :math:`\tilde w` (default ``1/T`` each: the mean gradient).
    n_tasks
        Expected number of tasks (``None``: fixed by the first matrix).
    """

    name = "sdmgrad"
    linear = False
    level = "parameters"

    def __init__(
        self,
        lambda_: float = 0.3,
        lr: float = 10.0,
        momentum: float = 0.5,
        n_iter: int = 20,
        pref: Tensor | Sequence[float] | None = None,
        n_tasks: int | None = None,
    ) -> None:
        super().__init__()
        self.lambda_ = check_nonnegative("lambda_", lambda_)
        self.lr = check_nonnegative("lr", lr)
        if self.lr == 0.0:
            raise ValueError("lr must be positive (the inner step size of the task weights).")
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}.")
        self.momentum = float(momentum)
        self.n_iter = check_positive_int("n_iter", n_iter)
        self.pref = pref
        self.n_tasks = n_tasks
        self._w: np.ndarray | None = None

    def reset(self) -> None:
        self._w = None

    def get_extra_state(self) -> dict[str, Any]:
        return {"w": None if self._w is None else torch.tensor(self._w)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._w = load_vector(state, "w")

    def _aggregate(self, matrix: Tensor) -> Aggregation:
        t_count = matrix.shape[0]
        check_task_count(matrix, self.n_tasks)
        w = _state_or_uniform(self._w, t_count, "SDMGrad")
        target = as_pref(self.pref, t_count, 1.0 / t_count)
        g = gramian(matrix)
        scale = float(np.sqrt(np.clip(np.diag(g), 0.0, None)).mean())
        a = g / (scale**2 + 1e-8)
        velocity = np.zeros(t_count)
        for i in range(self.n_iter):
            grad = a @ (w + self.lambda_ * target)
            velocity = grad if i == 0 else self.momentum * velocity + grad
            w = project_to_simplex(w - self.lr * velocity)
        self._w = w
        return combine((w + self.lambda_ * target) / (1.0 + self.lambda_), matrix)
