"""Small helpers shared by the experiments: option parsing, the command that ran, paths."""

from __future__ import annotations

import argparse
import csv
import shlex
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eegmtl._io import file_lock
from eegmtl.config import checkout_root, is_checkout
from eegmtl.evaluation.overrides import parse_value

__all__ = ["SUMMARY_MARGIN_S", "add_parallel_arguments", "add_scheduling_arguments",
           "check_time_limit", "command_line", "deadline_after", "device_sync", "display_path",
           "elapsed_s", "n_jobs_int", "non_negative_int", "parse_subjects", "parse_value",
           "positive_int", "set_torch_threads", "start_command", "timed_ms"]

#: when the experiment code was imported (a command started right after it, as from the
#: command line, counts from here, so that its reported wall time includes the imports)
_IMPORTED = time.perf_counter()
_started: float | None = None
#: how soon after the import a first command still counts from the import
_IMPORT_GRACE_S = 30.0


def start_command() -> None:
    """Mark the start of a command (:func:`eegmtl.experiments.main` calls it): the first
    command of a process started right after the import of the experiment code (the command
    line) counts from that import; any other (a notebook, a driver script, a later command of
    the same process) from this call, so that its wall time and its ``--time-limit`` do not
    include what ran before it."""
    global _started
    now = time.perf_counter()
    first = _started is None and now - _IMPORTED < _IMPORT_GRACE_S
    _started = _IMPORTED if first else now


def elapsed_s() -> float:
    """Seconds since the start of the current command (:func:`start_command`; before the
    first command, since the import of the experiment code)."""
    return time.perf_counter() - (_IMPORTED if _started is None else _started)

#: seconds a time-limited run (``--time-limit``) keeps for its summaries after the last fit
SUMMARY_MARGIN_S = 10.0


def deadline_after(limit: float) -> float:
    """``time.time()`` by which the last fit of a run given ``limit`` seconds from the start
    of the command (:func:`elapsed_s`) should end: the start + ``limit`` -
    :data:`SUMMARY_MARGIN_S`. Raises SystemExit for a ``limit`` not above that margin."""
    return time.time() - elapsed_s() + check_time_limit(limit) - SUMMARY_MARGIN_S


def check_time_limit(limit: float) -> float:
    """``limit`` (``--time-limit``), or SystemExit when it is not above
    :data:`SUMMARY_MARGIN_S`."""
    if not limit > SUMMARY_MARGIN_S:
        raise SystemExit(f"--time-limit must be more than the {SUMMARY_MARGIN_S:g} s kept for "
                         f"the summaries, got {limit:g}.")
    return float(limit)


def add_scheduling_arguments(parser: argparse.ArgumentParser, *, expected: str) -> None:
    """``--batch-fits``, ``--batch-speedup`` and ``--time-limit`` (``run_protocol``'s
    ``batch_fits``, ``batch_speedup`` and, through :func:`deadline_after`, ``deadline``);
    ``expected`` says where a fit's expected time comes from."""
    p = parser
    p.add_argument("--batch-fits", type=int, default=1, metavar="K",
                   help="train up to K fits of a braindecode pipeline at once as one stacked "
                        "network (eegmtl.eeg.batched_fit; for launch-bound GPUs; default 1: "
                        "one by one)")
    p.add_argument("--batch-speedup", type=float, default=1.0, metavar="X",
                   help="with --batch-fits and --time-limit: how many times faster a fit runs "
                        "in a batch than alone (as `eegmtl bench fits` measured it on the "
                        "device), so that a batch (of up to K fits) is expected to take "
                        "max(1, K/X) fits' time "
                        "(default 1: no gain)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="end within S seconds of the start (S > 10: the last 10 s are kept "
                        "for the summaries): a fit starts only if it is "
                        f"expected to end before then ({expected}, then by the times of this "
                        "run's fits of its pipeline; fits without an expected time only while "
                        "time is left); the rest is left for the next run of the same command, "
                        "which resumes it. Summaries are written as usual")


def device_sync(device: Any) -> None:
    """Wait for the work queued on ``device`` (a ``torch.device``) when it is a GPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(fn: Callable[[], Any], rounds: int, device: Any, *, warmup: int = 0,
             barrier: Any = None) -> list[float]:
    """Milliseconds of each of ``rounds`` calls of ``fn`` after ``warmup`` untimed ones, every
    call closed by :func:`device_sync` (device time, not launch time). ``barrier`` (a
    ``multiprocessing.Barrier``) is waited on before the timed calls, so that processes
    measuring together start together."""
    for _ in range(warmup):
        fn()
    device_sync(device)
    if barrier is not None:
        barrier.wait()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        device_sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type of counts (epochs, workers, threads): an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type of seeds (numpy's ``SeedSequence`` takes integers >= 0)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"seeds are integers >= 0, got {text!r}")
    return value


def n_jobs_int(text: str) -> int:
    """argparse type of joblib's ``n_jobs``: a number of workers, or -1 for one per core
    (-2: all but one, ...); 0 means nothing."""
    value = _int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 workers: give a positive number, or -1 for one "
                                         "per core")
    return value


def parse_subjects(values: list[str], valid: Iterable[int] | None = None) -> list[int]:
    """``["1..9"]``, ``["1-3", "7"]`` or ``["1", "2"]`` -> sorted subject list; with ``valid``
    (e.g. ``range(1, 10)``, BCIC IV 2b's) a subject outside it stops the command with the
    valid ones (:func:`eegmtl.eeg.checks.check_subjects`)."""
    out: set[int] = set()
    for v in values:
        for part in str(v).split(","):
            for sep in ("..", "-"):
                if sep in part:
                    a, b = part.split(sep)
                    out.update(range(int(a), int(b) + 1))
                    break
            else:
                out.add(int(part))
    if valid is not None:
        from eegmtl.eeg.checks import check_subjects

        try:
            return check_subjects(sorted(out), valid, name="--subjects")
        except ValueError as err:
            raise SystemExit(str(err)) from None
    return sorted(out)


def command_line(args: argparse.Namespace) -> str:
    """The command that ran: ``args.command_prefix`` (e.g. ``["eegmtl", "sd"]`` or
    ``["python", "pipelines/subject_dependent.py"]``) followed by ``args.argv``."""
    prefix = list(getattr(args, "command_prefix", None) or ["eegmtl"])
    argv = [_checkout_relative(a) for a in getattr(args, "argv", None) or []]
    command = shlex.join([*prefix, *argv])
    backend = getattr(args, "backend", None)
    if backend in ("dask", "ray"):  # where it ran (not part of any config hash)
        from eegmtl.parallel import describe_backend

        command += f"  # {describe_backend(backend, args.n_jobs, args.address)}"
    return command


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint-dir`` / ``--no-fit-checkpoints`` (read by :func:`fit_checkpoint_dir`)."""
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="epoch checkpoints of the fits in progress (braindecode baselines, "
                             "MixNet family), so that a rerun continues an interrupted fit "
                             "exactly; default ~/.cache/eegmtl/eeg_fits "
                             "($EEGMTL_CACHE_DIR/eeg_fits)")
    parser.add_argument("--no-fit-checkpoints", action="store_true",
                        help="no epoch checkpoints: an interrupted fit starts over")


def fit_checkpoint_dir(args: argparse.Namespace) -> Path | None:
    """The ``checkpoint_dir`` of :func:`eegmtl.evaluation.run_protocol` for parsed
    :func:`add_checkpoint_arguments`."""
    from eegmtl.benchmarks._cache import cache_dir

    if args.no_fit_checkpoints:
        return None
    return Path(args.checkpoint_dir) if args.checkpoint_dir else cache_dir(None, "eeg_fits")


def add_parallel_arguments(parser: argparse.ArgumentParser, *, threads: bool = True) -> None:
    """``--n-jobs``, ``--backend``, ``--address`` (and ``--threads-per-worker``, stored as
    ``torch_threads``): where the fits run (:func:`eegmtl.parallel.parallel_backend`)."""
    p = parser
    p.add_argument("--n-jobs", type=n_jobs_int, default=1,
                   help="parallel fits; with --backend dask/ray and no --address, the size of "
                        "the local cluster started for the run (default 1)")
    p.add_argument("--backend", default="loky",
                   help="loky (default), dask or ray (pip install 'eegmtl[distributed]'), or "
                        "another joblib backend; results do not depend on it")
    p.add_argument("--address", default=None,
                   help="running cluster to use: Dask scheduler (tcp://host:8786) or Ray "
                        "(auto, ray://host:10001); workers need eegmtl installed")
    if threads:
        p.add_argument("--threads-per-worker", "--torch-threads", dest="torch_threads",
                       type=positive_int, default=1,
                       help="torch and BLAS threads per fit (default 1)")


def _checkout_relative(token: str) -> str:
    """``token`` with an absolute path (``--opt=PATH`` too) written by :func:`display_path`,
    so that logged commands re-run from the root of any clone; other tokens unchanged."""
    head, eq, value = token.partition("=") if token.startswith("--") else ("", "", token)
    if not value or not Path(value).is_absolute():
        return token
    return head + eq + display_path(Path(value))


def display_path(path: Path) -> str:
    """``path`` relative to the root of the eegmtl checkout holding it (no machine paths in
    files): the checkout this package runs from, else the nearest one above ``path``."""
    resolved = Path(path).resolve()
    own = checkout_root()
    if own is not None and resolved.is_relative_to(own):
        return resolved.relative_to(own).as_posix()
    root = next((r for r in resolved.parents if is_checkout(r)), None)
    return resolved.relative_to(root).as_posix() if root else Path(path).as_posix()


def minutes(seconds: float) -> str:
    """A duration for people: ``"12.5 min"``, above two hours ``"150 min (2.5 h)"``, above two
    days ``"47204 min (787 h, 32.8 days)"``."""
    m = seconds / 60.0
    if m < 120:
        return f"{m:.1f} min"
    h = m / 60.0
    return f"{m:.0f} min ({h:.1f} h)" if h < 48 else f"{m:.0f} min ({h:.0f} h, {h / 24:.1f} days)"


def set_torch_threads(n: int | None) -> None:
    """``torch.set_num_threads(n)`` when torch is installed and ``n`` is given."""
    if n is None:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(n))


def log_invocation(results: Path, command: str, shard: str, start: float, n_runs: int) -> None:
    """Append one line (start, wall, runs, shard, file, command) to ``vision_runs.csv``."""
    path = results.parent / "vision_runs.csv"
    with file_lock(path):
        new = not path.is_file()
        with open(path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["start", "wall_s", "n_runs", "shard", "results", "command"])
            w.writerow([
                datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M"),
                f"{time.time() - start:.0f}", n_runs, shard, results.name, command,
            ])


def log_line(msg: str) -> None:
    """Print ``msg`` with the time of day (the grid's progress log)."""
    print(f"{datetime.now().strftime('%H:%M:%S')} {msg}", flush=True)
