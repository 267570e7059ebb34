"""MultiMNIST-family construction: counts, shapes, positions, determinism, splits, cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from eegmtl.benchmarks.idx import load_mnist_split
from eegmtl.benchmarks.multimnist import (
    MultiMNISTConfig,
    build_multimnist_arrays,
    load_multimnist,
    overlay_pairs,
    pair_indices,
)
from eegmtl.config import DataNotFoundError


def test_overlay_places_items_and_keeps_max() -> None:
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    right = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    blank = np.zeros_like(right)
    only_left = overlay_pairs(left, blank)
    assert only_left.shape == (4, 36, 36)
    np.testing.assert_array_equal(only_left[:, :28, :28], left)  # left item in the top-left
    assert only_left[:, 28:, :].sum() == 0 and only_left[:, :, 28:].sum() == 0
    only_right = overlay_pairs(np.zeros_like(left), right)
    np.testing.assert_array_equal(only_right[:, 8:, 8:], right)  # right item bottom-right
    assert only_right[:, :8, :].sum() == 0 and only_right[:, :, :8].sum() == 0
    both = overlay_pairs(left, right)
    overlap = np.maximum(left[:, 8:, 8:], right[:, :20, :20])
    np.testing.assert_array_equal(both[:, 8:28, 8:28], overlap)
    with pytest.raises(ValueError, match="fit"):
        overlay_pairs(left, right, offset=9)


def test_pair_indices_use_every_image_twice() -> None:
    rng = np.random.default_rng(3)
    src = pair_indices(200, 100, 100, rng, same_source=True)
    assert src.shape == (200, 2)
    assert (np.bincount(src[:, 0], minlength=100) == 2).all()
    assert (src[:, 0] != src[:, 1]).all()


@pytest.mark.parametrize("dataset", ["multi_mnist", "multi_fashion", "multi_fashion_mnist"])
def test_real_subset(vision_data_dir: Path, tmp_path: Path, dataset: str) -> None:
    kw = dict(n_train=2000, n_test=500, seed=1, cache_dir=tmp_path,
              mnist_dir=vision_data_dir / "mnist", fashion_dir=vision_data_dir / "fashion_mnist")
    s = load_multimnist(dataset, **kw)
    assert (len(s.train), len(s.val), len(s.test)) == (1800, 200, 500)
    assert s.train.x.shape == (1800, 1, 36, 36) and s.train.x.dtype == torch.float32
    assert 0.0 <= float(s.train.x.min()) and float(s.train.x.max()) <= 1.0
    assert set(s.train.targets) == {"left", "right"}
    # validation rows disjoint from training rows, together all of them
    tr, va = set(s.info["train_rows"].tolist()), set(s.info["val_rows"].tolist())
    assert not tr & va and len(tr | va) == 2000
    # each position holds the item whose label it carries: pixels >= the source item
    left_src, right_src = {
        "multi_mnist": ("mnist", "mnist"),
        "multi_fashion": ("fashion_mnist", "fashion_mnist"),
        "multi_fashion_mnist": ("mnist", "fashion_mnist"),  # task 1 = MNIST digit (top-left)
    }[dataset]
    li, ll = load_mnist_split(vision_data_dir / left_src, "test")
    ri, rl = load_mnist_split(vision_data_dir / right_src, "test")
    src = s.info["test_src"]
    x = (s.test.x[:, 0] * 255).round().to(torch.uint8).numpy()
    assert (x[:, :28, :28] >= li[src[:, 0]]).all() and (x[:, 8:, 8:] >= ri[src[:, 1]]).all()
    np.testing.assert_array_equal(x[:, :8, :28], li[src[:, 0]][:, :8, :])  # left-only rows
    np.testing.assert_array_equal(x[:, 28:, 8:], ri[src[:, 1]][:, 20:, :])  # right-only rows
    assert s.test.targets["left"].tolist() == ll[src[:, 0]].tolist()
    assert s.test.targets["right"].tolist() == rl[src[:, 1]].tolist()
    # second call: from the cache, identical
    again = load_multimnist(dataset, **kw)
    assert again.info["from_cache"] and not s.info["from_cache"]
    assert torch.equal(again.train.x, s.train.x)


def test_determinism_and_seed_and_cache_key(tmp_path: Path, write_mnist: Callable) -> None:
    write_mnist(tmp_path / "mnist", n_train=40, n_test=10)
    cfg = MultiMNISTConfig("multi_mnist", n_train=80, n_test=20, seed=0)
    a = build_multimnist_arrays(cfg, mnist_dir=tmp_path / "mnist")
    b = build_multimnist_arrays(cfg, mnist_dir=tmp_path / "mnist")
    c = build_multimnist_arrays(
        MultiMNISTConfig("multi_mnist", n_train=80, n_test=20, seed=1), mnist_dir=tmp_path / "mnist"
    )
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train_src"], c["train_src"])
    kw = dict(n_train=80, n_test=20, mnist_dir=tmp_path / "mnist", cache_dir=tmp_path / "c")
    s0 = load_multimnist(**kw)
    s1 = load_multimnist(seed=1, **kw)
    files = sorted(p.name for p in (tmp_path / "c" / "multimnist").iterdir())
    assert len(files) == 2 and all(f.endswith(".npz") for f in files)  # no temp files left
    assert s0.info["cache_file"] != s1.info["cache_file"]
    # a changed source file changes the key (no stale cache)
    write_mnist(tmp_path / "mnist", n_train=40, n_test=10, seed=5)
    s2 = load_multimnist(**kw)
    assert s2.info["cache_file"] != s0.info["cache_file"] and not s2.info["from_cache"]


def test_missing_data_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_mnist: Callable
) -> None:
    with pytest.raises(DataNotFoundError, match="EEGMTL_MNIST_DIR"):
        load_multimnist(mnist_dir=tmp_path / "nowhere", cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_multimnist(mnist_dir=tmp_path / "empty", cache_dir=tmp_path)
    monkeypatch.delenv("EEGMTL_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("EEGMTL_DATA_DIR", str(tmp_path))
    write_mnist(tmp_path / "mnist")
    with pytest.raises(DataNotFoundError, match="fashion_mnist"):
        load_multimnist("multi_fashion_mnist", n_train=10, n_test=5, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown data set"):
        load_multimnist("cifar", cache_dir=tmp_path)
