"""Atomic file writes, JSON files and a file lock (standard library only).

Atomic writes (:func:`atomic_write`, :func:`atomic_open`) write a temporary file
``.<name>.<pid>.tmp`` in the target's folder, flush and ``fsync`` it, rename it over the target
with :func:`os.replace` (atomic on POSIX) and ``fsync`` the folder where the OS allows it. A
reader therefore sees the old file or the new one, never a truncated one. A temporary file left by
a writer that was killed (``SIGKILL``) is removed by the next save of the same target.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["atomic_open", "atomic_write", "file_lock", "read_json", "write_json"]


def _tmp_name(path: Path, pid: int | None = None) -> Path:
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def _remove_stale_temps(path: Path) -> None:
    """Delete ``.<name>.<pid>.tmp`` files of ``path`` whose writer process no longer exists."""
    prefix, me = f".{path.name}.", os.getpid()
    with contextlib.suppress(OSError):
        for tmp in path.parent.iterdir():
            name = tmp.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid = name[len(prefix):-len(".tmp")]
            if not pid.isdigit() or int(pid) == me or _pid_alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                tmp.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:  # make the rename durable (not supported on every OS / file system)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w", *, encoding: str = "utf-8",
    newline: str | None = "",
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` atomically when the block exits cleanly.

    Parameters
    ----------
    path : path-like
        Target file; its folder is created when missing.
    mode : {"w", "wb"}
        Text or binary.
    encoding, newline
        Text mode only; ``newline=""`` writes line endings unchanged.

    If the block raises, the temporary file is removed and the target is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = _tmp_name(path)
    kwargs: dict[str, Any] = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (``str`` as UTF-8, line endings unchanged) to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, **json_kwargs: Any) -> Path:
    """``json.dump(obj)`` to ``path`` atomically (``json_kwargs`` go to :func:`json.dumps`)."""
    return atomic_write(path, json.dumps(obj, **json_kwargs))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Load a JSON file; an empty or truncated file raises a :class:`ValueError` naming it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path} is empty; it was not written completely. Delete it and rerun.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); it is truncated or corrupt. Delete it and rerun."
        ) from err


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive POSIX ``flock`` on ``<path>.lock`` (next to ``path``) for the block.

    Several processes (e.g. workers of a sweep on a shared disk) that update the same file take
    turns. Where :mod:`fcntl` does not exist (Windows) the block runs unlocked.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield lock
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield lock
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
