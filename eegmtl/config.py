"""Where eegmtl looks for data and writes results (no EEG or torch imports).

Resolution order for a data set directory (first hit wins):

1. the explicit ``path`` argument of the loader;
2. the data set's own environment variable (``EEGMTL_BCI2B_DIR``, ``EEGMTL_MNIST_DIR``,
   ``EEGMTL_FASHION_MNIST_DIR``, ...);
3. ``$EEGMTL_DATA_DIR/<default sub-folder>`` (e.g. ``$EEGMTL_DATA_DIR/bcic_iv_2b``).

Nothing is downloaded by these helpers; a missing directory raises :class:`DataNotFoundError`
whose message names the variable to set and the expected files.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATASETS",
    "RESULTS_DIR_HELP",
    "DataNotFoundError",
    "checkout_root",
    "is_checkout",
    "resolve_data_dir",
    "results_dir",
]

#: name -> (environment variable, default sub-folder of $EEGMTL_DATA_DIR)
DATASETS: dict[str, tuple[str, str]] = {
    "bcic_iv_2b": ("EEGMTL_BCI2B_DIR", "bcic_iv_2b"),
    "mnist": ("EEGMTL_MNIST_DIR", "mnist"),
    "fashion_mnist": ("EEGMTL_FASHION_MNIST_DIR", "fashion_mnist"),
    "nyuv2": ("EEGMTL_NYUV2_DIR", "nyuv2"),
    "cityscapes": ("EEGMTL_CITYSCAPES_DIR", "cityscapes"),
    "celeba": ("EEGMTL_CELEBA_DIR", "celeba"),
    "office31": ("EEGMTL_OFFICE31_DIR", "office31"),
    "office_home": ("EEGMTL_OFFICE_HOME_DIR", "office_home"),
}


class DataNotFoundError(FileNotFoundError):
    """A data set directory or file is missing; the message says how to fix it."""


def resolve_data_dir(
    name: str, path: str | os.PathLike[str] | None = None, *, must_exist: bool = True,
    expected: str = "",
) -> Path:
    """Resolve the directory of data set ``name`` (see the module docstring for the order).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    path : path-like, optional
        Explicit directory; wins over the environment.
    must_exist : bool
        Raise :class:`DataNotFoundError` when the directory does not exist.
    expected : str
        Description of the expected content, added to the error message.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(DATASETS)}")
    env, sub = DATASETS[name]
    if path is not None:
        out, how = Path(path).expanduser(), "the path argument"
    elif os.environ.get(env):
        out, how = Path(os.environ[env]).expanduser(), f"${env}"
    elif os.environ.get("EEGMTL_DATA_DIR"):
        out, how = Path(os.environ["EEGMTL_DATA_DIR"]).expanduser() / sub, "$EEGMTL_DATA_DIR"
    else:
        raise DataNotFoundError(
            f"no directory given for data set {name!r}: pass path=..., or set ${env} to the "
            f"folder, or set $EEGMTL_DATA_DIR to a folder that contains '{sub}/'."
            + (f" Expected content: {expected}." if expected else "")
        )
    if must_exist and not out.is_dir():
        raise DataNotFoundError(
            f"data directory for {name!r} not found: {out} (from {how}). Set ${env} (or "
            f"$EEGMTL_DATA_DIR, containing '{sub}/') to the right folder."
            + (f" Expected content: {expected}." if expected else "")
        )
    return out


#: How the default results folder is chosen (shown in the ``--help`` of every experiment).
RESULTS_DIR_HELP = (
    "default results folder: $EEGMTL_RESULTS_DIR if set, else pipelines/results/ of the eegmtl "
    "checkout when eegmtl runs from one, else ./eegmtl-results"
)


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` is the root of an eegmtl source checkout (holds ``pyproject.toml``
    and ``pipelines/``)."""
    return (folder / "pyproject.toml").is_file() and (folder / "pipelines").is_dir()


def checkout_root() -> Path | None:
    """Root of the eegmtl source checkout this package runs from (``None`` for an installed
    wheel): the folder above the package when it :func:`is_checkout`."""
    root = Path(__file__).resolve().parents[1]
    return root if is_checkout(root) else None


def results_dir(
    path: str | os.PathLike[str] | None = None,
    default: str | os.PathLike[str] | None = None,
) -> Path:
    """Directory for result records.

    ``path`` if given, else ``$EEGMTL_RESULTS_DIR``, else ``default`` if given, else the
    checkout's ``pipelines/results`` when eegmtl runs from a source checkout (so records land
    there whatever the current directory), else ``./eegmtl-results`` (an installed wheel).
    """
    if path is not None:
        return Path(path)
    if os.environ.get("EEGMTL_RESULTS_DIR"):
        return Path(os.environ["EEGMTL_RESULTS_DIR"])
    if default is not None:
        return Path(default)
    root = checkout_root()
    return root / "pipelines" / "results" if root is not None else Path("eegmtl-results")
