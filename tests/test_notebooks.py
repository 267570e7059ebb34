"""Execute the analysis notebooks top to bottom (nbclient); any cell error fails the test.

The kernel is ``python3``: jupyter_client runs its ``python`` with the interpreter of this
test process, so the notebooks see the same environment (ipykernel must be installed; it is in
the ``dev`` and ``notebooks`` extras). The working directory is ``notebooks/``, as for a user,
and the eegmtl variables (``EEGMTL_DATA_DIR``, ...) are passed through the environment.
``bci2b_analysis`` fits two small models on one subject and therefore needs the real BCIC IV
2b data (``realdata``); ``mtl_benchmarks`` needs only the committed records.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(name: str, timeout: int) -> tuple[nbformat.NotebookNode, float]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # the kernel inherits this process's environment: a headless backend, and the committed
    # records (another test's ``eegmtl --results-dir`` may have pointed the variable elsewhere)
    wanted = {"MPLBACKEND": "Agg",
              "EEGMTL_RESULTS_DIR": str(NOTEBOOKS.parent / "pipelines" / "results")}
    backup = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=timeout, allow_errors=False,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        t0 = time.perf_counter()
        client.execute()  # raises CellExecutionError on the first failing cell
        seconds = time.perf_counter() - t0
    finally:
        for k, v in backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, seconds


def _outputs(nb: nbformat.NotebookNode) -> str:
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out.get("text", ""))
            elif "data" in out:
                text.append(str(out["data"].get("text/markdown", "")))
                text.append(str(out["data"].get("text/plain", "")))
    return "\n".join(text)


def _n_images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells
               for out in cell.get("outputs", []))


def test_mtl_benchmarks_notebook_runs() -> None:
    nb, seconds = _execute("mtl_benchmarks.ipynb", timeout=120)
    text = _outputs(nb)
    assert "aligned_mtl" in text and "pcgrad" in text  # aggregator table
    assert "conflicting gradients at" in text  # landscape re-run
    # registry listing: every registered weighting, aggregator and architecture is named
    from eegmtl.models.lenet_mtl import LENET_ARCHITECTURES
    from eegmtl.mtl.aggregators import AGGREGATORS
    from eegmtl.mtl.weightings import WEIGHTINGS

    for name in [*WEIGHTINGS, *AGGREGATORS, *LENET_ARCHITECTURES]:
        assert f"`{name}`" in text, name
    assert "converged" in text  # converged vision grid cell (records, summary or a note)
    assert _n_images(nb) >= 1
    assert seconds < 120


@pytest.mark.realdata
def test_bci2b_analysis_notebook_runs(bci2b_dir: Path) -> None:
    nb, seconds = _execute("bci2b_analysis.ipynb", timeout=150)
    text = _outputs(nb)
    assert "fits:" in text  # the small models were fitted (data present)
    assert _n_images(nb) >= 4  # per-subject, confusion x2, weights, latent
    # section 6 from the committed records: the chosen pipelines of SD and SI, two figures
    assert text.count("← chosen on validation") == 2 and _n_images(nb) >= 6
    # section 7 from the committed MOABB cross-subject records: figure and alignment table
    assert "Alignment, accuracy (+EA minus plain" in text and _n_images(nb) >= 7
    assert seconds < 150
