"""Where parallel fits run: joblib locally (loky), on a Dask cluster or on Ray.

A sweep over subject × fold × seed × method is embarrassingly parallel, so whole fits are
the unit of work. The runners submit them with ``joblib.Parallel`` inside
:func:`parallel_backend`, which selects the engine with ``joblib.parallel_config``:

- ``"loky"`` (default) and the other joblib backends (``"threading"``,
  ``"multiprocessing"``): worker processes (or threads) on this machine;
- ``"dask"``: a ``dask.distributed.Client`` connected to the scheduler at ``address``, or
  to a local cluster of ``n_jobs`` single-threaded worker processes started here (and closed
  afterwards), through joblib's ``"dask"`` backend;
- ``"ray"``: ``ray.init(address)`` (``"auto"``, ``"ray://host:10001"``) or a local Ray
  instance with ``n_jobs`` CPUs (shut down afterwards), through Ray's joblib backend
  (``ray.util.joblib``).

Dask and Ray are imported only when chosen (``pip install eegmtl[distributed]``). A Dask
client or a Ray session that is already running in this process is used as it is and left
running. The engine decides where a fit runs, never what it computes: every fit is seeded from
its own (seed, subject, fold) and runs with a fixed number of threads (:func:`pinned_threads`),
so the records are the same on every backend and the backend is not part of any config hash.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = [
    "BACKENDS",
    "DISTRIBUTED",
    "WorkerDiedError",
    "describe_backend",
    "imap_unordered",
    "keep_worker_alive",
    "parallel_backend",
    "pinned_threads",
    "worker_deaths",
    "worker_threads",
]

class WorkerDiedError(RuntimeError):
    """A worker process of a parallel run died during a task (killed, out of memory, a crash
    in native code); raised in place of the backend's own error, with what was kept."""


def worker_deaths() -> tuple[type[BaseException], ...]:
    """The exceptions by which joblib's process backends report a worker that died (loky's
    ``TerminatedWorkerError``, the standard library's ``BrokenProcessPool``)."""
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky.process_executor import TerminatedWorkerError

    return (TerminatedWorkerError, BrokenProcessPool)


#: backends the command-line options offer (any other joblib backend name also works)
BACKENDS = ("loky", "dask", "ray")
#: backends that run on a cluster engine (and accept ``address``)
DISTRIBUTED = ("dask", "ray")
#: environment variables that size the BLAS / OpenMP thread pools of a new worker process
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

#: memory growth (bytes) a loky worker may show before loky replaces it by a fresh process
#: (loky's own threshold is 300 MB, see :func:`keep_worker_alive`)
WORKER_MEMORY_GROWTH = 4 * 2**30

_INSTALL_HINT = "install the distributed extra: pip install 'eegmtl[distributed]'"


def worker_threads(threads: int | None, backend: str, n_jobs: int) -> int | None:
    """Threads of one fit: ``threads`` when given, else 1 whenever fits run in workers
    (``n_jobs != 1`` or a cluster backend), so that workers do not oversubscribe the cores;
    ``None`` (leave the process as it is) for a serial run in this process."""
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads per worker must be >= 1, got {threads}.")
        return int(threads)
    return 1 if (n_jobs != 1 or backend in DISTRIBUTED) else None


@contextlib.contextmanager
def pinned_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads and ``n`` BLAS / OpenMP threads.

    torch is limited with ``torch.set_num_threads`` (only when the process has imported
    torch), BLAS and OpenMP with ``threadpoolctl.threadpool_limits`` when threadpoolctl is
    installed. Both are restored on exit, so the block may run in the calling process.
    ``n=None`` changes nothing. The limits are per process: fits of the ``"threading"``
    backend share them.
    """
    if n is None:
        yield
        return
    n = int(n)
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
        else:
            stack.enter_context(threadpool_limits(limits=n))
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


def keep_worker_alive(limit: int = WORKER_MEMORY_GROWTH) -> None:
    """Let this loky worker grow by ``limit`` bytes before loky replaces it.

    After each task loky compares the worker's resident memory with its size after the
    first task and, above 300 MB of growth (``_MAX_MEMORY_LEAK_SIZE`` of
    ``joblib.externals.loky.process_executor``), stops the worker and starts a new one, which
    must import torch again and, on a GPU, create a new CUDA context. One deep fit after another
    grows a worker past 300 MB without leaking (CUDA kernels and libraries loaded on first use,
    the allocator's cached blocks, the touched pages of the memory-mapped trials), so a run of
    many fits on a GPU replaced its workers after about one fit in three. Called at the start
    of every fit; it only raises the threshold (never lowers one set higher), and does
    nothing outside a loky worker or when loky lacks the setting.
    """
    mod = sys.modules.get("joblib.externals.loky.process_executor")
    current = getattr(mod, "_MAX_MEMORY_LEAK_SIZE", None)
    if isinstance(current, int) and current < int(limit):
        mod._MAX_MEMORY_LEAK_SIZE = int(limit)  # type: ignore[union-attr]


def describe_backend(backend: str, n_jobs: int, address: str | None = None) -> str:
    """One line naming where the fits ran, for command logs (e.g. ``"dask @ tcp://h:8786"``,
    ``"ray (local, 4 workers)"``, ``"loky (n_jobs=2)"``)."""
    if backend in DISTRIBUTED:
        return f"{backend} @ {address}" if address else f"{backend} (local, {n_jobs} workers)"
    return f"{backend} (n_jobs={n_jobs})"


def _check(backend: str, n_jobs: int, address: str | None) -> None:
    if not isinstance(backend, str) or not backend:
        raise ValueError(f"backend must be a joblib backend name such as {BACKENDS}, "
                         f"got {backend!r}.")
    if address is not None and backend not in DISTRIBUTED:
        raise ValueError(f"address={address!r} needs backend 'dask' or 'ray', not {backend!r}; "
                         "pass --backend dask (scheduler address) or --backend ray "
                         "('auto' or 'ray://host:10001').")
    if n_jobs == 0:
        raise ValueError("n_jobs must be >= 1, or negative as in joblib (-1: all cores), got 0.")


@contextlib.contextmanager
def _dask(n_jobs: int, address: str | None, threads: int) -> Iterator[int]:
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ImportError(f"backend='dask' needs dask.distributed ({err}); "
                          f"{_INSTALL_HINT}") from None
    if address is not None:
        with Client(address) as client:
            yield sum(client.ncores().values())
        return
    try:  # a client already connected in this process (e.g. by the caller): use it
        from distributed import default_client

        client = default_client()
    except ValueError:
        client = None
    if client is not None:
        yield sum(client.ncores().values())
        return
    env = {f"distributed.nanny.pre-spawn-environ.{k}": threads for k in THREAD_ENV}
    with dask.config.set(env), LocalCluster(
        n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=":0",
    ) as cluster, Client(cluster) as client:
        yield sum(client.ncores().values())


@contextlib.contextmanager
def _ray(n_jobs: int, address: str | None, threads: int) -> Iterator[int]:
    try:
        import ray
        from joblib import register_parallel_backend
        from ray.util.joblib import register_ray
        from ray.util.joblib.ray_backend import RayBackend
    except ImportError as err:
        raise ImportError(f"backend='ray' needs ray ({err}); {_INSTALL_HINT}") from None

    class _RayBackend(RayBackend):
        # Ray's pool calls back on completion like loky does; joblib only disables unordered
        # generators for the stdlib multiprocessing pool that Ray's backend subclasses.
        supports_return_generator = True

    register_ray()
    register_parallel_backend("ray", _RayBackend)
    started = False
    if not ray.is_initialized():
        env = {k: str(threads) for k in THREAD_ENV}
        if address is None:
            ray.init(address="local", num_cpus=n_jobs, include_dashboard=False,
                     log_to_driver=False, runtime_env={"env_vars": env})
        else:
            ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env})
        started = True
    try:
        yield int(ray.cluster_resources().get("CPU", n_jobs))
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def parallel_backend(
    backend: str = "loky",
    n_jobs: int = 1,
    *,
    address: str | None = None,
    threads_per_worker: int = 1,
) -> Iterator[None]:
    """Context in which ``joblib.Parallel()`` runs on ``backend``.

    Parameters
    ----------
    backend : str
        ``"loky"`` (default), ``"dask"``, ``"ray"``, or any other joblib backend name.
    n_jobs : int
        Parallel workers. For ``"dask"`` / ``"ray"`` without ``address``: the size of the
        local cluster started for the block. With ``address`` the whole cluster is used.
    address : str, optional
        A running cluster: the Dask scheduler address (``"tcp://host:8786"``) or a Ray address
        (``"auto"``, ``"ray://host:10001"``). Only for ``"dask"`` and ``"ray"``.
    threads_per_worker : int
        BLAS / OpenMP threads of the worker processes started here (environment set before
        they start); the runners also pin each fit with :func:`pinned_threads`.

    Raises
    ------
    ValueError
        For an address with a local backend, or ``n_jobs=0``.
    ImportError
        When the chosen engine is not installed (with the pip command to install it).
    """
    from joblib import parallel_config

    n_jobs = int(n_jobs)
    _check(backend, n_jobs, address)
    if backend in DISTRIBUTED and n_jobs < 0:  # joblib's convention: -1 = every core here
        from joblib import cpu_count

        n_jobs = max(cpu_count() + 1 + n_jobs, 1)
    if backend not in DISTRIBUTED:
        with parallel_config(backend=backend, n_jobs=n_jobs):
            yield
        return
    engine = _dask if backend == "dask" else _ray
    with engine(n_jobs, address, int(threads_per_worker)) as cores:
        # joblib runs n_jobs=1 in the calling process; use every core of the cluster instead
        with parallel_config(backend=backend, n_jobs=max(int(cores), 1)):
            yield


def _pinned_call(fn: Callable[[Any], Any], item: Any, threads: int | None) -> Any:
    with pinned_threads(threads):
        return fn(item)


def imap_unordered(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    backend: str = "loky",
    n_jobs: int = 1,
    address: str | None = None,
    threads_per_worker: int | None = None,
) -> Iterator[Any]:
    """``fn(item)`` for every item on ``backend`` (see :func:`parallel_backend`), yielded as
    each finishes; every call runs under :func:`pinned_threads` with
    :func:`worker_threads` threads."""
    from joblib import Parallel, delayed

    threads = worker_threads(threads_per_worker, backend, n_jobs)
    with parallel_backend(backend, n_jobs, address=address,
                          threads_per_worker=threads or 1):
        yield from Parallel(return_as="generator_unordered")(
            delayed(_pinned_call)(fn, item, threads) for item in items)

