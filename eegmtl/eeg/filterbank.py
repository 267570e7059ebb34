"""Filter-bank common spatial patterns (FBCSP) as a scikit-learn transformer, MixNet style.

MixNet (Autthasan et al., IEEE IoT J. 11(17), 2024, Sec. III-A "spectral-spatial signals";
official code ``mixnet/preprocessing/SpectralSpatialSignalGeneration.py``) feeds its network with
the CSP-filtered *time series* of every filter-bank band rather than with log-variance features.
Per band ``k`` and per class ``c``:

.. math::

    \\bar C_c = \\frac{1}{|c|} \\sum_{i \\in c}
        \\frac{X_i X_i^\\top}{\\operatorname{tr}(X_i X_i^\\top)},
    \\qquad \\bar C_0 w = \\lambda (\\bar C_0 + \\bar C_1) w,

(trace-normalised per-trial covariance, no mean removal, averaged per class; generalized
symmetric eigenproblem solved with :func:`scipy.linalg.eigh`). The eigenvectors are ordered
"alternately": largest eigenvalue, smallest, 2nd largest, 2nd smallest, ... and the first ``U``
are kept, so ``U = 2`` keeps the most discriminative filter for each class. The output is
band-major ``(n, N_f * U, n_times)`` = ``[band1-comp1, band1-comp2, band2-comp1, ...]``;
for 2b with 9 bands and ``U = 2`` that is ``(n, 18, 400)``.

Differences to the original code (defaults here follow MixNet; the rest are options):

- ``output="logvar"`` gives classic FBCSP features ``log(var_t(w^T X))`` (Ang et al., 2012,
  Front. Neurosci. 6:39), shape ``(n, N_f * U)``; MixNet only uses ``"signals"``.
- Eigenvector signs are arbitrary in LAPACK; here each filter is flipped so that its entry of
  largest magnitude is positive, which makes fits reproducible across platforms. MixNet does not
  fix signs. Scaling is scipy's ``w^T (C_0 + C_1) w = 1``, as in the original.
- Class 0 is the first label of ``np.unique(y)`` (MixNet: label 0 = left hand).
- Rank-deficient covariances (common-average reference, a flat or duplicated channel) make
  ``C_0 + C_1`` singular, and the generalized eigenproblem then returns, depending on rounding,
  an error or filters of huge norm with eigenvalues outside [0, 1]. Here, whenever the smallest
  eigenvalue of ``C_0 + C_1`` is below ``RANK_RCOND = 1e-10`` times its largest (the rank
  test), both class covariances get the same ridge ``(RIDGE / 2) * tr(C_0 + C_1) / C * I`` with
  ``RIDGE = 1e-6`` (shrinkage towards the identity relative to the trace, as in regularised CSP,
  Lotte & Guan 2011, IEEE TBME 58(2), Eq. 3). Directions without signal then get eigenvalue
  1/2, the least discriminative, and are never picked first; eigenvalues stay in [0, 1]. Full-
  rank data (such as the 2b export) is not touched, so its filters are unchanged. The decision is
  recorded per band in ``regularized_``.
- ``output="logvar"`` floors the variance at ``VAR_FLOOR = 1e-12`` times the median variance of
  that component over the training trials, so a flat trial gives a finite (very low) feature
  instead of ``-inf``. Flat trials at ``fit`` raise (they cannot be trace-normalised).

The transformer is fitted on the data passed to :meth:`FilterBankCSP.fit` only; ``transform``
never updates any state, so fitting on training trials and transforming test trials cannot leak
test information into the filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from eegmtl.eeg.checks import check_epochs_array, check_labels
from eegmtl.eeg.preprocessing import MIXNET_BANDS, filter_bank

__all__ = [
    "RANK_RCOND",
    "RIDGE",
    "VAR_FLOOR",
    "FilterBankCSP",
    "alternate_order",
    "csp_filters",
    "trace_normalized_covariances",
]

#: ``C_0 + C_1`` is treated as rank-deficient below this ratio of extreme eigenvalues.
RANK_RCOND = 1e-10
#: Ridge added to ``C_0 + C_1`` (half to each class), relative to ``tr(C_0 + C_1) / C``.
RIDGE = 1e-6
#: Log-variance features floor the variance at this fraction of the training median.
VAR_FLOOR = 1e-12
_TINY = np.finfo(np.float64).tiny


def trace_normalized_covariances(X: np.ndarray) -> np.ndarray:
    """Per-trial ``X X^T / trace(X X^T)`` without mean removal, ``(n, C, T)`` -> ``(n, C, C)``."""
    X = check_epochs_array(X, ndim=3)
    covs = np.einsum("nct,ndt->ncd", X, X)
    traces = np.trace(covs, axis1=1, axis2=2)
    if np.any(traces <= 0):
        bad = np.nonzero(traces <= 0)[0][:10].tolist()
        raise ValueError(
            f"trials {bad} are flat (all zeros: zero covariance trace); CSP cannot normalise "
            "them. Drop these trials (eegmtl.eeg.checks.find_flat_trials finds them)."
        )
    return covs / traces[:, None, None]


def alternate_order(eigenvalues: np.ndarray) -> np.ndarray:
    """Indices ordering eigenvalues as largest, smallest, 2nd largest, 2nd smallest, ..."""
    desc = np.argsort(eigenvalues)[::-1]
    out = np.empty_like(desc)
    n = len(desc)
    out[0::2] = desc[: (n + 1) // 2]
    out[1::2] = desc[::-1][: n // 2]
    return out


def csp_filters(
    cov0: np.ndarray, cov1: np.ndarray, n_components: int, *, rcond: float = RANK_RCOND,
    ridge: float = RIDGE,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Solve ``cov0 w = lambda (cov0 + cov1) w`` and keep ``n_components`` filters.

    When ``cov0 + cov1`` is rank-deficient (smallest / largest eigenvalue below ``rcond``), both
    covariances get the ridge ``(ridge / 2) * tr(cov0 + cov1) / C * I`` first (module
    docstring), so the problem is always well posed and solved the same way.

    Returns
    -------
    filters : ndarray, shape (n_components, C)
        Rows are spatial filters, alternately ordered (see :func:`alternate_order`), sign fixed
        so that the entry of largest magnitude is positive.
    eigenvalues : ndarray, shape (n_components,)
        Their generalized eigenvalues (fraction of class-0 power), clipped to [0, 1] (they
        leave it only by rounding, at most ~1e-15).
    regularized : bool
        Whether the ridge was applied.
    """
    composite = cov0 + cov1
    ev = np.linalg.eigvalsh(composite)
    if not np.all(np.isfinite(ev)) or ev[-1] <= 0:
        raise ValueError(
            "the class covariances are zero or not finite; CSP needs trials with signal."
        )
    regularized = bool(ev[0] < rcond * ev[-1])
    if regularized:
        n = composite.shape[0]
        delta = 0.5 * ridge * np.trace(composite) / n * np.eye(n)
        cov0, composite = cov0 + delta, composite + 2.0 * delta
    evals, evecs = scipy.linalg.eigh(cov0, composite)
    idx = alternate_order(evals)[:n_components]
    filters = evecs[:, idx].T
    signs = np.sign(filters[np.arange(len(idx)), np.argmax(np.abs(filters), axis=1)])
    signs[signs == 0] = 1.0
    return filters * signs[:, None], np.clip(evals[idx], 0.0, 1.0), regularized


class FilterBankCSP(TransformerMixin, BaseEstimator):
    """Per-band CSP with MixNet's conventions; see the module docstring for the equations.

    Parameters
    ----------
    n_components : int
        ``U``, CSP filters kept per band; default 2 (MixNet, 2b, SD and SI).
    bands : sequence of (low, high) or None
        Filter-bank bands in Hz, used only for 3-D input; None = :data:`MIXNET_BANDS`.
    sfreq : float or None
        Sampling rate of 3-D input in Hz (e.g. 100 after resampling). Required for 3-D input,
        ignored for 4-D input.
    order : int
        Butterworth order of the filter bank for 3-D input; default 5.
    output : {"signals", "logvar"}
        ``"signals"`` (default, MixNet): ``(n, N_f * U, n_times)`` CSP time series, band-major.
        ``"logvar"``: ``(n, N_f * U)`` log-variance features for FBCSP classifiers.

    Input
    -----
    Either raw epochs ``(n, C, T)`` (the transformer applies
    :func:`eegmtl.eeg.preprocessing.filter_bank` itself; needs ``sfreq``) or already filtered
    epochs ``(n, N_f, C, T)`` (e.g. from :class:`eegmtl.eeg.preprocessing.FilterBank`). The input
    kind seen by ``fit`` must be used for ``transform`` too. Labels: any two distinct values.

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
    filters_ : ndarray, shape (N_f, U, C)
        Spatial filters; ``filters_[k] @ X_band_k`` gives band ``k``'s components.
    eigenvalues_ : ndarray, shape (N_f, U)
        Generalized eigenvalues, in [0, 1].
    regularized_ : ndarray of bool, shape (N_f,)
        Bands whose covariances were rank-deficient and got the ridge (module docstring).
    var_floor_ : ndarray, shape (N_f * U,)
        Variance floor of ``output="logvar"`` (``VAR_FLOOR`` x training median per component).
    n_bands_, n_channels_ : int
    input_ndim_ : int
        3 or 4, the input kind seen by ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from eegmtl.eeg.filterbank import FilterBankCSP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 3, 500))  # (trials, channels, samples) at 250 Hz
    >>> y = np.repeat([0, 1], 10)
    >>> X[y == 1, 2] *= 3.0
    >>> fb = FilterBankCSP(n_components=2, bands=[(8, 12), (12, 30)], sfreq=250.0)
    >>> fb.fit(X, y).transform(X).shape  # (trials, bands x components, samples)
    (20, 4, 500)
    >>> logvar = FilterBankCSP(bands=[(8, 12), (12, 30)], sfreq=250.0, output="logvar")
    >>> logvar.fit(X, y).transform(X).shape  # log-variance features for a linear classifier
    (20, 4)
    """

    def __init__(
        self,
        n_components: int = 2,
        bands: Sequence[Sequence[float]] | None = None,
        sfreq: float | None = None,
        order: int = 5,
        output: Literal["signals", "logvar"] = "signals",
    ) -> None:
        self.n_components = n_components
        self.bands = bands
        self.sfreq = sfreq
        self.order = order
        self.output = output

    # ------------------------------------------------------------------ helpers
    def _banded(self, X: np.ndarray) -> np.ndarray:
        """Return a ``(n, N_f, C, T)`` float array from 3-D or 4-D input."""
        X = check_epochs_array(X, ndim=(3, 4), min_times=2)
        if X.ndim == 4:
            return X
        if self.sfreq is None:
            raise ValueError(
                "FilterBankCSP got 3-D epochs (n, C, T) but sfreq=None: pass sfreq=<Hz> so it "
                "can apply the filter bank, or give pre-filtered (n, n_bands, C, T) input."
            )
        bands = MIXNET_BANDS if self.bands is None else self.bands
        return filter_bank(X, self.sfreq, bands, order=self.order)

    def _check_params(self) -> None:
        if self.output not in ("signals", "logvar"):
            raise ValueError(f"output must be 'signals' or 'logvar'; got {self.output!r}.")
        if int(self.n_components) != self.n_components or self.n_components < 1:
            raise ValueError(f"n_components must be a positive integer; got {self.n_components}.")

    # ---------------------------------------------------------------- estimator
    def fit(self, X: np.ndarray, y: np.ndarray) -> FilterBankCSP:
        """Fit one CSP per band on ``(X, y)`` (the training trials only)."""
        self._check_params()
        Xb = self._banded(X)
        y = check_labels(y, n_trials=Xb.shape[0], min_classes=1)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"FilterBankCSP needs trials of two classes; y has only {classes.tolist()}. "
                "Check the split: every training fold must contain both classes."
            )
        if len(classes) > 2:
            raise ValueError(
                f"FilterBankCSP is binary (MixNet's CSP); y has {len(classes)} classes "
                f"{classes.tolist()}. Select two classes or use one-vs-rest outside."
            )
        n_bands, n_channels = Xb.shape[1], Xb.shape[2]
        if self.n_components > n_channels:
            raise ValueError(
                f"n_components={self.n_components} exceeds the {n_channels} channels."
            )
        filters = np.empty((n_bands, self.n_components, n_channels))
        evals = np.empty((n_bands, self.n_components))
        regularized = np.zeros(n_bands, dtype=bool)
        mask0 = y == classes[0]
        for k in range(n_bands):
            covs = trace_normalized_covariances(Xb[:, k])
            filters[k], evals[k], regularized[k] = csp_filters(
                covs[mask0].mean(axis=0), covs[~mask0].mean(axis=0), self.n_components
            )
        self.classes_ = classes
        self.filters_ = filters
        self.eigenvalues_ = evals
        self.regularized_ = regularized
        self.n_bands_ = n_bands
        self.n_channels_ = n_channels
        self.input_ndim_ = np.asarray(X).ndim
        self.var_floor_ = VAR_FLOOR * np.median(np.var(self._components(Xb), axis=-1), axis=0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted filters; no state is changed.

        Returns
        -------
        ndarray
            ``(n, N_f * U, T)`` for ``output="signals"``, ``(n, N_f * U)`` for ``"logvar"``.
        """
        check_is_fitted(self, "filters_")
        ndim = np.asarray(X).ndim
        if ndim != self.input_ndim_:
            raise ValueError(
                f"fit saw {self.input_ndim_}-D input but transform got {ndim}-D; use the same "
                "input kind (raw (n, C, T) or filtered (n, n_bands, C, T))."
            )
        Xb = self._banded(X)
        if Xb.shape[1:3] != (self.n_bands_, self.n_channels_):
            raise ValueError(
                f"X has {Xb.shape[1]} bands x {Xb.shape[2]} channels; the fit had "
                f"{self.n_bands_} x {self.n_channels_}."
            )
        comps = self._components(Xb)
        if self.output == "logvar":
            floor = getattr(self, "var_floor_", 0.0)  # absent in fits pickled before the floor
            return np.log(np.maximum(np.var(comps, axis=-1), np.maximum(floor, _TINY)))
        return comps

    def _components(self, Xb: np.ndarray) -> np.ndarray:
        comps = np.einsum("kuc,nkct->nkut", self.filters_, Xb)
        n, t = comps.shape[0], comps.shape[-1]
        return comps.reshape(n, self.n_bands_ * self.n_components, t)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
