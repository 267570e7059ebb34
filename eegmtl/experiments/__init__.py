"""The runs users start, as library code: every experiment module has
``add_arguments(parser)`` and ``run(args)``, so ``eegmtl <command>``, ``python
pipelines/<script>.py`` and a notebook run the same code.

=============  =========================================  ======================================
command        module                                     what it runs
=============  =========================================  ======================================
train          :mod:`~eegmtl.experiments.train_mixnet`    MixNet SD on the competition split
sd, si         :mod:`~eegmtl.experiments.protocol`        SD / SI evaluation of any methods
ablations      :mod:`~eegmtl.experiments.ablations`       MixNet Tables S1-S3, chosen on validation
csp-lda        :mod:`~eegmtl.experiments.csp_lda`         CSP-type baselines, competition split
vision         :mod:`~eegmtl.experiments.vision`          MultiMNIST-family grid of MTL methods
toy            :mod:`~eegmtl.experiments.toy`             two-task landscape
bench mtl      :mod:`~eegmtl.experiments.bench_mtl`       MTL step time per aggregator
bench mixnet   :mod:`~eegmtl.experiments.bench_mixnet`    MixNet fit time, memory, latency
bench si       :mod:`~eegmtl.experiments.bench_si`        SI fit times and where they go
benchmark      :mod:`~eegmtl.experiments.benchmark`       every pipeline, SD + SI, 3 seeds
bench cuda     :mod:`~eegmtl.experiments.bench_gpu`       step ratios, fit, latency on a device
bench fits     :mod:`~eegmtl.experiments.bench_fits`      fits at once: eager, batched, compiled
ensemble       :mod:`~eegmtl.experiments.ensemble`        soft vote of fold models per subject
select-best    :mod:`~eegmtl.experiments.select_best`     best MixNet-family pipeline on validation
moabb-si       :mod:`~eegmtl.experiments.moabb_cross_    MOABB cross-subject evaluation with its
               subject`                                   target-access modes, plain and +EA
=============  =========================================  ======================================

Importing this package imports no experiment (nor torch); :func:`load` imports one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from eegmtl.parallel import WorkerDiedError

__all__ = ["COMMANDS", "Command", "Terminated", "build_parser", "guarded", "load", "main"]


@dataclass(frozen=True)
class Command:
    """An experiment command: its module, one-line help, the script that runs it from a
    checkout and extra keyword arguments of the module's ``add_arguments``."""

    module: str
    help: str
    script: str
    options: dict[str, Any] = field(default_factory=dict)


#: command name -> :class:`Command`
COMMANDS: dict[str, Command] = {
    "train": Command("train_mixnet", "train MixNet subject-dependently (train sessions 1-3, "
                     "test 4-5) on chosen subjects and record the test scores",
                     "train_mixnet.py"),
    "sd": Command("protocol", "subject-dependent evaluation (5 folds per subject on sessions "
                  "1-3, test sessions 4-5) of any registered methods", "subject_dependent.py",
                  {"protocol": "subject_dependent"}),
    "si": Command("protocol", "subject-independent evaluation (leave one subject out, "
                  "validation folds by subject) of any registered methods",
                  "subject_independent.py", {"protocol": "subject_independent"}),
    "ablations": Command("ablations", "MixNet ablations (margin, latent size, warm-up; Tables "
                         "S1-S3), chosen on validation accuracy", "ablations.py"),
    "csp-lda": Command("csp_lda", "CSP-type baselines on the competition split (train "
                       "sessions 1-3, test 4-5)", "csp_lda.py"),
    "vision": Command("vision", "MultiMNIST / MultiFashion / MultiFashion+MNIST benchmarks of "
                      "the MTL methods", "vision.py"),
    "toy": Command("toy", "two-task landscape: trajectories of the MTL methods, plot and table",
                   "toy.py"),
    "bench-mtl": Command("bench_mtl", "step time of every aggregator relative to equal "
                         "weighting", "bench_mtl.py"),
    "bench-mixnet": Command("bench_mixnet", "MixNet fit time, memory and single-trial latency",
                            "bench_mixnet.py"),
    "bench-si": Command("bench_si", "subject-independent fit times of MixNet and FBCSP+SVM "
                        "and where they go", "bench_si.py"),
    "benchmark": Command("benchmark", "the whole benchmark: every registered pipeline, SD and "
                         "SI (with and without alignment), 3 seeds, parallel and resumable "
                         "(--preset full|tiny)", "benchmark.py"),
    "bench-cuda": Command("bench_gpu", "device check: MTL step ratios, MixNet fit time, "
                          "inference latency and peak memory on --device (default cuda)",
                          "bench_gpu.py"),
    "bench-fits": Command("bench_fits", "fits at once on one device: training-step time per "
                          "fit of the deep baselines, eager against K fits batched into one "
                          "vmapped model and against torch.compile", "bench_fits.py"),
    "bench-roofline": Command("bench_roofline", "what bounds the recipe networks' GPU fits: "
                              "FLOPs, operators and traffic counted on the CPU against the "
                              "records' fit times and the device's peaks; the full preset's "
                              "arithmetic floor", "bench_roofline.py"),
    "select-best": Command("select_best", "choose the best MixNet-family pipeline on "
                           "validation accuracy only (SD fold 1) and write the choice",
                           "select_best.py"),
    "ensemble": Command("ensemble", "fold-model ensembles: average the class probabilities of "
                        "the K fold models of each subject from stored test predictions "
                        "(--predictions-dir) and record them", "ensemble.py"),
    "moabb-si": Command("moabb_cross_subject", "cross-subject evaluation by MOABB "
                        "(CrossSubjectEvaluation, cs_mode: train, unlabelled or labelled target "
                        "slices) of any registered methods, plain and Euclidean-aligned",
                        "moabb_cross_subject.py"),
}


def load(name: str) -> ModuleType:
    """Import the experiment module of command ``name``."""
    if name not in COMMANDS:
        raise KeyError(f"unknown experiment {name!r}; known: {sorted(COMMANDS)}")
    module = f"eegmtl.experiments.{COMMANDS[name].module}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise SystemExit(f"{module} is not part of this eegmtl version; `eegmtl {name}` is "
                         "not available.") from None


def build_parser(name: str, parser: argparse.ArgumentParser | None = None,
                 prog: str | None = None) -> argparse.ArgumentParser:
    """``parser`` (default: a new one named ``prog``) with the options of command ``name``."""
    parser = parser or argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    load(name).add_arguments(parser, **COMMANDS[name].options)
    return parser


def main(name: str, argv: Sequence[str] | None = None, *, via_script: bool = False) -> int:
    """Parse ``argv`` for command ``name`` and run it; returns the exit status.

    The run records the command that started it: ``python pipelines/<script> ...`` when
    ``via_script`` (the checkout's thin scripts), else ``eegmtl <command> ...``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS[name]
    words = name.split("-", 1) if name.startswith("bench-") else [name]  # eegmtl bench mtl
    prefix = ["python", f"pipelines/{command.script}"] if via_script else ["eegmtl", *words]
    prog = " ".join(prefix[1:] if via_script else prefix)
    args = build_parser(name, prog=prog).parse_args(argv)
    args.argv, args.command_prefix = argv, prefix
    module = load(name)
    from eegmtl.experiments._common import start_command

    start_command()
    status = guarded(prog, lambda: module.run(args))
    return status if isinstance(status, int) else 0


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM during a command (a
    scheduler's time limit, ``kill``): handled like Ctrl-C, so that the command stops the
    same orderly way (records of finished fits kept, summaries written)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


def guarded(prog: str, run: Callable[[], Any]) -> Any:
    """``run()``, with a wrong input reported as a command-line tool reports it.

    A missing file or folder (:class:`FileNotFoundError`, e.g.
    :class:`~eegmtl.config.DataNotFoundError`) or an invalid value (:class:`ValueError`: bad
    shapes, NaNs, labels, a checkpoint of another run...) ends with ``<prog>: error:
    <message>`` on stderr and exit status 2, without a traceback; Ctrl-C ends with
    ``<prog>: interrupted`` and status 130, SIGTERM (while ``run`` runs in the main thread)
    with ``<prog>: terminated`` and status 143 — records of finished fits are already written,
    and the evaluation commands write their summaries on the way out. A parallel worker that
    died (:class:`~eegmtl.parallel.WorkerDiedError`) ends with ``<prog>: error: <what was
    kept and how to resume>`` and status 1, its summaries written the same way.
    With ``EEGMTL_DEBUG=1`` in the environment the exception propagates unchanged.
    """
    import signal
    import threading

    installed = threading.current_thread() is threading.main_thread()
    if installed:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if os.environ.get("EEGMTL_DEBUG", "").strip() not in ("", "0"):
            return run()
        return _guarded(prog, run)
    finally:
        if installed:  # None: the handler was not set from Python; the default is restored
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _guarded(prog: str, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except Terminated:
        print(f"\n{prog}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except WorkerDiedError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        kind = "" if isinstance(exc, FileNotFoundError) else f"{type(exc).__name__}: "
        print(f"{prog}: error: {kind}{exc}\n(EEGMTL_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2
