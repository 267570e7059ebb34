"""MixNet's protocol names and default settings, in one torch-free place.

Protocol names
--------------
The two evaluation protocols of MixNet (Autthasan et al., "MixNet: Joining Force of Classical
and Modern Approaches Toward the Comprehensive Pipeline in Motor Imagery EEG Classification",
IEEE Internet of Things Journal 11(17), 2024) are *subject-dependent* (train and test on one
subject) and *subject-independent* (train on the other subjects). :data:`PROTOCOLS` lists their
canonical names (the ``protocol`` column of result records); :func:`normalize_protocol` maps
every accepted spelling to them and :func:`protocol_short` to the short names ``"sd"`` /
``"si"`` that :class:`~eegmtl.mixnet.classifier.MixNetClassifier` stores in its config.

Accepted spellings (case-insensitive, surrounding blanks ignored): ``"sd"``,
``"subject_dependent"``, ``"subject-dependent"``, ``"si"``, ``"subject_independent"``,
``"subject-independent"``.

Defaults
--------
:data:`PROTOCOL_DEFAULTS` holds MixNet's BCIC IV 2b settings per protocol from the reference
code's final configuration (``experiments/run_MixNet.py``): batch size, triplet margin α, latent
size and the gradient-blending warm-up W (epochs). :data:`TRAINING_DEFAULTS` holds the settings
shared by both protocols (Adam learning rate, epoch limit, early-stopping patience). The
reference chose α, the latent size and W on the test sessions (supplementary Tables S1-S3);
these are its published values. Callers copy these dicts before changing them
(:func:`protocol_defaults` returns a new one).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_ALIASES",
    "PROTOCOL_DEFAULTS",
    "TASK_NAMES",
    "TRAINING_DEFAULTS",
    "normalize_protocol",
    "protocol_defaults",
    "protocol_short",
]

#: Canonical protocol names, as written in result records.
PROTOCOLS: tuple[str, str] = ("subject_dependent", "subject_independent")

#: Every accepted spelling (lower case) -> canonical protocol name.
PROTOCOL_ALIASES: dict[str, str] = {
    "subject_dependent": "subject_dependent",
    "subject-dependent": "subject_dependent",
    "sd": "subject_dependent",
    "subject_independent": "subject_independent",
    "subject-independent": "subject_independent",
    "si": "subject_independent",
}

_SHORT: dict[str, str] = {"subject_dependent": "sd", "subject_independent": "si"}

#: MixNet's BCIC IV 2b settings per protocol (short names): batch size, triplet margin α,
#: latent size, blending warm-up W in epochs.
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd": {"batch_size": 32, "margin": 0.1, "latent_dim": 4, "warmup": 7},
    "si": {"batch_size": 100, "margin": 5.0, "latent_dim": 18, "warmup": 3},
}

#: Settings shared by both protocols: Adam learning rate, epoch limit, early-stopping patience.
TRAINING_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "max_epochs": 200, "patience": 20}

#: Order of MixNet's tasks and losses: [mse, triplet, crossentropy].
TASK_NAMES: tuple[str, str, str] = ("reconstruction", "metric", "classification")


def normalize_protocol(protocol: str) -> str:
    """Canonical protocol name: ``"sd"`` -> ``"subject_dependent"``, ``"si"`` -> ...

    Parameters
    ----------
    protocol : str
        Any spelling listed in :data:`PROTOCOL_ALIASES` (case-insensitive).

    Returns
    -------
    str
        ``"subject_dependent"`` or ``"subject_independent"``.

    Raises
    ------
    ValueError
        For any other value, listing the accepted names.

    Examples
    --------
    >>> normalize_protocol("SD"), normalize_protocol("subject-independent")
    ('subject_dependent', 'subject_independent')
    """
    key = str(protocol).strip().lower()
    try:
        return PROTOCOL_ALIASES[key]
    except KeyError:
        raise ValueError(
            f"unknown protocol {protocol!r}; use 'sd' (subject-dependent) or 'si' "
            f"(subject-independent); accepted spellings: {sorted(PROTOCOL_ALIASES)}."
        ) from None


def protocol_short(protocol: str) -> str:
    """Short protocol name ``"sd"`` or ``"si"`` of any accepted spelling.

    Examples
    --------
    >>> protocol_short("subject_dependent"), protocol_short("SI")
    ('sd', 'si')
    """
    return _SHORT[normalize_protocol(protocol)]


def protocol_defaults(protocol: str) -> dict[str, Any]:
    """MixNet's settings for ``protocol``: :data:`PROTOCOL_DEFAULTS` plus
    :data:`TRAINING_DEFAULTS`, as a new dict.

    Examples
    --------
    >>> protocol_defaults("si")["latent_dim"], protocol_defaults("sd")["max_epochs"]
    (18, 200)
    """
    return {**PROTOCOL_DEFAULTS[protocol_short(protocol)], **TRAINING_DEFAULTS}
