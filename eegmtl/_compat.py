"""Optional dependencies: import them on demand with an error message that says how to fix it.

eegmtl itself never imports braindecode; only the deep baselines
(:mod:`eegmtl.eeg.baselines`) do, through :func:`import_braindecode`.

Why a helper: every braindecode release from 1.0 on requires torchaudio, and on Linux the only
torchaudio wheel on the index (2.11.0) is built against CUDA 13. With the CPU build of torch
(``torch==2.13.0+cpu``), ``import torchaudio`` -- and hence ``import braindecode`` -- fails with
``OSError: Could not load this library: .../torchaudio/lib/_torchaudio.abi3.so`` (the library
needs ``libc10_cuda.so``). torchaudio falls back to pure Python when its ``lib/*.so`` files are
absent (torchaudio 2.11 ``_extension/utils.py``), which is all braindecode needs (``filtfilt`` /
``lfilter``). ``.ci/install_baselines.sh`` installs the ``baselines`` extra and removes those
libraries only when they cannot be loaded; :func:`torchaudio_fix_command` prints the same fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["import_braindecode", "torchaudio_fix_command"]

#: warnings that ``import braindecode`` raises about its own code, which a user of eegmtl can do
#: nothing about: braindecode 1.8's EEGPT module builds MNE's ``standard_1020`` montage at import
#: time, which MNE 1.13 deprecates (twice per process, in every run's log).
_IMPORT_NOISE = (r"Montage name 'standard_1020' is deprecated",)

_INSTALL = (
    "pip install 'eegmtl[baselines]' (or: pip install braindecode), then run "
    "`bash .ci/install_baselines.sh` to make torchaudio importable on CPU-only torch"
)


def torchaudio_fix_command() -> str:
    """Shell command that removes torchaudio's CUDA-only shared libraries from this environment."""
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or not spec.submodule_search_locations:
        lib = Path(sys.prefix) / "lib" / "python3.X" / "site-packages" / "torchaudio" / "lib"
    else:
        lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return f"rm -f {lib}/*.so"


def import_braindecode() -> ModuleType:
    """Import and return :mod:`braindecode`, or raise an :class:`ImportError` naming the fix.

    Raises
    ------
    ImportError
        braindecode is not installed, or torchaudio's compiled libraries need CUDA libraries
        that a CPU-only torch lacks (the message contains the exact ``rm`` command, or use
        ``bash .ci/install_baselines.sh``).

    Notes
    -----
    The deprecation warnings braindecode raises about its own import-time code (``_IMPORT_NOISE``)
    are silenced for the import only; every other warning is left alone.
    """
    try:
        with warnings.catch_warnings():
            for message in _IMPORT_NOISE:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            return importlib.import_module("braindecode")
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in {"braindecode", "torchaudio", "skorch"}:
            raise ImportError(f"{err.name} is not installed: {_INSTALL}.") from err
        raise
    except OSError as err:
        text = str(err)
        if "torchaudio" not in text and "libc10_cuda" not in text and "cuda" not in text.lower():
            raise
        for name in [m for m in sys.modules if m.split(".")[0] in {"torchaudio", "braindecode"}]:
            del sys.modules[name]  # allow a retry in the same process after the fix
        raise ImportError(
            "braindecode cannot be imported because torchaudio's compiled libraries need CUDA "
            f"libraries that this CPU-only torch does not have ({text}). Fix: "
            f"`{torchaudio_fix_command()}` (torchaudio then falls back to pure Python), or run "
            "`bash .ci/install_baselines.sh`. With a CUDA build of torch, install the matching "
            "torchaudio instead."
        ) from err
