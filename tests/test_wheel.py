"""An installed wheel (no checkout) runs an experiment from any folder.

Builds the wheel from a copy of the sources, installs it with ``--no-deps`` into a temporary
venv that sees the test environment's packages (torch, MNE, MOABB, ...) but not its editable
eegmtl, and runs ``eegmtl sd --methods CSP+LDA --subjects 4 --only-folds 1`` from an empty
folder: the record file must land in ``./eegmtl-results``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Python of a temporary venv with the eegmtl wheel installed (built from the sources)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "eegmtl", src / "eegmtl", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "dist"), str(src)])
    wheel = next((tmp / "dist").glob("eegmtl-*.whl"))
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                      "['purelib'])"]).stdout.strip())
    # the test environment's packages, after the venv's own (a plain path: its .pth files,
    # among them the editable eegmtl finder, are not run)
    (site / "test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "-q", str(wheel)])
    return python


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EEGMTL_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg", **extra)
    return env


def test_wheel_imports_from_site_packages(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed), "-c", "import eegmtl, eegmtl.experiments.protocol; "
                "from eegmtl.config import checkout_root, results_dir; "
                "print(eegmtl.__file__); print(checkout_root()); print(results_dir())"],
               cwd=tmp_path, env=_clean_env())
    file, root, results = out.stdout.split()
    assert REPO not in Path(file).parents and "site-packages" in file
    assert root == "None" and results == "eegmtl-results"


def test_wheel_runs_sd_from_any_folder(installed: Path, tmp_path: Path) -> None:
    from eegmtl.config import DataNotFoundError, resolve_data_dir

    try:
        bci2b = resolve_data_dir("bcic_iv_2b")
    except DataNotFoundError as err:
        pytest.skip(str(err))
    work = tmp_path / "anywhere"
    work.mkdir()
    eegmtl = installed.parent / "eegmtl"
    _run([str(eegmtl), "sd", "--methods", "CSP+LDA", "--subjects", "4", "--only-folds", "1",
          "--no-progress"], cwd=work,
         env=_clean_env(EEGMTL_DATA_DIR=str(bci2b.parent),
                        MOABB_DOWNLOAD_PROVIDER="upstream"))
    records = work / "eegmtl-results" / "sd.csv"
    assert records.is_file(), sorted(p.name for p in work.rglob("*"))
    df = pd.read_csv(records)
    assert len(df) == 1
    assert (df.loc[0, "pipeline"], df.loc[0, "subject"], df.loc[0, "fold"]) == ("CSP+LDA", 4, 1)
    summary = (work / "eegmtl-results" / "sd_summary.md").read_text()
    assert "eegmtl sd --methods CSP+LDA --subjects 4 --only-folds 1" in summary
