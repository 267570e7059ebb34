"""Several braindecode fits trained at once (eegmtl.eeg.batched_fit)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("braindecode")

from eegmtl.eeg.batched_fit import batch_key, fit_batched  # noqa: E402
from eegmtl.eeg.deep_baselines import make_deep_baseline  # noqa: E402


def _separable(n: int, seed: int, n_times: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """Two classes that differ in the 10-Hz power of channel 0 against channel 2."""
    rng = np.random.default_rng(seed)
    y = np.array(["left", "right"] * (n // 2))
    t = np.arange(n_times) / 250.0
    X = rng.standard_normal((n, 3, n_times))
    amp = np.where(y == "left", 3.0, 0.3)[:, None]
    X[:, 0] += amp * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (n, 1)))
    X[:, 2] += (3.3 - amp) * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (n, 1)))
    return X * 10.0, y


def _est(seed: int, **kw):
    base = {"max_epochs": 4, "batch_size": 8, "augmentation": None, "patience": 30,
            "model_kwargs": {"drop_prob": 0.0}}
    return make_deep_baseline("ShallowFBCSPNet", random_state=seed, **{**base, **kw})


def _data(seed: int, n_val: int = 8):
    X, y = _separable(24, seed)
    Xv, yv = _separable(n_val, seed + 100)
    return X, y, Xv, yv


def test_fits_in_a_batch_do_not_interact():
    """Two fits trained together end exactly where each ends trained alone in a batch of
    one (no dropout, no augmentation: the batch changes nothing but the launches)."""
    data = [_data(0), _data(1, n_val=6)]  # validation sets of different sizes
    pair = fit_batched([_est(10), _est(11)], data)
    for i, seed in enumerate((10, 11)):
        alone = fit_batched([_est(seed)], [data[i]])[0]
        assert np.allclose(pair[i].history_[["train_loss", "valid_loss"]],
                           alone.history_[["train_loss", "valid_loss"]], atol=1e-5)
        assert np.allclose(pair[i].predict_proba(data[i][2]),
                           alone.predict_proba(data[i][2]), atol=1e-5)
    # different seeds and data: different fits
    assert not np.allclose(pair[0].history_["train_loss"], pair[1].history_["train_loss"])


def test_early_stopping_restores_each_fits_best_epoch():
    """Each fit stops ``patience`` epochs after its best validation loss and keeps that
    epoch's weights: the restored network's validation log-loss is the recorded best one."""
    ests = [_est(s, max_epochs=30, patience=3, lr=0.02, augmentation="segment_recombine",
                 model_kwargs={}) for s in (0, 1, 2)]
    data = [_data(s) for s in (0, 1, 2)]
    fitted = fit_batched(ests, data)
    for est, (_, _, Xv, yv) in zip(fitted, data, strict=True):
        h = est.history_
        assert list(h["epoch"]) == list(range(1, len(h) + 1))
        assert est.n_epochs_trained_ == len(h) <= 30
        # skorch EarlyStopping's rule on the recorded losses: improved when below the best
        # so far by the relative threshold 1e-4; stop after `patience` misses in a row
        thr, best_epoch, misses = np.inf, 0, 0
        for epoch, loss in enumerate(h["valid_loss"], start=1):
            if loss < thr:
                thr, best_epoch, misses = loss * (1 - 1e-4), epoch, 0
            else:
                misses += 1
            if misses == 3:
                break
        assert est.best_epoch_ == best_epoch and len(h) == epoch
        if len(h) < 30:  # stopped early: patience epochs after the best one
            assert len(h) == est.best_epoch_ + 3
        p = est.predict_proba(Xv)[np.arange(len(yv)), np.searchsorted(est.classes_, yv)]
        assert np.isclose(-np.log(p).mean(), h["valid_loss"].iloc[est.best_epoch_ - 1],
                          atol=1e-4)
        assert est.score(Xv, yv) >= 0.75  # it learned the separable classes
        assert est.batched_fits_ == 3


def test_batched_fits_learn_like_single_fits():
    """The same recipe trained alone (skorch) and in a batch reaches the same accuracy on
    separable data (results agree in distribution, not digit for digit)."""
    X, y, Xv, yv = _data(0)
    Xt, yt = _separable(40, 7)
    alone = _est(3, max_epochs=15, lr=0.01).fit(X, y, X_val=Xv, y_val=yv)
    batched = fit_batched([_est(3, max_epochs=15, lr=0.01)], [(X, y, Xv, yv)])[0]
    assert alone.score(Xt, yt) >= 0.85 and batched.score(Xt, yt) >= 0.85
    assert set(batched.predict(Xt)) <= {"left", "right"}


def test_batch_errors():
    with pytest.raises(ValueError, match="share their recipe"):
        fit_batched([_est(0), _est(1, lr=0.5)], [_data(0), _data(1)])
    with pytest.raises(ValueError, match="validation"):
        fit_batched([_est(0)], [(*_data(0)[:2], None, None)])
    X, y, Xv, yv = _data(0)
    with pytest.raises(ValueError, match="same number of training batches"):
        fit_batched([_est(0), _est(1)], [(X, y, Xv, yv), (X[:16], y[:16], Xv, yv)])
    with pytest.raises(TypeError, match="BraindecodeClassifier"):
        fit_batched([object()], [_data(0)])
    assert batch_key(_est(0)) == batch_key(_est(5)) != batch_key(_est(0, lr=0.5))


def test_without_early_stopping_the_last_weights_are_kept():
    est = fit_batched([_est(0, max_epochs=3, patience=None)], [_data(0)])[0]
    assert est.n_epochs_trained_ == 3 and est.best_epoch_ == 3
    X, y, Xv, yv = _data(0)
    p = est.predict_proba(Xv)[np.arange(len(yv)), np.searchsorted(est.classes_, yv)]
    assert np.isclose(-np.log(p).mean(), est.history_["valid_loss"].iloc[-1], atol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_batched_fits_on_cuda_match_the_cpu(monkeypatch):
    """The same batch on a GPU: same epochs and predictions as on the CPU up to rounding
    (TF32 off: its 10-bit mantissa is not the CPU's arithmetic)."""
    import torch

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    ests = [_est(s, device="cuda", max_epochs=3) for s in (0, 1)]
    data = [_data(0), _data(1)]
    gpu = fit_batched(ests, data)
    cpu = fit_batched([_est(s, device="cpu", max_epochs=3) for s in (0, 1)], data)
    for g, c, (_, _, Xv, _) in zip(gpu, cpu, data, strict=True):
        assert next(g.module_.parameters()).is_cuda
        assert np.allclose(g.predict_proba(Xv), c.predict_proba(Xv), atol=1e-3)


def test_batched_fits_autotune_convolutions_on_their_device(monkeypatch):
    """cuDNN's autotuner is asked for on the batch's device, as the skorch fits ask for it."""
    import eegmtl.mtl.runtime as runtime

    asked = []
    monkeypatch.setattr(runtime, "autotune_convolutions", lambda d: asked.append(str(d)))
    fit_batched([_est(0, max_epochs=1)], [_data(0)])
    assert asked == ["cpu"]
