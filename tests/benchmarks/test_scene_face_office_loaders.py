"""NYUv2 / Cityscapes (.npy), CelebA and Office loaders on tiny generated fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from eegmtl.benchmarks.celeba import load_celeba
from eegmtl.benchmarks.office import load_office, make_office_splits
from eegmtl.benchmarks.scenes import load_cityscapes, load_nyuv2, load_scene_splits
from eegmtl.config import DataNotFoundError


def write_scenes(root: Path, kind: str, n: dict[str, int], h: int = 8, w: int = 12) -> dict:
    """Tiny data set in the MTAN .npy layout (channel-last, labels with -1)."""
    rng = np.random.default_rng(0)
    labels = ("label",) if kind == "nyuv2" else ("label_7", "label_19")
    store: dict = {}
    for split, count in n.items():
        for i in range(count):
            arrays = {
                "image": rng.random((h, w, 3)).astype(np.float32),
                "depth": rng.random((h, w, 1)).astype(np.float32),
            }
            for lab in labels:
                lab_arr = rng.integers(-1, 7, (h, w)).astype(np.float32)
                arrays[lab] = lab_arr
            if kind == "nyuv2":
                nrm = rng.normal(size=(h, w, 3))
                arrays["normal"] = (nrm / np.linalg.norm(nrm, axis=-1, keepdims=True)).astype(
                    np.float32
                )
            for sub, arr in arrays.items():
                (root / split / sub).mkdir(parents=True, exist_ok=True)
                np.save(root / split / sub / f"{i}.npy", arr)
                store[(split, sub, i)] = arr
    return store


def test_nyuv2_loader(tmp_path: Path) -> None:
    store = write_scenes(tmp_path / "nyu", "nyuv2", {"train": 10, "val": 3})
    ds = load_nyuv2(tmp_path / "nyu", "val")
    assert len(ds) == 3 and ds.task_names == ["segmentation", "depth", "normal"]
    x, y = ds[2]
    assert x.shape == (3, 8, 12) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.permute(1, 2, 0).numpy(), store[("val", "image", 2)])
    assert y["segmentation"].dtype == torch.long and y["segmentation"].shape == (8, 12)
    assert y["segmentation"].min() >= -1
    np.testing.assert_array_equal(y["segmentation"].numpy(), store[("val", "label", 2)])
    assert y["depth"].shape == (1, 8, 12) and y["normal"].shape == (3, 8, 12)
    # DataLoader collates the target dicts
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert xb.shape == (3, 3, 8, 12) and yb["normal"].shape == (3, 3, 8, 12)
    splits = load_scene_splits("nyuv2", tmp_path / "nyu")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9, 1, 3)
    assert not set(splits.info["train_rows"]) & set(splits.info["val_rows"])


def test_cityscapes_loader(tmp_path: Path) -> None:
    store = write_scenes(tmp_path / "city", "cityscapes", {"train": 2, "val": 2})
    ds7 = load_cityscapes(tmp_path / "city", "train")
    ds19 = load_cityscapes(tmp_path / "city", "train", n_classes=19)
    _, y7 = ds7[1]
    _, y19 = ds19[1]
    assert set(y7) == {"segmentation", "depth"}
    np.testing.assert_array_equal(y7["segmentation"].numpy(), store[("train", "label_7", 1)])
    np.testing.assert_array_equal(y19["segmentation"].numpy(), store[("train", "label_19", 1)])
    with pytest.raises(ValueError, match="7 or 19"):
        load_cityscapes(tmp_path / "city", n_classes=13)


def test_scene_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="EEGMTL_NYUV2_DIR.*lorenmt/mtan"):
        load_nyuv2(tmp_path / "missing")
    write_scenes(tmp_path / "nyu", "nyuv2", {"train": 3})
    (tmp_path / "nyu" / "train" / "depth" / "2.npy").unlink()
    with pytest.raises(ValueError, match="same indices"):
        load_nyuv2(tmp_path / "nyu")
    with pytest.raises(DataNotFoundError, match="val"):
        load_nyuv2(tmp_path / "nyu", "val")
    np.save(tmp_path / "nyu" / "train" / "depth" / "2.npy", np.zeros((4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="spatial size"):
        load_nyuv2(tmp_path / "nyu")[2]


def write_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (20, 16)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path, quality=95)


def test_celeba_loader(tmp_path: Path) -> None:
    from eegmtl.models.vision import CELEBA_ATTRIBUTES

    root = tmp_path / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    rng = np.random.default_rng(0)
    values = rng.choice([-1, 1], size=(6, 40))
    lines = ["6", " ".join(CELEBA_ATTRIBUTES)]
    lines += [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, values)]
    (root).mkdir()
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    parts = [0, 0, 0, 1, 2, 2]
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{n} {p}\n" for n, p in zip(names, parts))
    )
    for i, n in enumerate(names):
        write_image(root / "img_align_celeba" / n, (40 * i, 10, 200), size=(178, 218))
    splits = load_celeba(root)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3, 1, 2)
    x, y = splits.test[1]
    assert x.shape == (3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert abs(float(x[0].mean()) - 200 / 255) < 0.05  # 6th image: red = 40*5 = 200
    assert len(y) == 40 and y["Smiling"].dtype == torch.long
    want = (values[5] + 1) // 2
    assert [int(y[a]) for a in CELEBA_ATTRIBUTES] == want.tolist()
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(DataNotFoundError, match="list_eval_partition.txt"):
        load_celeba(root)


def test_office_loader_generated_and_libmtl_lists(tmp_path: Path) -> None:
    root = tmp_path / "office31"
    for d_i, d in enumerate(("amazon", "dslr", "webcam")):
        for c_i, cls in enumerate(("back_pack", "bike", "mug")):
            for k in range(10):
                write_image(root / d / "images" / cls / f"frame_{k:04d}.jpg",
                            (20 * c_i, 30 * d_i, 5 * k))
    sdir = tmp_path / "splits"
    s = load_office("office31", root, split_dir=sdir, size=32)
    assert s.task_names == ("amazon", "dslr", "webcam")
    assert s.info["sizes"]["train"] == {"amazon": 18, "dslr": 18, "webcam": 18}
    assert s.info["sizes"]["val"]["dslr"] == 6 and s.info["sizes"]["test"]["dslr"] == 6
    x, y = s.train["dslr"][0]
    assert x.shape == (3, 32, 32) and y.dtype == torch.long
    # disjoint splits covering every file, deterministic
    gen = make_office_splits(root, "office31", "amazon")
    files = [p for split in gen.values() for p, _ in split]
    assert len(files) == len(set(files)) == 30
    assert gen == make_office_splits(root, "office31", "amazon")
    assert gen != make_office_splits(root, "office31", "amazon", seed=1)
    line = (sdir / "amazon_train.txt").read_text().splitlines()[0]
    assert line.startswith("amazon/images/") and line.split()[1] in {"0", "1", "2"}
    # user-provided LibMTL-style lists are read as they are
    (sdir / "webcam_test.txt").write_text("webcam/images/mug/frame_0000.jpg 7\n")
    s2 = load_office("office31", root, split_dir=sdir, size=32)
    assert len(s2.test["webcam"]) == 1 and int(s2.test["webcam"][0][1]) == 7
    with pytest.raises(DataNotFoundError, match="EEGMTL_OFFICE_HOME_DIR"):
        load_office("office_home", tmp_path / "none")
    (tmp_path / "home").mkdir()
    with pytest.raises(DataNotFoundError, match="Art"):
        load_office("office_home", tmp_path / "home", split_dir=tmp_path / "s2")
