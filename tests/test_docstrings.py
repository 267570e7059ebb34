"""Run the ``>>>`` examples of every public module with doctest; any failure fails the test.

Each module of the package (private ``_*`` modules and ``__main__`` excepted) is imported and
``doctest.testmod(module, optionflags=ELLIPSIS | NORMALIZE_WHITESPACE)`` must report no
failures. Examples that need the real data carry ``# doctest: +SKIP``. Torch uses one thread
and every example starts from torch's seed 0, so outputs are reproducible on the CPU.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eegmtl"

#: objects whose docstrings should carry a runnable example (issue #7, item 4)
KEY_APIS = (
    "eegmtl.mtl.aggregators.get_aggregator",
    "eegmtl.mtl.aggregators.AlignedMTL",
    "eegmtl.mtl.weightings.get_weighting",
    "eegmtl.mtl.weightings.GradientBlending",
    "eegmtl.mtl.trainer.Trainer",
    "eegmtl.mixnet.classifier.MixNetClassifier",
    "eegmtl.eeg.filterbank.FilterBankCSP",
    "eegmtl.eeg.datasets.load_bci2b",
    "eegmtl.mtl.metrics.delta_p",
)


def _public_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or "__pycache__" in parts:
            continue
        names.append(".".join(parts))
    return names


MODULES = _public_modules()


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as err:  # an optional dependency (e.g. braindecode) is missing
        pytest.skip(f"{name}: {err}")


def test_module_list_covers_the_core() -> None:
    for name in ("eegmtl.config", "eegmtl.mixnet.losses", "eegmtl.mixnet.classifier",
                 "eegmtl.mtl.metrics",
                 "eegmtl.mtl.aggregators.pcgrad", "eegmtl.mtl.weightings.blending",
                 "eegmtl.evaluation.tables", "eegmtl.eeg.filterbank", "eegmtl.benchmarks.toy"):
        assert name in MODULES
    assert not any(m.rsplit(".", 1)[-1].startswith("_") for m in MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    import torch

    module = _import(name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False,
            report=True,
        )
    finally:
        torch.set_num_threads(threads)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def _has_example(qualname: str) -> bool:
    module_name, attr = qualname.rsplit(".", 1)
    obj = getattr(_import(module_name), attr)
    return ">>>" in (obj.__doc__ or "")


def test_key_apis_have_examples() -> None:
    missing = [q for q in KEY_APIS if not _has_example(q)]
    assert not missing, f"no '>>>' example in the docstring of {missing}"
