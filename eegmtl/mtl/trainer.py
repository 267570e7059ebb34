"""The training loop: epochs, steps, validation pass and history; the rest is callbacks.

MixNet and the vision benchmarks use the same :class:`Trainer`, which composes the
:class:`~eegmtl.mtl.step.MTLStep` (weighting, aggregator, flat option) with an optimiser
(default Adam, lr 1e-3; :mod:`eegmtl.mtl.optim`), optionally ReduceLROnPlateau (MixNet's Keras
callback), a full validation pass per epoch (:mod:`eegmtl.mtl.evaluate`) and, with
``interleaved_validation=True``, MixNet's interleaved validation (one inference-mode val batch
after **every** training step, whose per-task losses go to ``weighting.after_step(train, val)``
for adaptive gradient blending); early stopping with best-weights restore; atomic checkpoints
every epoch and exact resume (:mod:`eegmtl.mtl.checkpoint`); per-step and per-epoch history
(:meth:`Trainer.history_frame`), tqdm progress, seeding and device selection. All but the loop
are :mod:`eegmtl.mtl.callbacks`, built from the arguments; more go in ``callbacks=``.

Monitor keys (epoch records): ``"val_loss"`` -- with interleaved validation the epoch mean of
the interleaved val-batch losses weighted by the loss weights in force at each step (MixNet's
original), otherwise the full-pass validation losses weighted by the current weights;
``"val_loss_unweighted"`` (sum of the full-pass task losses); ``"val_<task>_loss"``;
``"val_<task>_<metric>"``; ``"train_loss"``. ``mode=None`` picks ``"min"`` for keys ending in
``loss`` and ``"max"`` otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from eegmtl.mtl.aggregators import Aggregator
from eegmtl.mtl.callbacks import Callback, default_callbacks
from eegmtl.mtl.checkpoint import (
    load_trainer_state,
    resume_from,
    save_checkpoint,
    trainer_fingerprint,
    trainer_state,
)
from eegmtl.mtl.epoch import run_epoch
from eegmtl.mtl.evaluate import evaluate_tasks, predict_tasks
from eegmtl.mtl.flat import FlatConfig
from eegmtl.mtl.optim import make_optimizer, make_scheduler
from eegmtl.mtl.runtime import configure_runtime, seed_everything, select_device
from eegmtl.mtl.step import MTLStep, StepResult
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.weightings import Weighting

__all__ = ["Trainer"]

CHECKPOINT_NAME = "last.pt"


class Trainer:
    """Train a multi-task model with any weighting / aggregator / flat option.

    Parameters
    ----------
    model : nn.Module
        A :class:`~eegmtl.mtl.tasks.MultiTaskModel`.
    tasks : sequence of Task
    weighting, aggregator, flat, grad_level, weight_heads, gradient_mode, autocast
        Passed to :class:`~eegmtl.mtl.step.MTLStep` (defaults EW + Sum, no flat, float32);
        the flat variant is ``flat={"mode": ..., "every": ...}``.
    optimizer : {"adam", "sgd", "adamw"} or callable, default "adam"
        A name, or ``callable(params) -> Optimizer``. Gets the model's parameters and the
        weighting's learnable parameters.
    lr : float, default 1e-3
        Learning rate for named optimisers (MixNet: Adam 1e-3).
    weight_decay : float, default 0.0
    betas : (float, float) or None, default None
        Adam / AdamW moment decay rates (``None``: torch's (0.9, 0.999)).
    scheduler : "plateau", None or callable, default "plateau"
        ``"plateau"``: ReduceLROnPlateau(factor 0.5, patience 5, min_lr 1e-4, threshold 1e-4
        absolute) on the monitored key (MixNet); a callable ``callable(optimizer) -> scheduler``
        (stepped with the monitored value if it is a ReduceLROnPlateau, else without argument).
    max_epochs : int, default 200
    patience : int or None, default 20
        Early-stopping patience in epochs (``None`` disables early stopping).
    monitor : str, default "val_loss"
    mode : {"min", "max"} or None, default None
    min_delta : float, default 0.0
        Minimum improvement of the monitored key (Keras EarlyStopping/ModelCheckpoint: 0).
    restore_best : bool, default True
        Load the best epoch's weights at the end of :meth:`fit`.
    ema_decay : float or None, default None
        Validate, select and return an exponential moving average of the weights instead of
        the trained weights (:class:`~eegmtl.mtl.callbacks.WeightAveraging`; decay per step in
        (0, 1), e.g. 0.99 averages over about 100 steps). ``None``: the trained weights.
    interleaved_validation : bool, default False
        MixNet's interleaved validation batch after every step (needs a validation loader).
    interleaved_batch_size : int or None
        Override ``N_val // n_train_batches``.
    eval_forward_batch : int or None
        Forward pass of :meth:`evaluate` / :meth:`predict` in chunks of at most this many
        samples (losses still per loader batch; :mod:`eegmtl.mtl.evaluate`).
    checkpoint_dir : path or None
        Where ``last.pt`` is written atomically after every epoch.
    checkpoint_every_s : float or None, default None
        Write ``last.pt`` only once this many seconds have passed since the last write.
    progress : bool, default True
        tqdm bar over the epochs.
    seed : int or None, default None
        Seeds random, numpy and torch before building the step and before training.
    device : str, torch.device or None
        ``None``/"auto": CUDA when available, else CPU.
    log_steps : bool, default True
        Keep per-step records in the history.
    callbacks : sequence of Callback
        Extra :class:`~eegmtl.mtl.callbacks.Callback` objects, called after the interleaved
        validation and before model selection, so keys they add can be monitored.
    fingerprint : dict or None
        JSON-able facts about the run (e.g. a hash of the training data) added to the
        checkpoint's fingerprint (:func:`~eegmtl.mtl.checkpoint.trainer_fingerprint`);
        ``fit(resume=True)`` refuses a checkpoint whose fingerprint differs.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torch.nn import functional as F
    >>> from eegmtl.mtl.data import make_loader
    >>> from eegmtl.mtl.tasks import Task
    >>> from eegmtl.mtl.trainer import Trainer
    >>> class TwoHeads(nn.Module):  # the MultiTaskModel protocol
    ...     task_names = ("cls", "reg")
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.trunk, self.cls, self.reg = nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(8, 1)
    ...     def encode(self, x):
    ...         return torch.relu(self.trunk(x))
    ...     def decode(self, z):
    ...         return {"cls": self.cls(z), "reg": self.reg(z).squeeze(-1)}
    ...     def shared_parameters(self):
    ...         return self.trunk.parameters()
    ...     def task_parameters(self, task):
    ...         return getattr(self, task).parameters()
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(64, 4)
    >>> targets = {"cls": (x[:, 0] > 0).long(), "reg": x[:, 1]}
    >>> tasks = [Task("cls", F.cross_entropy), Task("reg", F.mse_loss, higher_is_better=False)]
    >>> trainer = Trainer(TwoHeads(), tasks, aggregator="pcgrad", max_epochs=3, progress=False,
    ...                   seed=0, device="cpu")
    >>> trainer = trainer.fit(make_loader((x, targets), 16), make_loader((x, targets), 32))
    >>> trainer.n_epochs_trained_
    3
    >>> sorted(c for c in trainer.history_frame("epoch").columns if c.startswith("weight_"))
    ['weight_cls', 'weight_reg']
    """

    def __init__(
        self,
        model: nn.Module,
        tasks: Sequence[Task],
        *,
        weighting: str | Weighting = "ew",
        aggregator: str | Aggregator = "sum",
        flat: FlatConfig | Mapping[str, Any] | bool | float | None = None,
        optimizer: str | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] | None = None,
        scheduler: str | Callable[[torch.optim.Optimizer], Any] | None = "plateau",
        max_epochs: int = 200,
        patience: int | None = 20,
        monitor: str = "val_loss",
        mode: str | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        ema_decay: float | None = None,
        interleaved_validation: bool = False,
        interleaved_batch_size: int | None = None,
        eval_forward_batch: int | None = None,
        grad_level: str = "auto",
        weight_heads: bool = False,
        gradient_mode: str = "auto",
        autocast: str | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every_s: float | None = None,
        progress: bool = True,
        seed: int | None = None,
        device: str | torch.device | None = None,
        log_steps: bool = True,
        callbacks: Sequence[Callback] = (),
        fingerprint: Mapping[str, Any] | None = None,
    ) -> None:
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}.")
        if patience is not None and int(patience) < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}.")
        if mode is None:
            mode = "min" if monitor.endswith("loss") else "max"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        self.max_epochs = int(max_epochs)
        self.patience = None if patience is None else int(patience)
        self.monitor = monitor
        self.mode = mode
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        if ema_decay is not None and not 0.0 < float(ema_decay) < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) (per step) or None, got {ema_decay}.")
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        if self.ema_decay is not None and interleaved_validation and monitor == "val_loss":
            warnings.warn(
                "ema_decay with interleaved_validation and monitor='val_loss': that val_loss is "
                "measured on the trained weights between the steps, so the epochs would be "
                "chosen on the trained weights and the averaged ones returned. Monitor a "
                "full-pass key (e.g. 'val_<task>_loss') to choose on the average.",
                UserWarning, stacklevel=2)
        self.interleaved_validation = bool(interleaved_validation)
        self.interleaved_batch_size = interleaved_batch_size
        self.eval_forward_batch = eval_forward_batch
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every_s = checkpoint_every_s
        self.progress = bool(progress)
        self.seed = seed
        self.log_steps = bool(log_steps)
        self.device = select_device(device)
        self.extra_callbacks = list(callbacks)
        self.fingerprint = None if fingerprint is None else dict(fingerprint)
        self.callbacks: list[Callback] = []
        self.step_context: dict[str, Any] = {}
        self.last_result: StepResult | None = None

        seed_everything(seed)
        self.model = model.to(self.device)
        self.tasks = list(tasks)
        # build the step without optimiser first to get the weighting's parameters
        step = MTLStep(
            self.model, self.tasks, weighting, aggregator, None, grad_level=grad_level,
            weight_heads=weight_heads, flat=flat, gradient_mode=gradient_mode,
            autocast=autocast,
        )
        for p in step.weighting.parameters():
            p.data = p.data.to(self.device)
        params = list(self.model.parameters()) + list(step.weighting.parameters())
        self.optimizer = make_optimizer(optimizer, params, lr, weight_decay, betas)
        step.optimizer = self.optimizer
        self.step = step
        self.scheduler = make_scheduler(scheduler, self.optimizer, self.mode)
        self._reset_state()

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self.history: dict[str, list[dict[str, Any]]] = {"steps": [], "epochs": []}
        self.epoch_ = self.global_step_ = self.wait_ = 0
        self.best_score_: float | None = None
        self.best_epoch_: int | None = None
        self.best_state_: dict[str, Tensor] | None = None
        self.best_weights_: list[float] | None = None
        self.stopped_ = False

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def weighting(self) -> Weighting:
        return self.step.weighting

    @property
    def aggregator(self) -> Aggregator:
        return self.step.aggregator

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (:func:`eegmtl.mtl.checkpoint.trainer_state`)."""
        return trainer_state(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (callback states are applied at the next :meth:`fit`)."""
        load_trainer_state(self, state, self._checkpoint_path())

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write the training state atomically (default ``checkpoint_dir/last.pt``)."""
        path = Path(path) if path is not None else self._checkpoint_path()
        if path is None:
            raise ValueError("no checkpoint path: give one or set checkpoint_dir.")
        return save_checkpoint(self.state_dict(), path)

    # ------------------------------------------------------------------ evaluation
    def predict(self, loader: Iterable[Any]) -> dict[str, Tensor]:
        """Concatenated outputs per task (eval mode, inference mode, on the CPU)."""
        return predict_tasks(self.model, loader, self.task_names, self.device,
                             forward_batch_size=self.eval_forward_batch)

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Per-task losses (batch-size weighted means), their sum and the task metrics.

        Keys: ``"<task>_loss"``, ``"loss"`` (unweighted sum over tasks) and
        ``"<task>_<metric>"`` (metrics computed on the concatenated outputs); callbacks may add
        keys (``on_evaluate``).
        """
        result = evaluate_tasks(self.model, loader, self.tasks, self.device,
                                forward_batch_size=self.eval_forward_batch)
        for cb in self.callbacks:
            cb.on_evaluate(self, result)
        return result

    # ------------------------------------------------------------------ training
    def improved(self, value: float) -> bool:
        """Whether ``value`` of the monitored key beats ``best_score_`` by ``min_delta``."""
        if self.best_score_ is None:
            return True
        if self.mode == "min":
            return value < self.best_score_ - self.min_delta
        return value > self.best_score_ + self.min_delta

    def fit(
        self,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None = None,
        *,
        resume: bool = False,
    ) -> Trainer:
        """Train; returns ``self``.

        Parameters
        ----------
        train_loader : iterable of (x, {task: target})
            Must have ``len``. ``set_epoch(epoch)`` is called when present (seeded reshuffling,
            exact resume).
        val_loader : iterable or None
            Full validation pass every epoch (and interleaved batches if enabled).
        resume : bool, default False
            Continue from ``checkpoint_dir/last.pt`` when it exists (model, optimiser,
            scheduler, weighting/aggregator state, RNG states, history, early-stopping state).

        Raises
        ------
        CheckpointMismatchError, CorruptCheckpointError
            ``resume=True`` with a checkpoint of another run (model, method, settings, batches,
            ``fingerprint``) or an unreadable one (:mod:`eegmtl.mtl.checkpoint`).
        """
        if len(train_loader) == 0:  # type: ignore[arg-type]
            raise ValueError("the training loader is empty.")
        monitor_needs_val = self.monitor.startswith("val")
        if val_loader is None and (monitor_needs_val or self.interleaved_validation):
            if self.interleaved_validation:
                raise ValueError(
                    "interleaved_validation=True needs a val_loader (MixNet validates on one "
                    "batch after every step)."
                )
            warnings.warn(f"no val_loader: monitoring 'train_loss' instead of {self.monitor!r}.",
                          UserWarning, stacklevel=2)
            self.monitor, self.mode = "train_loss", "min"
        ckpt = self._checkpoint_path()
        self.callbacks = default_callbacks(
            interleaved=self.interleaved_validation, interleaved_batch_size=(
                self.interleaved_batch_size), seed=self.seed, patience=self.patience,
            progress=self.progress, checkpoint_path=ckpt, extra=self.extra_callbacks,
            ema_decay=self.ema_decay, checkpoint_every_s=self.checkpoint_every_s,
        )
        self._callback_states = []
        self.fingerprint_ = trainer_fingerprint(self, train_loader, self.fingerprint)
        self.runtime_ = configure_runtime(self.device, train_loader, val_loader)  # cuDNN, pinning
        if not (resume and resume_from(self, ckpt)):
            if not resume:
                self._reset_state()
            seed_everything(self.seed)
        #: epochs restored from the checkpoint (0 for a fresh fit); their records, wall times
        #: included, are the first ``resumed_epochs_`` entries of ``history["epochs"]``
        self.resumed_epochs_ = int(self.epoch_)
        #: their training time in seconds (the sum of those records' ``time``)
        self.resumed_seconds_ = float(sum(
            r.get("time", 0.0) for r in self.history["epochs"][:self.resumed_epochs_]))
        for cb, state in zip(self.callbacks, self._callback_states):
            cb.load_state_dict(state)

        self.fit_completed_ = False
        for cb in self.callbacks:
            cb.on_fit_begin(self, train_loader, val_loader)
        try:
            while self.epoch_ < self.max_epochs and not self.stopped_:
                epoch = self.epoch_
                self._run_epoch(epoch, train_loader, val_loader)
                self.epoch_ += 1
                for cb in self.callbacks:
                    cb.on_epoch_saved(self, epoch)
            self.fit_completed_ = True
        finally:
            for cb in self.callbacks:
                cb.on_fit_end(self)
        self.n_epochs_trained_ = self.epoch_
        return self

    def _run_epoch(self, epoch: int, train_loader: Any, val_loader: Any) -> None:
        run_epoch(self, epoch, train_loader, val_loader)

    # ------------------------------------------------------------------ history
    def history_frame(self, level: str = "epoch"):
        """History as a pandas DataFrame: ``level="epoch"`` (default) or ``"step"``."""
        import pandas as pd

        if level not in ("epoch", "step"):
            raise ValueError(f"level must be 'epoch' or 'step', got {level!r}.")
        return pd.DataFrame(self.history["epochs" if level == "epoch" else "steps"])

