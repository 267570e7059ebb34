"""Zero-phase Butterworth filter banks: design once (:func:`design_filter_bank`), apply often
(:meth:`ButterworthBank.apply`, scipy ``filtfilt`` / ``sosfiltfilt``).

MixNet (Autthasan et al., IEEE IoT J. 11(17), 2024, Sec. III-A) filters in 9 bands 4-8, ...,
36-40 Hz with an order-5 Butterworth ``(b, a)`` design and ``scipy.signal.filtfilt`` with scipy's
default padding (odd extension, ``padlen = 3 * (2 * order + 1) = 33``); that is the default here
and equals MNE's zero-phase IIR (:func:`mne.filter.filter_data`, ``output="ba"``, that
``padlen``) bit for bit. ``output="sos"`` (numerically safer for narrow low bands) and
``padlen="auto"`` (MNE's ringing estimate) are options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from eegmtl.eeg.checks import _check_sfreq, check_epochs_array

__all__ = [
    "MIXNET_BANDS", "ButterworthBank", "design_filter_bank", "filter_bank", "parse_bands",
]

#: MixNet's 9 filter-bank bands in Hz: 4-8, 8-12, ..., 36-40.
MIXNET_BANDS: tuple[tuple[float, float], ...] = tuple((f, f + 4.0) for f in range(4, 40, 4))


_BAND_SPEC = re.compile(
    r"^\s*(?P<lo>\d+(?:\.\d+)?)\s*-\s*(?P<hi>\d+(?:\.\d+)?)\s*(?:/\s*(?P<width>\d+(?:\.\d+)?))?\s*$"
)


def parse_bands(bands: str | Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """Filter-bank bands as ``(low, high)`` pairs in Hz, from pairs or a compact text form.

    The text form ``"LO-HI/WIDTH"`` is the contiguous bands of ``WIDTH`` Hz from ``LO`` to
    ``HI`` (``"4-40/4"`` is :data:`MIXNET_BANDS`, ``"4-28/4"`` its first six bands);
    ``"LO-HI"`` is one band. It lets a band set be given where only a scalar fits (a
    command-line ``--set`` or a ``+set[bands=4-28/4]`` pipeline name).

    Raises
    ------
    ValueError
        Text not of that form, ``HI - LO`` not a multiple of ``WIDTH``, or not a sequence of
        pairs; an empty set. (The rate-dependent checks are :func:`design_filter_bank`'s.)

    Examples
    --------
    >>> parse_bands("8-20/4")
    ((8.0, 12.0), (12.0, 16.0), (16.0, 20.0))
    >>> parse_bands("4-40/4") == MIXNET_BANDS
    True
    """
    if isinstance(bands, str):
        m = _BAND_SPEC.match(bands)
        if m is None:
            raise ValueError(f"bands as text must read 'LO-HI/WIDTH' (contiguous bands of WIDTH "
                             f"Hz, e.g. '4-28/4') or 'LO-HI' (one band); got {bands!r}.")
        lo, hi = float(m["lo"]), float(m["hi"])
        width = float(m["width"]) if m["width"] is not None else hi - lo
        n = (hi - lo) / width if width > 0 else 0.0
        if lo >= hi or n < 1 or abs(n - round(n)) > 1e-9:
            raise ValueError(f"bands {bands!r}: need LO < HI and HI - LO a whole multiple of "
                             f"WIDTH (e.g. '4-28/4').")
        return tuple((lo + k * width, lo + (k + 1) * width) for k in range(round(n)))
    try:
        parsed = tuple((float(lo), float(hi)) for lo, hi in bands)
    except (TypeError, ValueError):
        raise ValueError(
            f"bands must be a sequence of (low, high) pairs in Hz or text 'LO-HI/WIDTH'; "
            f"got {bands!r}."
        ) from None
    if not parsed:
        raise ValueError("bands is empty; give at least one (low, high) pair.")
    return parsed


def _validate_bands(
    bands: str | Sequence[Sequence[float]], sfreq: float
) -> list[tuple[float, float]]:
    parsed = list(parse_bands(bands))
    nyq = sfreq / 2.0
    for lo, hi in parsed:
        if not 0 < lo < hi < nyq:
            raise ValueError(
                f"band ({lo:g}, {hi:g}) Hz is invalid at sfreq={sfreq:g} Hz: need "
                f"0 < low < high < Nyquist ({nyq:g} Hz). Resample to a higher rate or drop it."
            )
    return parsed


@dataclass(frozen=True)
class ButterworthBank:
    """A designed bank of zero-phase Butterworth band-pass filters (design once, apply often).

    Built by :func:`design_filter_bank`; :meth:`apply` filters epochs in every band with
    :func:`scipy.signal.filtfilt` (``output="ba"``) or :func:`scipy.signal.sosfiltfilt`
    (``output="sos"``) using odd-extension padding of ``padlen`` samples -- MixNet's
    ``filtfilt(b, a, x)`` with scipy's default ``padlen = 3 * (2 * order + 1)``.

    Attributes
    ----------
    bands : tuple of (low, high)
        Pass bands in Hz.
    sfreq : float
        Sampling rate the filters were designed for.
    order : int
        Butterworth order per band edge (``scipy.signal.butter(order, ..., "bandpass")``).
    output : {"ba", "sos"}
        Filter form.
    padlen : int
        Odd-extension length at both ends (clipped to ``n_times - 1`` when applied).
    coefficients : tuple
        Per band ``(b, a)`` (``output="ba"``) or the ``sos`` array.
    """

    bands: tuple[tuple[float, float], ...]
    sfreq: float
    order: int
    output: str
    padlen: int
    coefficients: tuple

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Filter ``X`` ``(n, C, T)`` in every band -> ``(n, n_bands, C, T)``, float64.

        Any floating input (float32 included) is filtered in float64.
        """
        import scipy.signal

        X = check_epochs_array(X, ndim=3, min_times=8)
        n, c, t = X.shape
        flat = X.reshape(n * c, t).astype(np.float64, copy=False)
        padlen = min(self.padlen, t - 1)
        out = np.empty((n, len(self.bands), c, t), dtype=np.float64)
        if self.output == "ba" and padlen > 0:
            _filtfilt_ba(self.coefficients, flat, padlen, out.reshape(n, -1, c * t))
            return out
        for k, coef in enumerate(self.coefficients):
            if self.output == "sos":
                filt = scipy.signal.sosfiltfilt(coef, flat, axis=-1, padtype="odd",
                                                padlen=padlen)
            else:
                filt = scipy.signal.filtfilt(*coef, flat, axis=-1, padtype="odd", padlen=padlen)
            out[:, k] = filt.reshape(n, c, t)
        return out


def _odd_ext(x: np.ndarray, n: int) -> np.ndarray:
    """Odd extension of ``n`` samples at both ends of the last axis (scipy's ``odd_ext``)."""
    left, right = x[:, :1], x[:, -1:]
    return np.concatenate(
        (2 * left - x[:, n:0:-1], x, 2 * right - x[:, -2:-(n + 2):-1]), axis=-1
    )


def _filtfilt_ba(coefficients: tuple, flat: np.ndarray, padlen: int, out: np.ndarray) -> None:
    """``scipy.signal.filtfilt(b, a, flat, axis=-1, padtype="odd", padlen=padlen)`` of every
    band into ``out[:, k]`` (``out`` of shape ``(n, n_bands, rows_per_trial * T)``): the same
    ``lfilter`` calls on the same arrays as scipy's ``method="pad"``, with the odd extension
    built once for all bands instead of once per band."""
    import scipy.signal

    n = out.shape[0]
    ext = _odd_ext(flat, padlen)
    x0 = ext[:, :1]
    for k, (b, a) in enumerate(coefficients):
        b, a = np.atleast_1d(np.asarray(b)), np.atleast_1d(np.asarray(a))
        zi = scipy.signal.lfilter_zi(b, a).reshape(1, -1)
        y, _ = scipy.signal.lfilter(b, a, ext, axis=-1, zi=zi * x0)
        y, _ = scipy.signal.lfilter(b, a, y[:, ::-1], axis=-1, zi=zi * y[:, -1:])
        out[:, k] = y[:, ::-1][:, padlen:-padlen].reshape(n, -1)


def design_filter_bank(
    bands: str | Sequence[Sequence[float]] = MIXNET_BANDS,
    sfreq: float = 100.0,
    *,
    order: int = 5,
    output: Literal["ba", "sos"] = "ba",
    padlen: int | Literal["auto"] | None = None,
) -> ButterworthBank:
    """Design Butterworth band-pass filters for every band (see :func:`filter_bank`).

    The coefficients are those of MixNet (``scipy.signal.butter(order, [lo, hi] / nyq,
    "bandpass")``) and of MNE's ``iir_params=dict(ftype="butter", order=order)``.
    ``padlen="auto"`` uses MNE's ringing estimate (:func:`mne.filter.estimate_ringing_samples`,
    the longest over the bands).

    Raises
    ------
    ValueError
        Invalid bands (outside ``(0, Nyquist)``), order, output or padlen; a band whose
        ``(b, a)`` design is numerically unstable (use ``output="sos"``).
    """
    import scipy.signal

    sfreq = _check_sfreq(sfreq)
    parsed = _validate_bands(bands, sfreq)
    if int(order) != order or order < 1:
        raise ValueError(f"order must be a positive integer; got {order!r}.")
    if output not in ("ba", "sos"):
        raise ValueError(f"output must be 'ba' or 'sos'; got {output!r}.")
    coefs = []
    for lo, hi in parsed:
        wn = np.asarray([lo, hi]) / (sfreq / 2.0)
        coef = scipy.signal.butter(int(order), wn, btype="bandpass", output=output)
        if output == "ba" and np.max(np.abs(np.roots(coef[1]))) >= 1.0:
            raise ValueError(
                f"the (b, a) Butterworth design of band ({lo:g}, {hi:g}) Hz at {sfreq:g} Hz, "
                f"order {order}, is unstable; use output='sos' or a lower order."
            )
        coefs.append(coef)
    if padlen is None:
        pad = 3 * (2 * int(order) + 1)
    elif padlen == "auto":
        import mne

        pad = max(int(mne.filter.estimate_ringing_samples(c)) for c in coefs)
    elif int(padlen) == padlen and int(padlen) >= 0:
        pad = int(padlen)
    else:
        raise ValueError(f"padlen must be a non-negative integer, 'auto' or None; got {padlen!r}.")
    return ButterworthBank(tuple(parsed), sfreq, int(order), output, pad, tuple(coefs))


def filter_bank(
    X: np.ndarray,
    sfreq: float,
    bands: str | Sequence[Sequence[float]] = MIXNET_BANDS,
    *,
    order: int = 5,
    output: Literal["ba", "sos"] = "ba",
    padlen: int | Literal["auto"] | None = None,
) -> np.ndarray:
    """Band-pass ``X`` in every band with a zero-phase Butterworth IIR (scipy ``filtfilt``).

    Shorthand for ``design_filter_bank(bands, sfreq, ...).apply(X)``; to filter many arrays
    with the same bank, design it once (:func:`design_filter_bank`, :class:`FilterBank`).

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_channels, n_times)
        Any floating dtype; filtered in float64.
    sfreq : float
        Sampling rate in Hz (100 after MixNet's resampling).
    bands : sequence of (low, high) or str
        Pass bands in Hz, or their text form (:func:`parse_bands`, e.g. ``"4-28/4"``); default
        :data:`MIXNET_BANDS` (9 bands 4-8 ... 36-40 Hz).
    order : int
        Butterworth order per band edge design (``scipy.signal.butter(order, ..., "band")``);
        default 5 (MixNet).
    output : {"ba", "sos"}
        Filter form; ``"ba"`` (default) is MixNet's ``filtfilt(b, a)``.
    padlen : int, "auto" or None
        Odd-extension padding; None (default) = scipy's ``filtfilt`` default
        ``3 * (2 * order + 1)`` as in MixNet, ``"auto"`` = MNE's ringing estimate.

    Returns
    -------
    ndarray, shape (n_trials, n_bands, n_channels, n_times)
        Band-major: ``out[:, k]`` is ``X`` filtered in ``bands[k]``.
    """
    bank = design_filter_bank(bands, sfreq, order=order, output=output, padlen=padlen)
    return bank.apply(X)
