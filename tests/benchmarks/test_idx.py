"""IDX parsing: round trip, magic numbers, sizes, missing files."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from eegmtl.benchmarks.idx import (
    IDXFormatError,
    load_mnist_split,
    mnist_file_paths,
    parse_idx,
    read_idx,
)


def test_roundtrip_plain_and_gzip(tmp_path: Path, idx_bytes: Callable) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)
    wide = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    np.testing.assert_array_equal(parse_idx(idx_bytes(wide, 0x0C)), wide)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "data-type"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", "truncated or corrupt"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00\x01", "truncated or corrupt"),
    ],
)
def test_malformed_files_raise(data: bytes, match: str) -> None:
    with pytest.raises(IDXFormatError, match=match):
        parse_idx(data)


def test_load_split_checks_kinds_and_counts(
    tmp_path: Path, write_mnist: Callable, idx_bytes: Callable
) -> None:
    arrays = write_mnist(tmp_path / "ok")
    images, labels = load_mnist_split(tmp_path / "ok", "train")
    np.testing.assert_array_equal(images, arrays["train"][0])
    assert labels.dtype == np.int64 and labels.tolist() == arrays["train"][1].tolist()
    # labels file swapped for an images file: magic / shape check
    bad = tmp_path / "bad"
    write_mnist(bad)
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(
        (bad / "train-images-idx3-ubyte.gz").read_bytes()
    )
    with pytest.raises(IDXFormatError, match="0x00000801"):
        load_mnist_split(bad, "train")
    # count mismatch
    mism = tmp_path / "mism"
    write_mnist(mism)
    (mism / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(3, dtype=np.uint8)))
    )
    with pytest.raises(IDXFormatError, match="7 images but"):
        load_mnist_split(mism, "train")


def test_missing_file_names_expected_files(tmp_path: Path, write_mnist: Callable) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    mnist_file_paths(tmp_path, "train")  # train files still there
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz.*train-images"):
        mnist_file_paths(tmp_path, "test")


def test_real_files_headers(vision_data_dir: Path) -> None:
    images, labels = load_mnist_split(vision_data_dir / "mnist", "test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    # per-class counts of the MNIST test set (PROVENANCE-vision.md)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
