"""GradNorm, Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from eegmtl.mtl.weightings.base import Weighting, check_losses

__all__ = ["GradNormWeighting"]


class GradNormWeighting(Weighting):
    r"""GradNorm, registry name ``"gradnorm"``.

    Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive
    Loss Balancing in Deep Multitask Networks", ICML 2018, Eqs. (1)-(2) and Algorithm 1.
    With learnable weights :math:`w_t`, unweighted per-task gradients :math:`g_t` on the
    shared parameters :math:`W`, :math:`G_t = \|w_t g_t\|_2`,
    :math:`\bar G = \frac1T\sum_t G_t`, :math:`\tilde L_t = L_t / L_t(0)` and the relative
    inverse training rate :math:`r_t = \tilde L_t / \frac1T\sum_i \tilde L_i`, the weights
    descend

    .. math:: L_{grad}(w) = \sum_t \big| G_t - \operatorname{sg}\big(\bar G\, r_t^{\alpha}\big)
              \big|_1

    (the target is a constant, as in the paper), and after every update they are
    renormalised so that :math:`\sum_t w_t = T`.

    Contract with the step (``needs_gradients = True``): :meth:`weights` receives the
    *unweighted* (T, P) matrix of per-task gradients on the shared parameters and the (T,)
    losses. It returns the weights for this step (the current ``w``; the model update uses
    them) and then performs one step of its own optimiser on ``w`` by the objective above,
    followed by the renormalisation -- so the weights and the network are updated
    simultaneously from the same point, as in Algorithm 1. Call it exactly once per training
    step. :math:`L_t(0)` are the losses of the first call.

    Which parameters :math:`W`: the paper uses the last shared layer (cheaper); LibMTL and
    this default use whatever the step passes, normally **all shared parameters**. Pass
    ``columns`` (a slice or index tensor over the P columns) to restrict the norms to a
    sub-block, e.g. the last shared layer's parameters.

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``T``.
    alpha : float, default 1.5
        Asymmetry :math:`\alpha` (paper: 1.5 for NYUv2; LibMTL default 1.5).
    lr : float, default 0.025
        Learning rate of the weights' own optimiser (our default, equal to Nash-MTL's
        ``method_params_lr``; the paper does not fix a separate value).
    optimizer : {"adam", "sgd"}, default "adam"
        The weights' own optimiser.
    columns : slice or Tensor, optional
        Columns of the gradient matrix to use (default: all).
    min_weight : float, default 1e-6
        Weights are clamped to at least this before renormalisation, to stay positive.

    Notes
    -----
    The weights multiply the losses, so heads see them (as in the paper). LibMTL
    parametrises ``w = T softmax(s)`` and starts after one epoch of EW with
    :math:`L(0)` = the epoch-0 mean loss; here ``w`` is the paper's direct parametrisation.
    :meth:`parameters` is empty: the trainer's optimiser must not touch ``w``.
    """

    name = "gradnorm"
    needs_gradients = True

    def __init__(
        self,
        n_tasks: int,
        alpha: float = 1.5,
        lr: float = 0.025,
        optimizer: str = "adam",
        columns: slice | Tensor | None = None,
        min_weight: float = 1e-6,
    ) -> None:
        super().__init__(n_tasks)
        if alpha < 0:
            raise ValueError(f"GradNorm alpha must be >= 0, got {alpha}.")
        if not lr > 0:
            raise ValueError(f"GradNorm lr must be > 0, got {lr}.")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"GradNorm optimizer must be 'adam' or 'sgd', got {optimizer!r}.")
        if not 0 < min_weight < 1:
            raise ValueError(f"min_weight must be in (0, 1), got {min_weight}.")
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.optimizer = optimizer
        self.columns = columns
        self.min_weight = float(min_weight)
        # a plain leaf tensor, not an nn.Parameter: GradNorm updates it with its own optimiser, so
        # it must not appear in parameters() (the trainer's optimiser)
        self._w = torch.ones(self.n_tasks, dtype=torch.float64).requires_grad_()
        opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        self._opt = opt_cls([self._w], lr=self.lr)
        self._initial_losses: Tensor | None = None
        self._last_grad_loss: float | None = None

    @property
    def initial_losses(self) -> Tensor | None:
        """The losses :math:`L_t(0)` of the first call (float64), or None."""
        return self._initial_losses

    @property
    def last_grad_loss(self) -> float | None:
        """Value of :math:`L_{grad}` at the last update, for logging."""
        return self._last_grad_loss

    @property
    def current_weights(self) -> Tensor:
        """The weights the next step will use (sum ``T``)."""
        return self._w.detach().float().clone()

    def weights(self, losses: Tensor, gradients: Tensor | None = None) -> Tensor:
        losses = check_losses(losses, self.n_tasks)
        if gradients is None:
            raise ValueError(
                "GradNorm needs the (T, P) matrix of unweighted per-task gradients on the "
                "shared parameters: call weights(losses, gradients)."
            )
        if not isinstance(gradients, Tensor) or gradients.ndim != 2:
            raise ValueError(
                "gradients must be a 2-D tensor of shape (n_tasks, n_params), got "
                f"{getattr(gradients, 'shape', type(gradients).__name__)}."
            )
        if gradients.shape[0] != self.n_tasks:
            raise ValueError(
                f"GradNorm was built for {self.n_tasks} tasks but the gradient matrix has "
                f"{gradients.shape[0]} rows."
            )
        if not torch.isfinite(gradients).all():
            raise ValueError("the gradient matrix contains NaN or Inf: a task has diverged.")
        out = self._w.detach().to(device=losses.device, dtype=losses.dtype).clone()

        l_now = losses.detach().double().cpu()
        if self._initial_losses is None:
            if (l_now <= 0).any():
                raise ValueError(
                    f"GradNorm divides by the initial losses, which must be > 0: {l_now.tolist()}."
                )
            self._initial_losses = l_now.clone()
        g = gradients.detach()
        if self.columns is not None:
            g = g[:, self.columns]
        norms = torch.linalg.vector_norm(g.double(), dim=1).cpu()  # ||g_t||, (T,)

        g_w = self._w * norms  # G_t = w_t ||g_t|| (w_t > 0)
        g_bar = g_w.mean().detach()
        ratio = l_now / self._initial_losses
        r = ratio / ratio.mean()
        target = g_bar * r.pow(self.alpha)
        grad_loss = (g_w - target).abs().sum()
        self._opt.zero_grad(set_to_none=True)
        grad_loss.backward()
        self._opt.step()
        with torch.no_grad():
            self._w.clamp_(min=self.min_weight)
            self._w.mul_(self.n_tasks / self._w.sum())
        self._last_grad_loss = float(grad_loss.detach())
        return out

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "w": self._w.detach().clone(),
            "initial_losses": None
            if self._initial_losses is None
            else self._initial_losses.clone(),
            "optimizer": self._opt.state_dict(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self._w.copy_(torch.as_tensor(state["w"], dtype=torch.float64))
        il = state.get("initial_losses")
        self._initial_losses = None if il is None else torch.as_tensor(il, dtype=torch.float64)
        self._opt.load_state_dict(state["optimizer"])
