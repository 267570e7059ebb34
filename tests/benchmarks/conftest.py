"""Fixtures of the vision-benchmark tests: writers of tiny files in the real formats."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write_mnist(folder: Path, n_train: int = 7, n_test: int = 3, seed: int = 0) -> dict:
    """Tiny MNIST-format files (gzipped) with random content; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        prefix = "train" if split == "train" else "t10k"
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
        out[split] = (images, labels)
    return out


@pytest.fixture
def idx_bytes() -> Callable[..., bytes]:
    """``idx_bytes(array, code=0x08)``: the bytes of an IDX file holding ``array``."""
    return _idx_bytes


@pytest.fixture
def write_mnist() -> Callable[..., dict]:
    """``write_mnist(folder, n_train=7, n_test=3, seed=0)``: tiny gzipped MNIST IDX files."""
    return _write_mnist
