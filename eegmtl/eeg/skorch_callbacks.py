"""skorch callbacks of the deep baselines' one training path (``braindecode.EEGClassifier``).

Imports skorch: import this module only where braindecode is installed
(:func:`eegmtl._compat.import_braindecode`).
"""

from __future__ import annotations

from typing import Any

from skorch.callbacks import Callback

__all__ = ["CudnnAutotune"]


class CudnnAutotune(Callback):
    """cuDNN's autotuner on at the start of a CUDA fit, as the MTL trainer does
    (:func:`eegmtl.mtl.runtime.autotune_convolutions`: not under deterministic algorithms;
    nothing on the CPU). A skorch fit sees few batch shapes: its training batches have one
    (``drop_last``), its validation and prediction batches at most two more."""

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        from eegmtl.mtl.runtime import autotune_convolutions

        autotune_convolutions(net.device)
