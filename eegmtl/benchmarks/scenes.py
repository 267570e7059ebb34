"""NYUv2 and Cityscapes in the pre-processed ``.npy`` layout of MTAN / Nash-MTL / CAGrad.

Layout (Liu et al., MTAN, ``github.com/lorenmt/mtan`` README "Datasets"; read the same way by
``AvivNavon/nash-mtl: experiments/nyuv2/data.py`` and ``Cranial-XIX/CAGrad``)::

    <root>/{train,val}/image/<i>.npy     H×W×3 float in [0, 1]
    <root>/{train,val}/label/<i>.npy     H×W, class index, -1 = ignore        (NYUv2, 13 classes)
    <root>/{train,val}/depth/<i>.npy     H×W×1 float (0 = missing)
    <root>/{train,val}/normal/<i>.npy    H×W×3 float in [-1, 1]              (NYUv2 only)
    <root>/{train,val}/label_7/<i>.npy   H×W, 7 classes, -1 = ignore         (Cityscapes)
    <root>/{train,val}/label_19/<i>.npy  H×W, 19 classes, -1 = ignore        (Cityscapes)

with ``i = 0 .. N-1``. NYUv2: 795 train / 654 val images of 288×384; Cityscapes: 2975 / 500
of 128×256. Channel-last arrays are moved to channel-first (as the reference loaders do);
channel-first files are accepted too.

The reference repositories have no validation split (they report on ``val``, LibMTL even
selects epochs on it). :func:`load_scene_splits` therefore holds out ``val_size`` of the
``train`` folder (``train_test_split(random_state=42)``) and uses the ``val`` folder as
**test**. Augmentation (random scale-crop + flip in Nash-MTL/CAGrad) is left to the caller.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import Dataset, Subset

from eegmtl.benchmarks.datasets import MultiTaskSplits
from eegmtl.config import DataNotFoundError, resolve_data_dir

__all__ = [
    "SCENE_FIELDS",
    "SceneDataset",
    "load_cityscapes",
    "load_nyuv2",
    "load_scene_splits",
]

#: data set -> {task name: sub-folder}; "image" is the input folder.
SCENE_FIELDS: dict[str, dict[str, str]] = {
    "nyuv2": {"segmentation": "label", "depth": "depth", "normal": "normal"},
    "cityscapes": {"segmentation": "label_7", "depth": "depth"},
    "cityscapes19": {"segmentation": "label_19", "depth": "depth"},
}
_SOURCE = (
    "the pre-processed .npy version distributed with MTAN (github.com/lorenmt/mtan, README "
    "'Datasets'; also used by nash-mtl and CAGrad)"
)


def _channels_first(arr: np.ndarray, channels: int, path: Path) -> np.ndarray:
    if arr.ndim == 2 and channels == 1:
        return arr[None]
    if arr.ndim == 3:
        if arr.shape[-1] == channels and arr.shape[0] != channels:
            return np.moveaxis(arr, -1, 0)
        if arr.shape[0] == channels:
            return arr
    raise ValueError(
        f"{path}: expected an H×W×{channels} (or {channels}×H×W) array, got shape {arr.shape}."
    )


class SceneDataset(Dataset):
    """One split folder of a pre-processed scene-understanding data set (lazy ``np.load``).

    ``ds[i] == (image (3, H, W) float32, {"segmentation": (H, W) int64 with -1 = ignore,
    "depth": (1, H, W) float32[, "normal": (3, H, W) float32]})``.

    Parameters
    ----------
    folder : path-like
        ``<root>/train`` or ``<root>/val``.
    fields : dict of str to str
        Task name -> sub-folder (see :data:`SCENE_FIELDS`).
    """

    def __init__(self, folder: str | os.PathLike[str], fields: dict[str, str]) -> None:
        self.folder = Path(folder)
        self.fields = dict(fields)
        counts = {}
        for sub in ("image", *self.fields.values()):
            d = self.folder / sub
            if not d.is_dir():
                raise DataNotFoundError(
                    f"{d} not found: expected <root>/{{train,val}}/{{image,"
                    f"{','.join(self.fields.values())}}}/<i>.npy ({_SOURCE})."
                )
            counts[sub] = len([p for p in d.iterdir() if p.suffix == ".npy"])
        n = counts["image"]
        if n == 0:
            raise DataNotFoundError(f"{self.folder / 'image'} holds no .npy files.")
        bad = {k: v for k, v in counts.items() if v != n}
        if bad:
            raise ValueError(
                f"{self.folder}: {n} images but {bad} target files; every sub-folder must hold "
                "the same indices 0..N-1."
            )
        missing = [i for i in (0, n - 1) if not (self.folder / "image" / f"{i}.npy").is_file()]
        if missing:
            raise ValueError(
                f"{self.folder / 'image'}: files must be named 0.npy .. {n - 1}.npy "
                f"(missing {missing[0]}.npy)."
            )
        self.n = n

    @property
    def task_names(self) -> list[str]:
        return list(self.fields)

    def __len__(self) -> int:
        return self.n

    def _load(self, sub: str, index: int) -> tuple[np.ndarray, Path]:
        path = self.folder / sub / f"{index}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing.")
        return np.load(path, allow_pickle=False), path

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples.")
        img, path = self._load("image", index)
        image = torch.from_numpy(
            np.ascontiguousarray(_channels_first(img, 3, path), dtype=np.float32)
        )
        targets: dict[str, Tensor] = {}
        for task, sub in self.fields.items():
            arr, path = self._load(sub, index)
            if task == "segmentation":
                if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
                    arr = np.squeeze(arr, axis=0 if arr.shape[0] == 1 else -1)
                if arr.ndim != 2:
                    raise ValueError(f"{path}: expected an H×W label map, got {arr.shape}.")
                t = torch.from_numpy(np.rint(arr).astype(np.int64))
            else:
                ch = 3 if task == "normal" else 1
                t = torch.from_numpy(
                    np.ascontiguousarray(_channels_first(arr, ch, path), dtype=np.float32)
                )
            if tuple(t.shape[-2:]) != tuple(image.shape[-2:]):
                raise ValueError(
                    f"{path}: spatial size {tuple(t.shape[-2:])} differs from the image's "
                    f"{tuple(image.shape[-2:])}."
                )
            targets[task] = t
        return image, targets


def _root(name: str, path: str | os.PathLike[str] | None) -> Path:
    key = "cityscapes" if name.startswith("cityscapes") else name
    folders = ", ".join(["image", *SCENE_FIELDS[name].values()])
    return resolve_data_dir(
        key, path, expected=f"train/ and val/ with sub-folders {folders} of <i>.npy files, "
        f"i.e. {_SOURCE}"
    )


def load_nyuv2(path: str | os.PathLike[str] | None = None, split: str = "train") -> SceneDataset:
    """NYUv2 (13-class segmentation, depth, surface normals) from the ``.npy`` layout.

    ``path`` defaults to ``$EEGMTL_NYUV2_DIR`` or ``$EEGMTL_DATA_DIR/nyuv2``; ``split`` is
    ``'train'`` (795) or ``'val'`` (654, the test set of every reference paper).
    """
    return _load("nyuv2", path, split)


def load_cityscapes(
    path: str | os.PathLike[str] | None = None, split: str = "train", n_classes: int = 7
) -> SceneDataset:
    """Cityscapes (7- or 19-class segmentation + depth, 128×256) from the ``.npy`` layout.

    ``n_classes=7`` (default; MTAN / Nash-MTL / CAGrad / Aligned-MTL 2-task protocol) reads
    ``label_7``, ``n_classes=19`` reads ``label_19``. ``path`` defaults to
    ``$EEGMTL_CITYSCAPES_DIR`` or ``$EEGMTL_DATA_DIR/cityscapes``.
    """
    if n_classes not in (7, 19):
        raise ValueError(f"n_classes must be 7 or 19, got {n_classes}.")
    return _load("cityscapes" if n_classes == 7 else "cityscapes19", path, split)


def _load(name: str, path: str | os.PathLike[str] | None, split: str) -> SceneDataset:
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}.")
    return SceneDataset(_root(name, path) / split, SCENE_FIELDS[name])


def load_scene_splits(
    name: str = "nyuv2", path: str | os.PathLike[str] | None = None, *, val_size: float = 0.1,
    val_random_state: int = 42,
) -> MultiTaskSplits:
    """Train / validation / test splits of NYUv2 (``'nyuv2'``) or Cityscapes (``'cityscapes'``,
    ``'cityscapes19'``): validation = ``val_size`` of the ``train`` folder, test = ``val``
    folder (see the module docstring)."""
    if name not in SCENE_FIELDS:
        raise ValueError(f"unknown scene data set {name!r}; choose one of {sorted(SCENE_FIELDS)}.")
    train_all, test = _load(name, path, "train"), _load(name, path, "val")
    rows = np.arange(len(train_all))
    if val_size > 0:
        tr, va = train_test_split(rows, test_size=val_size, random_state=val_random_state)
    else:
        tr, va = rows, rows[:0]
    return MultiTaskSplits(
        train=Subset(train_all, tr.tolist()),
        val=Subset(train_all, va.tolist()),
        test=test,
        task_names=tuple(SCENE_FIELDS[name]),
        info={"name": name, "root": str(train_all.folder.parent), "val_size": val_size,
              "val_random_state": val_random_state, "train_rows": tr, "val_rows": va},
    )
