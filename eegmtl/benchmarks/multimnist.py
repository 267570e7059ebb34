"""MultiMNIST, MultiFashion and MultiFashion+MNIST built from the original IDX files.

Protocol (ParetoMTL, Lin et al., NeurIPS 2019, §5 and ``Xi-L/ParetoMTL: multiMNIST/``; the
same pickles are used by PHN, Navon et al. 2021, and F-MTL, Phan et al. 2025, Table 1):
each image holds two 28×28 items, one at the top-left and one at the bottom-right of a 36×36
canvas; task 1 (``"left"``) classifies the top-left item, task 2 (``"right"``) the
bottom-right one; 120 000 training images (pairs drawn from the 60 000 training images) and
20 000 test images (pairs drawn from the 10 000 test images), 10 classes per task.

The ParetoMTL pickles were shared through a Google-Drive link and their generation script is
not public, so the construction below is ours and is stated exactly:

- **Placement.** Top-left item at rows/cols ``[0, 28)``, bottom-right item at
  ``[offset, offset + 28)`` with ``offset = 8`` (each item shifted 4 px up-left /
  down-right of the centre of the 36×36 canvas). Where the two overlap (a 20×20 square) the
  pixel-wise **maximum** is kept (as in Sener & Koltun's MultiMNIST generator, which uses
  offset 6 and then resizes to 28×28; we do not resize: ParetoMTL images are 36×36).
- **Sampling.** For a split built from ``n_src`` source images and ``n`` pairs, the
  top-left sources are the concatenation of ``ceil(n / n_src)`` independent random
  permutations of ``range(n_src)`` cut to ``n``; the bottom-right sources the same with other
  permutations. For the full sets (``n = 2 * n_src``) every source image is used exactly twice
  as a top-left item and exactly twice as a bottom-right item. For single-source sets a pair
  never repeats the same image (collisions are re-drawn). The two labels may be equal.
  Everything comes from ``numpy.random.default_rng(seed)`` (train and test use independent
  child streams), so a seed fixes the data set.
- **MultiFashion+MNIST.** Top-left item from MNIST, bottom-right from Fashion-MNIST: task 1 is
  the digit (F-MTL Table 1: task-1 accuracy ≈ 98 %, task 2 ≈ 89 %).
- **Validation.** 10 % of the training pairs are held out with
  ``sklearn.model_selection.train_test_split(..., test_size=0.1, random_state=42)`` (as PHN);
  select models on ``val``, never on ``test``.

Built arrays are cached as uint8 ``.npz`` under ``cache_dir`` (argument, else
``$EEGMTL_CACHE_DIR``, else ``~/.cache/eegmtl``), in ``multimnist/``, named by a hash of the
configuration and of the SHA-256 of the source files; writes are atomic.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from eegmtl.benchmarks._cache import cache_dir as _cache_dir
from eegmtl.benchmarks._cache import config_key, load_npz, save_npz_atomic
from eegmtl.benchmarks.datasets import MultiTaskSplits, MultiTaskTensorDataset
from eegmtl.benchmarks.idx import MNIST_FILES, load_mnist_split, mnist_file_paths
from eegmtl.config import DataNotFoundError, resolve_data_dir
from eegmtl.mtl._registry import registry_key

__all__ = [
    "DATASETS",
    "TASK_NAMES",
    "MultiMNISTConfig",
    "build_multimnist_arrays",
    "load_multimnist",
    "overlay_pairs",
    "pair_indices",
]

#: data set name -> (source of the top-left item, source of the bottom-right item)
DATASETS: dict[str, tuple[str, str]] = {
    "multi_mnist": ("mnist", "mnist"),
    "multi_fashion": ("fashion_mnist", "fashion_mnist"),
    "multi_fashion_mnist": ("mnist", "fashion_mnist"),
}
_ALIASES = {
    "multimnist": "multi_mnist",
    "multifashion": "multi_fashion",
    "multi_fashion_and_mnist": "multi_fashion_mnist",
    "multifashion_mnist": "multi_fashion_mnist",
    "multi_fashion+mnist": "multi_fashion_mnist",
}
TASK_NAMES: tuple[str, str] = ("left", "right")
_EXPECTED = ", ".join(n for pair in MNIST_FILES.values() for n in pair)
_ARRAY_KEYS = ("train_x", "train_y", "train_src", "test_x", "test_y", "test_src")
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class MultiMNISTConfig:
    """Everything that determines a built MultiMNIST-family data set.

    Parameters
    ----------
    dataset : str
        ``'multi_mnist'``, ``'multi_fashion'`` or ``'multi_fashion_mnist'``.
    n_train, n_test : int
        Number of pairs (default 120 000 / 20 000, the ParetoMTL sizes).
    seed : int
        Seed of the pairing (default 0).
    canvas : int
        Side of the square output image (default 36).
    offset : int
        Row/column of the bottom-right item's top-left corner (default 8).
    """

    dataset: str = "multi_mnist"
    n_train: int = 120_000
    n_test: int = 20_000
    seed: int = 0
    canvas: int = 36
    offset: int = 8

    def __post_init__(self) -> None:
        name = _canonical(self.dataset)
        object.__setattr__(self, "dataset", name)
        if self.n_train < 1 or self.n_test < 1:
            raise ValueError(f"n_train and n_test must be >= 1, got {self.n_train}, {self.n_test}.")
        if self.offset < 0 or self.offset + 28 > self.canvas:
            raise ValueError(
                f"offset={self.offset} puts the 28x28 bottom-right item outside the "
                f"{self.canvas}x{self.canvas} canvas; use 0 <= offset <= canvas - 28."
            )


def _canonical(name: str) -> str:
    key = registry_key(name)
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}.")
    return key


def pair_indices(
    n_pairs: int, n_left: int, n_right: int, rng: np.random.Generator, *, same_source: bool
) -> np.ndarray:
    """Source indices of the (top-left, bottom-right) items of ``n_pairs`` pairs.

    See the module docstring ("Sampling"). Returns an int64 array of shape (n_pairs, 2).
    """

    def stream(n_src: int) -> np.ndarray:
        reps = -(-n_pairs // n_src)
        return np.concatenate([rng.permutation(n_src) for _ in range(reps)])[:n_pairs]

    left, right = stream(n_left), stream(n_right)
    if same_source:
        if n_left < 2:
            raise ValueError("need at least 2 source images to build pairs of distinct images.")
        clash = np.flatnonzero(left == right)
        while clash.size:
            right[clash] = rng.integers(0, n_right, size=clash.size)
            clash = clash[left[clash] == right[clash]]
    return np.stack([left, right], axis=1).astype(np.int64)


def overlay_pairs(
    left: np.ndarray, right: np.ndarray, *, canvas: int = 36, offset: int = 8
) -> np.ndarray:
    """Compose pairs of 28×28 uint8 items into ``canvas``×``canvas`` images (vectorised).

    ``left[i]`` goes to the top-left corner, ``right[i]`` to ``[offset, offset + 28)``; the
    overlap keeps the pixel-wise maximum. Returns uint8 of shape (N, canvas, canvas).
    """
    if left.shape != right.shape or left.ndim != 3:
        raise ValueError(f"left and right must both be (N, h, w), got {left.shape}, {right.shape}.")
    n, h, w = left.shape
    if offset + h > canvas or offset + w > canvas or h > canvas or w > canvas:
        raise ValueError(f"items of {h}x{w} at offset {offset} do not fit in {canvas}x{canvas}.")
    out = np.zeros((n, canvas, canvas), dtype=np.uint8)
    out[:, :h, :w] = left
    region = out[:, offset : offset + h, offset : offset + w]
    np.maximum(region, right, out=region)
    return out


def _source_dirs(
    config: MultiMNISTConfig, mnist_dir: str | os.PathLike[str] | None,
    fashion_dir: str | os.PathLike[str] | None,
) -> dict[str, Path]:
    given = {"mnist": mnist_dir, "fashion_mnist": fashion_dir}
    out = {}
    for src in sorted(set(DATASETS[config.dataset])):
        folder = resolve_data_dir(src, given[src], expected=f"the IDX files {_EXPECTED}")
        try:
            for split in MNIST_FILES:
                mnist_file_paths(folder, split)
        except FileNotFoundError as err:
            env = "EEGMTL_MNIST_DIR" if src == "mnist" else "EEGMTL_FASHION_MNIST_DIR"
            raise DataNotFoundError(
                f"{err} Put the four files of {src} there or set ${env} to their folder."
            ) from err
        out[src] = folder
    return out


def build_multimnist_arrays(
    config: MultiMNISTConfig, *, mnist_dir: str | os.PathLike[str] | None = None,
    fashion_dir: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """Build the train and test arrays of a MultiMNIST-family set (no caching).

    Returns
    -------
    dict
        ``train_x``/``test_x``: uint8 (N, canvas, canvas); ``train_y``/``test_y``: int64 (N, 2)
        labels (top-left, bottom-right); ``train_src``/``test_src``: int64 (N, 2) indices of the
        source images in the original IDX split (provenance).
    """
    dirs = _source_dirs(config, mnist_dir, fashion_dir)
    left_src, right_src = DATASETS[config.dataset]
    train_rng, test_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(2)
    )
    out: dict[str, np.ndarray] = {}
    for split, n, rng in (("train", config.n_train, train_rng), ("test", config.n_test, test_rng)):
        li, ll = load_mnist_split(dirs[left_src], split)
        ri, rl = (li, ll) if right_src == left_src else load_mnist_split(dirs[right_src], split)
        src = pair_indices(n, len(li), len(ri), rng, same_source=left_src == right_src)
        out[f"{split}_x"] = overlay_pairs(
            li[src[:, 0]], ri[src[:, 1]], canvas=config.canvas, offset=config.offset
        )
        out[f"{split}_y"] = np.stack([ll[src[:, 0]], rl[src[:, 1]]], axis=1)
        out[f"{split}_src"] = src
    return out


def _to_dataset(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None
) -> MultiTaskTensorDataset:
    if rows is not None:
        x, y = x[rows], y[rows]
    xt = torch.from_numpy(x).unsqueeze(1).to(torch.float32).div_(255.0)
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    return MultiTaskTensorDataset(xt, {TASK_NAMES[0]: yt[:, 0], TASK_NAMES[1]: yt[:, 1]})


def load_multimnist(
    dataset: str = "multi_mnist",
    *,
    n_train: int = 120_000,
    n_test: int = 20_000,
    seed: int = 0,
    val_size: float = 0.1,
    val_random_state: int = 42,
    offset: int = 8,
    mnist_dir: str | os.PathLike[str] | None = None,
    fashion_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> MultiTaskSplits:
    """Build (or load from the cache) a MultiMNIST-family benchmark as torch data sets.

    Parameters
    ----------
    dataset : str
        ``'multi_mnist'``, ``'multi_fashion'`` or ``'multi_fashion_mnist'`` (aliases:
        ``'multimnist'``, ``'multifashion'``, ``'multi_fashion_and_mnist'``).
    n_train, n_test : int
        Number of training / test pairs before the validation hold-out (default 120 000 /
        20 000 as ParetoMTL); smaller values give a random subset-sized set (same rules).
    seed : int
        Seed of the pairing (default 0).
    val_size : float
        Fraction of the training pairs held out for validation (default 0.1, PHN);
        ``0`` disables the hold-out (``val`` is then empty).
    val_random_state : int
        ``random_state`` of :func:`sklearn.model_selection.train_test_split` (default 42, PHN).
    offset : int
        Position of the bottom-right item (default 8; see the module docstring).
    mnist_dir, fashion_dir : path-like, optional
        Folders with the IDX files; default from :func:`eegmtl.config.resolve_data_dir`
        (``$EEGMTL_MNIST_DIR`` / ``$EEGMTL_FASHION_MNIST_DIR`` / ``$EEGMTL_DATA_DIR/<name>``).
    cache_dir : path-like, optional
        Cache root (default ``$EEGMTL_CACHE_DIR`` or ``~/.cache/eegmtl``).
    use_cache : bool
        Read and write the cache (default True).

    Returns
    -------
    MultiTaskSplits
        ``train``/``val``/``test`` are :class:`MultiTaskTensorDataset` with ``x`` float32 in
        [0, 1] of shape (N, 1, 36, 36) and targets ``{"left": (N,), "right": (N,)}`` int64.
        ``info`` holds the config, the cache file, build time, the source indices of every
        pair (``train_src``/``test_src``) and the train/val row indices into the built set.

    Raises
    ------
    DataNotFoundError
        If the IDX files cannot be found (the message says which files and where).
    """
    config = MultiMNISTConfig(dataset, n_train, n_test, seed, 36, offset)
    if not 0.0 <= val_size < 1.0:
        raise ValueError(f"val_size must be in [0, 1), got {val_size}.")
    dirs = _source_dirs(config, mnist_dir, fashion_dir)
    t0 = time.perf_counter()
    cache_file, arrays, cached = None, None, False
    if use_cache:
        files = [p for d in dirs.values() for s in MNIST_FILES for p in mnist_file_paths(d, s)]
        key = config_key({**asdict(config), "format": _FORMAT_VERSION}, files)
        cache_file = _cache_dir(cache_dir, "multimnist") / f"{config.dataset}-{key}.npz"
        arrays = load_npz(cache_file, _ARRAY_KEYS)
        cached = arrays is not None
    if arrays is None:
        arrays = build_multimnist_arrays(
            config, mnist_dir=dirs.get("mnist"), fashion_dir=dirs.get("fashion_mnist")
        )
        if cache_file is not None:
            save_npz_atomic(cache_file, arrays)
    rows = np.arange(config.n_train)
    if val_size > 0:
        train_rows, val_rows = train_test_split(
            rows, test_size=val_size, random_state=val_random_state
        )
    else:
        train_rows, val_rows = rows, rows[:0]
    splits = MultiTaskSplits(
        train=_to_dataset(arrays["train_x"], arrays["train_y"], train_rows),
        val=_to_dataset(arrays["train_x"], arrays["train_y"], val_rows),
        test=_to_dataset(arrays["test_x"], arrays["test_y"]),
        task_names=TASK_NAMES,
        info={
            "config": asdict(config),
            "val_size": val_size,
            "val_random_state": val_random_state,
            "cache_file": str(cache_file) if cache_file else None,
            "from_cache": cached,
            "seconds": time.perf_counter() - t0,
            "train_rows": train_rows,
            "val_rows": val_rows,
            "train_src": arrays["train_src"],
            "test_src": arrays["test_src"],
        },
    )
    return splits
