"""Reader for the IDX files of MNIST and Fashion-MNIST (plain or gzip-compressed), numpy only.

IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): a 4-byte
big-endian magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the data in C order, big-endian. MNIST images have magic ``0x00000803``
(uint8, 3-D: N x 28 x 28) and labels ``0x00000801`` (uint8, 1-D: N).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = [
    "IDXFormatError",
    "MNIST_FILES",
    "load_mnist_split",
    "mnist_file_paths",
    "parse_idx",
    "read_idx",
]

#: IDX data-type code -> numpy dtype (big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: split -> (images file, labels file), the names of the original distribution.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class IDXFormatError(ValueError):
    """An IDX file is malformed (bad magic number, truncated, wrong shape or values)."""


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse the (decompressed) bytes of one IDX file.

    Parameters
    ----------
    data : bytes
        The whole file content, already gunzipped.
    source : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        Array with the shape stored in the header, native byte order.

    Raises
    ------
    IDXFormatError
        If the header is too short, the first two magic bytes are not zero, the dtype code is
        unknown, or the payload size differs from the size announced by the header.
    """
    if len(data) < 4:
        raise IDXFormatError(f"{source}: {len(data)} bytes, too short for an IDX header.")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{source}: bad IDX magic number 0x{data[:4].hex()} (must start with 0x0000); "
            "is this really an (uncompressed or .gz) IDX file?"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise IDXFormatError(f"{source}: unknown IDX data-type code 0x{code:02x}.")
    if ndim == 0:
        raise IDXFormatError(f"{source}: IDX header announces 0 dimensions.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{source}: truncated header ({len(data)} < {header} bytes).")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        raise IDXFormatError(
            f"{source}: header says shape {shape} ({expected} data bytes) but the file holds "
            f"{actual} data bytes; the file is truncated or corrupt (download it again)."
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file from disk; ``.gz`` files are decompressed on the fly.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IDXFormatError
        If the content is not a valid IDX file (see :func:`parse_idx`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IDXFormatError(f"{path}: corrupt gzip stream ({err}).") from err
    return parse_idx(raw, source=str(path))


def mnist_file_paths(directory: str | os.PathLike[str], split: str) -> tuple[Path, Path]:
    """Paths of the images and labels files of ``split`` ('train' or 'test') in ``directory``.

    Accepts both the ``.gz`` files and their decompressed versions (same name without
    ``.gz``). Raises :class:`FileNotFoundError` naming every expected file when one is missing.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}.")
    directory = Path(directory)
    out = []
    for name in MNIST_FILES[split]:
        gz, plain = directory / name, directory / name[: -len(".gz")]
        if gz.is_file():
            out.append(gz)
        elif plain.is_file():
            out.append(plain)
        else:
            wanted = ", ".join(n for pair in MNIST_FILES.values() for n in pair)
            raise FileNotFoundError(
                f"{gz} not found. The folder {directory} must hold the original IDX files "
                f"({wanted}; gzipped or not), e.g. from http://yann.lecun.com/exdb/mnist/ or "
                "https://github.com/zalandoresearch/fashion-mnist."
            )
    return out[0], out[1]


def load_mnist_split(
    directory: str | os.PathLike[str], split: str, *, image_shape: tuple[int, int] = (28, 28),
    n_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-format data set (MNIST, Fashion-MNIST).

    Parameters
    ----------
    directory : path-like
        Folder with the four IDX files (see :data:`MNIST_FILES`).
    split : {'train', 'test'}
    image_shape : tuple of int
        Expected image size; checked.
    n_classes : int
        Labels must lie in ``[0, n_classes)``; checked.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (N, 28, 28)
    labels : numpy.ndarray of int64, shape (N,)

    Raises
    ------
    FileNotFoundError
        If a file is missing (the message lists the expected files).
    IDXFormatError
        If a file is malformed, the magic numbers are not those of images (0x00000803) and
        labels (0x00000801), or images and labels disagree in count.
    """
    img_path, lab_path = mnist_file_paths(directory, split)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != tuple(image_shape):
        raise IDXFormatError(
            f"{img_path}: expected uint8 images of shape (N, {image_shape[0]}, {image_shape[1]}) "
            f"(magic 0x00000803), got {images.dtype} {images.shape}."
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(
            f"{lab_path}: expected a 1-D uint8 label vector (magic 0x00000801), got "
            f"{labels.dtype} {labels.shape}."
        )
    if len(images) != len(labels):
        raise IDXFormatError(
            f"{img_path.name} holds {len(images)} images but {lab_path.name} {len(labels)} "
            "labels; the files come from different releases or are corrupt."
        )
    if labels.size and int(labels.max()) >= n_classes:
        raise IDXFormatError(f"{lab_path}: label {int(labels.max())} >= n_classes={n_classes}.")
    return images, labels.astype(np.int64)
