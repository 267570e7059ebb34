"""Small helpers shared by the experiments: option parsing, the command that ran, paths."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import Any

from eegmtl.config import checkout_root

__all__ = ["T_START", "command_line", "display_path", "parse_subjects", "parse_value",
           "set_torch_threads"]

#: start of the process's experiment code (wall times reported include the imports after it)
T_START = time.perf_counter()


def parse_subjects(values: list[str]) -> list[int]:
    """``["1..9"]``, ``["1-3", "7"]`` or ``["1", "2"]`` -> sorted subject list."""
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
    return sorted(out)


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, else the text."""
    low = text.lower()
    if low in {"true", "false"}:
        return low == "true"
    if low in {"none", "null"}:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def command_line(args: argparse.Namespace) -> str:
    """The command that ran: ``args.command_prefix`` (e.g. ``["eegmtl", "sd"]`` or
    ``["python", "pipelines/subject_dependent.py"]``) followed by ``args.argv``."""
    prefix = list(getattr(args, "command_prefix", None) or ["eegmtl"])
    return shlex.join([*prefix, *(getattr(args, "argv", None) or [])])


def display_path(path: Path) -> str:
    """``path`` relative to the checkout root when inside it (no machine paths in files)."""
    root = checkout_root()
    if root is not None:
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def set_torch_threads(n: int | None) -> None:
    """``torch.set_num_threads(n)`` when torch is installed and ``n`` is given."""
    if n is None:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(n))

