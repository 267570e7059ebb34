"""Sweeps on Dask and Ray give the serial run's records bit for bit (eegmtl.parallel).

One local Dask cluster (2 worker processes, started by ``parallel_backend``) and one local Ray
instance (2 CPUs) serve the whole module; the runners find them by address (Dask) or as the
running session (Ray).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pytest

from eegmtl.evaluation.records import KEY_COLUMNS
from eegmtl.evaluation.runner import run_protocol
from eegmtl.parallel import (
    describe_backend,
    imap_unordered,
    parallel_backend,
    pinned_threads,
    worker_threads,
)

sys.path.insert(0, str(Path(__file__).parent))  # the shared synthetic-data helpers
from evaluation_synth import synthetic_data  # noqa: E402

distributed = pytest.importorskip("distributed")
ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

METHODS = ["CSP+LDA", "TS+SVM"]


@pytest.fixture(scope="module")
def dask_address():
    """A local 2-worker cluster, started by ``parallel_backend`` itself and closed on exit."""
    with parallel_backend("dask", 2):
        client = distributed.default_client()
        assert len(client.ncores()) == 2
        yield client.scheduler.address
    with pytest.raises(ValueError):  # no client left behind
        distributed.default_client()


@pytest.fixture(scope="module")
def ray_session():
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def engine(request, dask_address):
    """(backend, address) of a module-wide cluster; Ray's session is found running."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
        return "ray", None
    return "dask", dask_address


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


def _assert_same_records(serial: pd.DataFrame, other: pd.DataFrame) -> None:
    """Equal bit for bit, every column but the fit time."""
    assert len(serial) == len(other) > 0
    pd.testing.assert_frame_equal(_sorted(serial).drop(columns="time"),
                                  _sorted(other).drop(columns="time"), check_exact=True)


# --------------------------------------------------------------------------- EEG sweeps
@pytest.fixture(scope="module")
def synth():
    return synthetic_data()


@pytest.fixture(scope="module")
def synth_serial(synth):
    return run_protocol("sd", METHODS, subjects=[1, 2], data=synth, folds=[1], progress=False)


@pytest.mark.parametrize("engine", ["dask", "ray"], indirect=True)
def test_synthetic_sweep_equals_serial(engine, synth, synth_serial, tmp_path):
    backend, address = engine
    path = tmp_path / "sd.csv"
    df = run_protocol("sd", METHODS, subjects=[1, 2], data=synth, folds=[1], progress=False,
                      n_jobs=2, backend=backend, address=address, results_path=path)
    _assert_same_records(synth_serial, df)
    assert set(df["pipeline"]) == set(METHODS) and set(df["subject"]) == {1, 2}
    # the record file on disk holds the same rows (merged by the driver)
    assert len(pd.read_csv(path)) == len(df)


@pytest.mark.realdata
@pytest.mark.parametrize("engine", ["dask", "ray"], indirect=True)
def test_real_sweep_equals_serial(engine, bci2b_dir):
    from eegmtl.evaluation.runner import load_default_data

    data = load_default_data([1, 2])
    kw = dict(subjects=[1, 2], data=data, folds=[1], progress=False)
    serial = run_protocol("sd", METHODS, **kw)
    backend, address = engine
    _assert_same_records(serial, run_protocol("sd", METHODS, n_jobs=2, backend=backend,
                                              address=address, **kw))


# --------------------------------------------------------------------------- vision grid
def test_vision_grid_on_dask_equals_serial(dask_address, tmp_path):
    from eegmtl.benchmarks.datasets import MultiTaskSplits, MultiTaskTensorDataset
    from eegmtl.benchmarks.runner import run_grid

    def part(n: int, seed: int) -> MultiTaskTensorDataset:
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 10, (n, 2), generator=g)
        return MultiTaskTensorDataset(torch.rand(n, 1, 36, 36, generator=g),
                                      {"left": y[:, 0], "right": y[:, 1]})

    splits = MultiTaskSplits(train=part(64, 0), val=part(32, 1), test=part(32, 2),
                             task_names=("left", "right"))
    kw = dict(epochs=1, splits=splits, device="cpu", conflict_every=2, batch_size=32,
              threads=1)
    grid = (["multimnist"], ["ew", "rlw"])
    serial = run_grid(*grid, results_path=tmp_path / "a.csv", **kw)
    par = run_grid(*grid, results_path=tmp_path / "b.csv", n_jobs=2, backend="dask",
                   address=dask_address, **kw)
    key = ["method", "task"]
    for a, b in ((serial, par), (pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))):
        assert len(a) == 6 and a["delta_p"].notna().all()  # 2 runs x (2 tasks + avg)
        pd.testing.assert_frame_equal(
            a.sort_values(key).reset_index(drop=True).drop(columns="time"),
            b.sort_values(key).reset_index(drop=True).drop(columns="time"), check_exact=True)


# --------------------------------------------------------------------------- the engine layer
def _threads(_: int) -> tuple[int, int]:
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info()]
    import torch as worker_torch

    return worker_torch.get_num_threads(), max(blas, default=1)


def test_dask_workers_run_one_thread_each(dask_address):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship _threads by value
    try:
        got = list(imap_unordered(_threads, range(4), backend="dask", address=dask_address))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert got == [(1, 1)] * 4


def test_pinned_threads_restores_torch_threads():
    before = torch.get_num_threads()
    with pinned_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with pinned_threads(None):
        assert torch.get_num_threads() == before


def test_worker_threads_default_one_in_workers_only():
    assert worker_threads(None, "loky", 1) is None  # serial, in this process: untouched
    assert worker_threads(None, "loky", 2) == 1
    assert worker_threads(None, "dask", 1) == 1
    assert worker_threads(4, "ray", 2) == 4
    with pytest.raises(ValueError, match="threads per worker"):
        worker_threads(0, "loky", 2)


def test_bad_backend_arguments_say_how_to_fix():
    with pytest.raises(ValueError, match="needs backend 'dask' or 'ray'"):
        with parallel_backend("loky", 2, address="tcp://127.0.0.1:8786"):
            pass
    with pytest.raises(ValueError, match="n_jobs"):
        with parallel_backend("dask", 0):
            pass


def test_cli_options_and_command_log():
    from eegmtl.experiments import protocol
    from eegmtl.experiments._common import command_line

    p = argparse.ArgumentParser()
    protocol.add_arguments(p)
    argv = ["--backend", "dask", "--address", "tcp://h:8786", "--threads-per-worker", "2"]
    args = p.parse_args(argv)
    assert (args.backend, args.address, args.torch_threads, args.n_jobs) == (
        "dask", "tcp://h:8786", 2, 1)
    assert p.parse_args(["--torch-threads", "3"]).torch_threads == 3  # the older name
    args.argv, args.command_prefix = argv, ["eegmtl", "sd"]
    assert command_line(args).endswith("  # dask @ tcp://h:8786")
    assert describe_backend("ray", 2) == "ray (local, 2 workers)"


def test_command_log_writes_checkout_paths_relative(tmp_path):
    """Absolute paths inside an eegmtl checkout are logged relative to its root (the logged
    command re-runs from the root of any clone); paths elsewhere stay as typed."""
    from eegmtl.experiments._common import command_line

    clone = tmp_path / "other_clone"
    (clone / "pipelines" / "results").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("")
    records = clone / "pipelines" / "results" / "vision_converged.csv"
    outside = tmp_path / "elsewhere" / "r.csv"
    args = argparse.Namespace(command_prefix=["eegmtl", "vision"], argv=[
        "--results", str(records), f"--checkpoint-dir={outside}", "--epochs", "3"])
    assert command_line(args) == (
        "eegmtl vision --results pipelines/results/vision_converged.csv "
        f"--checkpoint-dir={outside} --epochs 3")


def _grow_and_report(keep_alive: bool, mb: int) -> int:
    """Hold ``mb`` more MB in this process (a loky worker) and return its pid."""
    import os as _os
    import sys as _sys
    import time as _time

    import numpy as _np

    from eegmtl.parallel import keep_worker_alive

    if keep_alive:
        keep_worker_alive()
    store = _sys.__dict__.setdefault("_eegmtl_test_held", [])  # lives as long as the worker
    store.append(_np.ones(mb * 2**20 // 8))  # touched pages: resident memory
    _time.sleep(1.1)  # loky checks a worker's memory at most once a second
    return _os.getpid()


@pytest.mark.parametrize("keep_alive", [False, True])
def test_keep_worker_alive_stops_loky_replacing_a_growing_worker(keep_alive):
    """A worker whose memory grows past 300 MB is replaced by loky unless the fit raised the
    threshold (``_run_task`` does, through keep_worker_alive)."""
    pytest.importorskip("psutil")  # loky measures the memory of its workers with psutil
    from joblib.externals.loky import get_reusable_executor

    ex = get_reusable_executor(max_workers=1, reuse=False, kill_workers=True)
    try:
        pids = [ex.submit(_grow_and_report, keep_alive, 200).result() for _ in range(4)]
    finally:
        ex.shutdown(wait=True, kill_workers=True)
    assert (len(set(pids)) == 1) is keep_alive, pids
