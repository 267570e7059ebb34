"""MixNet's input features as one scikit-learn transformer: epochs in, network input out.

:class:`MixNetFeatures` chains the steps of MixNet's preprocessing (Autthasan et al., "MixNet:
Joining Force of Classical and Modern Approaches Toward the Comprehensive Pipeline in Motor
Imagery EEG Classification", IEEE IoT J. 11(17), 2024, Sec. III-A; official code
``mixnet/preprocessing/BCIC2b``) as a :class:`sklearn.pipeline.Pipeline` built at ``fit``:

1. scale to microvolts (``scale``) and window 0-4 s after the cue
   (:class:`~eegmtl.eeg.preprocessing.TimeWindow`),
2. FFT resampling to 100 Hz (:class:`~eegmtl.eeg.preprocessing.Resampler`),
3. 9-band Butterworth filter bank 4-40 Hz, order 5, zero-phase, designed once at ``fit``
   (:class:`~eegmtl.eeg.preprocessing.FilterBank`),
4. per-band CSP with ``U`` filters, fitted on the ``fit`` trials only
   (:class:`~eegmtl.eeg.filterbank.FilterBankCSP`) -> ``(n, N_f * U, 400)`` "spectral-spatial
   signals" in float32, the input of :class:`~eegmtl.models.mixnet.MixNet`.

``input="time"`` replaces step 4 by stacking the bands (MIN2Net's time-domain input, one
8-30 Hz band by default): ``(n, N_f * C, 400)``. Where these steps differ from the original code
is documented in :mod:`eegmtl.eeg.preprocessing` and :mod:`eegmtl.eeg.filterbank`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from eegmtl.eeg.filterbank import FilterBankCSP
from eegmtl.eeg.filters import parse_bands
from eegmtl.eeg.preprocessing import (
    MIXNET_BANDS,
    EpochStandardizer,
    FilterBank,
    Resampler,
    TimeWindow,
    standardize_mode,
)

__all__ = ["TIME_DOMAIN_BAND", "MixNetFeatures"]

#: MIN2Net's single time-domain band in Hz (reference code, ``input="time"``).
TIME_DOMAIN_BAND: tuple[tuple[float, float], ...] = ((8.0, 30.0),)


def _stack_bands(X: np.ndarray) -> np.ndarray:
    """``(n, N_f, C, T)`` -> ``(n, N_f * C, T)`` (band-major)."""
    return X.reshape(X.shape[0], -1, X.shape[-1])


class MixNetFeatures(TransformerMixin, BaseEstimator):
    """Window -> resample -> filter bank -> filter-bank CSP, as one transformer.

    Parameters
    ----------
    sfreq : float, default 250
        Sampling rate of the input epochs in Hz.
    tmin, tmax : float, default 0, 4
        Window ``[tmin, tmax)`` in seconds relative to the cue.
    epoch_tmin : float, default 0
        Time of the first input sample relative to the cue.
    sfreq_model : float, default 100
        Rate the window is resampled to.
    bands : sequence of (low, high), str or None
        Filter-bank bands in Hz, or their text form ``"LO-HI/WIDTH"``
        (:func:`eegmtl.eeg.filters.parse_bands`, e.g. ``"4-28/4"``); ``None``: MixNet's 9 bands
        (``input="fbcsp"``) or 8-30 Hz (``input="time"``).
    filter_order : int, default 5
        Butterworth order.
    n_components : int, default 2
        CSP filters per band ``U``.
    input : {"fbcsp", "time"}, default "fbcsp"
        CSP spectral-spatial signals (binary labels) or the stacked band-passed channels.
    scale : float, default 1.0
        Factor applied to the input first (1e6 turns volts into microvolts).
    standardize : bool or {"all", "channel", "channel_time"}, default False
        Append a z-score with statistics of the ``fit`` trials (``True`` = ``"all"``: one mean
        and SD over all values; :class:`~eegmtl.eeg.preprocessing.EpochStandardizer`, the
        input scaling of the recipes that standardise), applied unchanged at ``transform``.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted steps ``window``, ``resample``, ``filterbank``, ``csp`` (or ``stack``) and,
        with ``standardize``, ``standardize``.
    csp_ : FilterBankCSP or None
        The CSP step (``None`` for ``input="time"``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 3, 1000))  # 4 s at 250 Hz
    >>> y = np.repeat([0, 1], 10)
    >>> MixNetFeatures().fit_transform(X, y).shape  # 9 bands x 2 CSP filters, 400 samples
    (20, 18, 400)
    """

    def __init__(
        self,
        sfreq: float = 250.0,
        tmin: float = 0.0,
        tmax: float = 4.0,
        epoch_tmin: float = 0.0,
        sfreq_model: float = 100.0,
        bands: str | Sequence[Sequence[float]] | None = None,
        filter_order: int = 5,
        n_components: int = 2,
        input: str = "fbcsp",  # noqa: A002 - the classifier's parameter name
        scale: float = 1.0,
        standardize: bool | str = False,
    ) -> None:
        self.sfreq = sfreq
        self.tmin = tmin
        self.tmax = tmax
        self.epoch_tmin = epoch_tmin
        self.sfreq_model = sfreq_model
        self.bands = bands
        self.filter_order = filter_order
        self.n_components = n_components
        self.input = input
        self.scale = scale
        self.standardize = standardize

    def resolved_bands(self) -> tuple[tuple[float, float], ...]:
        """The bands in use (``bands`` or the default of ``input``)."""
        if self.bands is not None:
            return parse_bands(self.bands)
        return MIXNET_BANDS if self.input == "fbcsp" else TIME_DOMAIN_BAND

    def _pipeline(self) -> Pipeline:
        if self.input not in ("fbcsp", "time"):
            raise ValueError(f"input must be 'fbcsp' or 'time'; got {self.input!r}.")
        last = (
            ("csp", FilterBankCSP(n_components=self.n_components)) if self.input == "fbcsp"
            else ("stack", FunctionTransformer(_stack_bands))
        )
        steps = [
            ("window", TimeWindow(self.sfreq, self.tmin, self.tmax, self.epoch_tmin)),
            ("resample", Resampler(self.sfreq, self.sfreq_model)),
            ("filterbank", FilterBank(self.resolved_bands(), self.sfreq_model,
                                      self.filter_order)),
            last,
        ]
        mode = standardize_mode(self.standardize)
        if mode is not None:
            steps.append(("standardize", EpochStandardizer(per=mode)))
        return Pipeline(steps)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return X if self.scale == 1.0 else np.asarray(X) * self.scale

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> MixNetFeatures:
        """Design the filter bank and fit the CSP on ``(X, y)``."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Fit and return the features of ``X`` (each step runs once)."""
        if self.input == "fbcsp" and y is None:
            raise ValueError("MixNetFeatures(input='fbcsp') needs labels y to fit the CSP.")
        pipe = self._pipeline()
        out = pipe.fit_transform(self._scaled(X), y)
        self.pipeline_ = pipe
        self.csp_ = pipe.named_steps.get("csp")
        return np.ascontiguousarray(out, dtype=np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Network input ``(n, N_f * U, T')`` (float32) with the fitted filters."""
        check_is_fitted(self, "pipeline_")
        return np.ascontiguousarray(self.pipeline_.transform(self._scaled(X)), dtype=np.float32)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
