"""Office-31 and Office-Home as multi-input MTL benchmarks (one task per domain).

Protocol of LibMTL ``examples/office`` (used by the RLW paper, App. D.3): every domain is a
task with its own images and its own 31 / 65-way head on a shared ResNet-18; each domain is
split 60 / 20 / 20 into train / val / test; images resized to 224×224 and normalised with the
ImageNet mean/std.

Expected folders (the original archives)::

    office31:    <root>/{amazon,dslr,webcam}/images/<class>/*.jpg
    office_home: <root>/{Art,Clipart,Product,Real_World}/<class>/*.jpg  ("Real World" accepted)

Split lists ``<domain>_{train,val,test}.txt`` hold ``<path relative to root> <label>`` per
line -- the format of LibMTL's ``data_txt/``; copy those files into ``split_dir`` to use
LibMTL's exact split. When a list is absent, all three are generated deterministically from
``seed``: classes are the sorted class-folder names (label = position), and inside each
class the sorted files are shuffled with ``numpy.random.default_rng([seed, domain, class])``
and cut 60 / 20 / 20 (floor for train and val, rest to test). Generated lists are written to
``split_dir`` (default ``<cache>/office/<name>``), never into the data folder.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from eegmtl._io import atomic_write
from eegmtl.benchmarks._cache import cache_dir
from eegmtl.benchmarks.datasets import IMAGENET_MEAN, IMAGENET_STD, MultiInputSplits, load_image
from eegmtl.config import DataNotFoundError, resolve_data_dir

__all__ = ["OFFICE_DOMAINS", "ImageListDataset", "load_office", "make_office_splits"]

OFFICE_DOMAINS: dict[str, tuple[str, ...]] = {
    "office31": ("amazon", "dslr", "webcam"),
    "office_home": ("Art", "Clipart", "Product", "Real_World"),
}
_N_CLASSES = {"office31": 31, "office_home": 65}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_SPLITS = ("train", "val", "test")


class ImageListDataset(Dataset):
    """Images listed as ``(path, label)``: ``ds[i] == (image (3, H, W) float32, label int64)``.

    Images are resized to ``size`` (bilinear) and normalised by ``mean``/``std`` (ImageNet by
    default, as LibMTL)."""

    def __init__(
        self, items: list[tuple[Path, int]], size: tuple[int, int] = (224, 224),
        normalize: bool = True,
    ) -> None:
        self.items = list(items)
        self.size = size
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        path, label = self.items[index]
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in a split file but missing.")
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if self.normalize else (None, None)
        return load_image(path, self.size, mean, std), torch.tensor(label, dtype=torch.long)


def _domain_dir(root: Path, name: str, domain: str) -> Path:
    candidates = [root / domain, root / domain.replace("_", " ")]
    for c in candidates:
        if (c / "images").is_dir() and name == "office31":
            return c / "images"
        if c.is_dir():
            return c
    raise DataNotFoundError(
        f"domain folder {candidates[0]} not found: {name} needs "
        + ", ".join(f"{root}/{d}/" for d in OFFICE_DOMAINS[name])
        + " each holding one sub-folder per class with the images (set $EEGMTL_"
        + ("OFFICE31" if name == "office31" else "OFFICE_HOME") + "_DIR)."
    )


def make_office_splits(
    root: str | os.PathLike[str], name: str, domain: str, *, seed: int = 0,
    fractions: tuple[float, float] = (0.6, 0.2),
) -> dict[str, list[tuple[str, int]]]:
    """Deterministic per-class 60/20/20 split of one domain (see the module docstring).

    Returns ``{split: [(path relative to root, label), ...]}``.
    """
    root = Path(root)
    ddir = _domain_dir(root, name, domain)
    classes = sorted(p.name for p in ddir.iterdir() if p.is_dir())
    if not classes:
        raise DataNotFoundError(f"{ddir} has no class sub-folders.")
    out: dict[str, list[tuple[str, int]]] = {s: [] for s in _SPLITS}
    for label, cls in enumerate(classes):
        files = sorted(
            p for p in (ddir / cls).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES
        )
        key = [seed, zlib.crc32(domain.encode()), zlib.crc32(cls.encode())]
        order = np.random.default_rng(key).permutation(len(files))
        n_tr = int(np.floor(fractions[0] * len(files)))
        n_va = int(np.floor(fractions[1] * len(files)))
        cuts = {
            "train": order[:n_tr], "val": order[n_tr : n_tr + n_va], "test": order[n_tr + n_va :]
        }
        for split, idx in cuts.items():
            out[split] += [(files[i].relative_to(root).as_posix(), label) for i in sorted(idx)]
    return out


def _read_list(path: Path, root: Path) -> list[tuple[Path, int]]:
    items = []
    for k, ln in enumerate(path.read_text().splitlines(), 1):
        if not ln.strip():
            continue
        parts = ln.rsplit(" ", 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{k}: expected '<relative path> <label>', got {ln!r}.")
        items.append((root / parts[0].lstrip("/"), int(parts[1])))
    return items


def load_office(
    name: str = "office31", path: str | os.PathLike[str] | None = None, *,
    split_dir: str | os.PathLike[str] | None = None, size: int = 224, seed: int = 0,
    normalize: bool = True,
) -> MultiInputSplits:
    """Office-31 (``'office31'``) or Office-Home (``'office_home'``) as multi-input splits.

    Parameters
    ----------
    name : {'office31', 'office_home'}
    path : path-like, optional
        Data folder (default ``$EEGMTL_OFFICE31_DIR`` / ``$EEGMTL_OFFICE_HOME_DIR`` or
        ``$EEGMTL_DATA_DIR/<name>``).
    split_dir : path-like, optional
        Folder of ``<domain>_{train,val,test}.txt`` lists (read when present, generated and
        written otherwise). Default ``<cache dir>/office/<name>``.
    size : int
        Image side after resizing (default 224, LibMTL).
    seed : int
        Seed of generated splits (default 0).
    normalize : bool
        ImageNet mean/std normalisation (default True).

    Returns
    -------
    MultiInputSplits
        ``train[domain]`` etc. are :class:`ImageListDataset`; ``info["classes"]`` the number
        of classes.
    """
    if name not in OFFICE_DOMAINS:
        raise ValueError(
            f"unknown Office data set {name!r}; choose one of {sorted(OFFICE_DOMAINS)}."
        )
    domains = OFFICE_DOMAINS[name]
    root = resolve_data_dir(
        name, path, expected=", ".join(f"{d}/<class>/*.jpg" for d in domains)
    )
    sdir = Path(split_dir) if split_dir is not None else cache_dir(None, f"office/{name}")
    lists: dict[str, dict[str, list[tuple[Path, int]]]] = {s: {} for s in _SPLITS}
    for d in domains:
        files = {s: sdir / f"{d}_{s}.txt" for s in _SPLITS}
        if not all(f.is_file() for f in files.values()):
            generated = make_office_splits(root, name, d, seed=seed)
            sdir.mkdir(parents=True, exist_ok=True)
            for s, items in generated.items():
                atomic_write(files[s], "".join(f"{p} {y}\n" for p, y in items))
        for s in _SPLITS:
            lists[s][d] = _read_list(files[s], root)
    labels = [y for s in _SPLITS for d in domains for _, y in lists[s][d]]
    n_classes = max(labels) + 1 if labels else 0
    if n_classes > _N_CLASSES[name]:
        raise ValueError(f"{name}: found label {n_classes - 1} >= {_N_CLASSES[name]} classes.")
    sz = (size, size)
    make = {s: {d: ImageListDataset(lists[s][d], sz, normalize) for d in domains} for s in _SPLITS}
    return MultiInputSplits(
        train=make["train"], val=make["val"], test=make["test"], task_names=domains,
        info={"root": str(root), "split_dir": str(sdir), "classes": _N_CLASSES[name],
              "classes_found": n_classes, "seed": seed,
              "sizes": {s: {d: len(make[s][d]) for d in domains} for s in _SPLITS}},
    )
