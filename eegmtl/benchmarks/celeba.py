"""CelebA as a 40-task binary attribute benchmark (user-provided files).

Expected files (the "Align&Cropped" release, Liu et al., ICCV 2015,
https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)::

    <root>/img_align_celeba/000001.jpg ...     (178×218 JPEG; a nested
                                                img_align_celeba/img_align_celeba/ is accepted)
    <root>/list_attr_celeba.txt                line 1: N; line 2: the 40 attribute names;
                                               then "<file> ±1 ×40" per image
    <root>/list_eval_partition.txt             "<file> {0,1,2}" = train / val / test

Protocol: RLW paper (Lin et al., TMLR 2022, App. D.2) and MGDA (Sener & Koltun 2018): 40 binary
tasks, images resized to 64×64, the official partition (162 770 / 19 867 / 19 962). Targets
are ``{attribute: 0/1 int64}`` (``-1`` in the file → 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from eegmtl.benchmarks.datasets import MultiTaskSplits, load_image
from eegmtl.config import DataNotFoundError, resolve_data_dir

__all__ = ["CelebA", "load_celeba", "read_celeba_attributes", "read_celeba_partition"]

_EXPECTED = "img_align_celeba/*.jpg, list_attr_celeba.txt and list_eval_partition.txt"
_SPLITS = {"train": 0, "val": 1, "test": 2}


def read_celeba_attributes(path: str | os.PathLike[str]) -> tuple[list[str], list[str], np.ndarray]:
    """Parse ``list_attr_celeba.txt``.

    Returns
    -------
    names : list of str
        The attribute names (header line).
    files : list of str
        Image file names, in file order.
    values : numpy.ndarray of int8, shape (N, n_attributes)
        0/1 attribute values.
    """
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and a header line.")
    try:
        n = int(lines[0].strip())
    except ValueError as err:
        raise ValueError(f"{path}: first line must be the image count, got {lines[0]!r}.") from err
    names = lines[1].split()
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    if len(rows) != n:
        raise ValueError(f"{path}: header announces {n} images but {len(rows)} rows follow.")
    files = [r[0] for r in rows]
    bad = [r[0] for r in rows if len(r) != len(names) + 1]
    if bad:
        raise ValueError(f"{path}: rows with a wrong number of values, e.g. {bad[0]}.")
    raw = np.array([r[1:] for r in rows], dtype=np.int8).reshape(n, len(names))
    if not np.isin(raw, (-1, 1)).all():
        raise ValueError(f"{path}: attribute values must be -1 or 1.")
    return names, files, ((raw + 1) // 2).astype(np.int8)


def read_celeba_partition(path: str | os.PathLike[str]) -> dict[str, int]:
    """Parse ``list_eval_partition.txt`` into ``{file name: 0 (train) | 1 (val) | 2 (test)}``."""
    out = {}
    for ln in Path(path).read_text().splitlines():
        if ln.strip():
            name, part = ln.split()
            out[name] = int(part)
    return out


class CelebA(Dataset):
    """One split of CelebA: ``ds[i] == (image (3, size, size) float32 in [0, 1],
    {attribute: int64 0/1})``; images are read lazily and resized bilinearly."""

    def __init__(
        self, root: str | os.PathLike[str], split: str = "train", size: int = 64,
        attributes: list[str] | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}.")
        root = Path(root)
        attr_file, part_file = root / "list_attr_celeba.txt", root / "list_eval_partition.txt"
        img_dir = root / "img_align_celeba"
        if (img_dir / "img_align_celeba").is_dir():
            img_dir = img_dir / "img_align_celeba"
        for p in (attr_file, part_file, img_dir):
            if not p.exists():
                raise DataNotFoundError(
                    f"{p} not found: the CelebA folder {root} must hold {_EXPECTED} (download "
                    "'Align&Cropped Images' and 'Anno'/'Eval' from "
                    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; set $EEGMTL_CELEBA_DIR)."
                )
        names, files, values = read_celeba_attributes(attr_file)
        partition = read_celeba_partition(part_file)
        missing = [f for f in files if f not in partition]
        if missing:
            raise ValueError(
                f"{part_file}: no partition for {len(missing)} images, e.g. {missing[0]}."
            )
        keep = np.array([partition[f] == _SPLITS[split] for f in files], dtype=bool)
        attributes = list(names if attributes is None else attributes)
        unknown = sorted(set(attributes) - set(names))
        if unknown:
            raise ValueError(f"unknown CelebA attributes {unknown}; known: {names}.")
        cols = [names.index(a) for a in attributes]
        self.img_dir, self.size = img_dir, int(size)
        self.files = [f for f, k in zip(files, keep) if k]
        self.targets = torch.from_numpy(values[keep][:, cols].astype(np.int64))
        self.attributes = attributes

    @property
    def task_names(self) -> list[str]:
        return list(self.attributes)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        path = self.img_dir / self.files[index]
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in list_attr_celeba.txt but missing.")
        x = load_image(path, (self.size, self.size))
        y = self.targets[index]
        return x, {a: y[j] for j, a in enumerate(self.attributes)}


def load_celeba(
    path: str | os.PathLike[str] | None = None, *, size: int = 64,
    attributes: list[str] | None = None,
) -> MultiTaskSplits:
    """CelebA train / val / test with the official partition (``path`` defaults to
    ``$EEGMTL_CELEBA_DIR`` or ``$EEGMTL_DATA_DIR/celeba``)."""
    root = resolve_data_dir("celeba", path, expected=_EXPECTED)
    parts = {s: CelebA(root, s, size, attributes) for s in _SPLITS}
    return MultiTaskSplits(
        train=parts["train"], val=parts["val"], test=parts["test"],
        task_names=tuple(parts["train"].attributes),
        info={"root": str(root), "size": size, "sizes": {s: len(d) for s, d in parts.items()}},
    )
