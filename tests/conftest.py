"""Shared pytest configuration: --runslow, real-data location, CPU threads."""

from __future__ import annotations

import os
from pathlib import Path

# Passive OpenMP waiting: with 2 threads and the default policy a busy second core makes torch
# several times slower. Must be set before torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_SHARED = REPO.parent / "shared" / "data"

# Point the loaders at ../shared/data when the user did not say otherwise (CI layout).
if not os.environ.get("EEGMTL_DATA_DIR") and _SHARED.is_dir():
    os.environ["EEGMTL_DATA_DIR"] = str(_SHARED)
# Never let MOABB try NEMAR (38 s per subject offline) and never write into ~/mne_data.
os.environ.setdefault("MOABB_DOWNLOAD_PROVIDER", "upstream")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # keep the 2-core CI machine responsive when tests run
    import torch
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test runs torch on one CPU thread (reproducible timings and results on shared
    2-core machines); a test that wants more sets them itself, and the previous number is
    restored afterwards."""
    if torch is None:  # pragma: no cover
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bci2b_dir() -> Path:
    """Directory of the real BCIC IV 2b export; skips (with the reason) if absent."""
    from eegmtl.config import DataNotFoundError, resolve_data_dir

    try:
        return resolve_data_dir("bcic_iv_2b")
    except DataNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def vision_data_dir() -> Path:
    root = os.environ.get("EEGMTL_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("MNIST IDX files not found: set EEGMTL_DATA_DIR to a folder with mnist/")
    return Path(root)
