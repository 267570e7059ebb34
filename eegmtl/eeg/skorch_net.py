"""The skorch net of the deep baselines' one training path: ``braindecode.EEGClassifier`` that
lets an interruption through.

skorch's ``partial_fit`` ends training silently on :class:`KeyboardInterrupt`, because that is
how its ``EarlyStopping`` callback stops a fit. A Ctrl-C (or SIGTERM turned into an exception)
during a fit in the calling process would therefore end that fit early, and the caller would
score and record the unfinished network as a finished fit, then go on with the next one.
:class:`InterruptibleEEGClassifier` tells the two apart (early stopping raises only when its
``misses_`` reach ``patience``) and raises the interruption again once skorch's train-end hooks
have run. Imports braindecode: import this module only where it is installed
(:func:`eegmtl._compat.import_braindecode`).
"""

from __future__ import annotations

from typing import Any

from braindecode import EEGClassifier
from skorch.callbacks import EarlyStopping

__all__ = ["InterruptibleEEGClassifier", "stopped_early"]


def stopped_early(net: Any) -> bool:
    """Whether an ``EarlyStopping`` callback of ``net`` has just ended its training (its
    ``misses_`` reached its ``patience``, the one case in which it raises)."""
    return any(isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience
               for _, cb in getattr(net, "callbacks_", []))


class InterruptibleEEGClassifier(EEGClassifier):
    """``braindecode.EEGClassifier`` whose ``fit`` / ``partial_fit`` re-raise an interruption.

    Same parameters and behaviour as ``EEGClassifier``, except that a :class:`KeyboardInterrupt`
    that does not come from early stopping (Ctrl-C, or a SIGTERM handler raising a subclass of
    it) propagates to the caller, the same exception object, after the train-end callbacks.
    """

    def fit_loop(self, X: Any, y: Any = None, epochs: int | None = None,
                 **fit_params: Any) -> Any:
        """skorch's training loop, noting an interruption that skorch would swallow."""
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as err:
            if not stopped_early(self):
                self.interrupted_ = err
            raise

    def partial_fit(self, X: Any, y: Any = None, classes: Any = None,
                    **fit_params: Any) -> Any:
        """skorch's ``partial_fit``; raises the interruption noted by :meth:`fit_loop`."""
        self.interrupted_: KeyboardInterrupt | None = None
        super().partial_fit(X, y, classes=classes, **fit_params)
        if self.interrupted_ is not None:
            err, self.interrupted_ = self.interrupted_, None
            raise err
        return self
