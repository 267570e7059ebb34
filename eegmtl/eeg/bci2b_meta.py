"""BCI Competition IV 2b (BNCI 2014-004) facts: subjects, sessions, channels, rate, events."""

from __future__ import annotations

__all__ = [
    "CHANNELS", "CUE_OFFSET_BNCI", "EVENT_ID", "N_TIMES_EXPORT", "SESSIONS", "SFREQ", "SUBJECTS",
]

#: Subjects of BCIC IV 2b.
SUBJECTS: tuple[int, ...] = tuple(range(1, 10))
#: MOABB session names (BNCI2014_004), index i <-> competition session i + 1.
SESSIONS: tuple[str, ...] = ("0train", "1train", "2train", "3test", "4test")
#: EEG channels of the export (and of BNCI2014_004 without the EOG channels).
CHANNELS: tuple[str, ...] = ("C3", "Cz", "C4")
#: Sampling rate in Hz.
SFREQ: float = 250.0
#: Event codes (MOABB convention; also the labels stored in the files).
EVENT_ID: dict[str, int] = {"left_hand": 1, "right_hand": 2}
#: Samples per trial in the export (0-4 s after the cue).
N_TIMES_EXPORT = 1000
#: Cue time relative to the BNCI trial marker (trial start), seconds.
CUE_OFFSET_BNCI = 3.0
