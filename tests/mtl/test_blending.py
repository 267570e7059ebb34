"""Gradient blending (MixNet) against an independent, literal re-computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.mtl.weightings import GradientBlending


def _synthetic(n_steps: int, n_tasks: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy train curves that keep decreasing; val curves that flatten / turn up."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)[:, None]
    rates = np.array([0.02, 0.05, 0.01])[:n_tasks]
    train = 2.0 * np.exp(-rates * t) + 0.3 + 0.05 * rng.standard_normal((n_steps, n_tasks))
    turn = np.array([60.0, 40.0, 200.0])[:n_tasks]
    val = 2.2 * np.exp(-rates * t) + 0.4 + 1e-4 * np.maximum(t - turn, 0) ** 2
    val = val + 0.08 * rng.standard_normal((n_steps, n_tasks))
    return train, val


def _reference(
    train: np.ndarray,
    val: np.ndarray,
    steps_per_epoch: int,
    warmup: int,
    batch: int,
    val_batch: int,
    init: list[float],
    formulation: str = "code",
) -> list[np.ndarray]:
    """Straightforward re-computation of MixNet's HistoricalTangentSlope + GradientBlending.

    Full histories, explicit loops, ``np.polyfit``; the weights in force after every step.
    """
    n_steps, n_tasks = train.shape
    hist = batch
    tw, vw = int(batch * 1.25), int(val_batch * 1.25)
    s_tr = [[] for _ in range(n_tasks)]
    s_va = [[] for _ in range(n_tasks)]
    ref_tr = [None] * n_tasks
    ref_va = [None] * n_tasks
    weights = np.array(init, dtype=np.float64)
    out = []
    for step in range(n_steps):
        epoch = step // steps_per_epoch
        for k in range(n_tasks):
            s_tr[k].append(np.mean(train[max(0, step + 1 - tw) : step + 1, k]))
            s_va[k].append(np.mean(val[max(0, step + 1 - vw) : step + 1, k]))
        if epoch >= warmup:
            raw = []
            for k in range(n_tasks):
                a, b = np.array(s_tr[k]), np.array(s_va[k])
                if formulation == "code":
                    if ref_tr[k] is None:
                        x = a[-hist - 1 : -1]
                        y = b[-hist - 1 : -1]
                        ref_tr[k] = np.polyfit(np.arange(len(x)), x, 1)[0]
                        ref_va[k] = np.polyfit(np.arange(len(y)), y, 1)[0]
                    x, y = a[-hist:], b[-hist:]
                    st = np.polyfit(np.arange(len(x)), x, 1)[0]
                    sv = np.polyfit(np.arange(len(y)), y, 1)[0]
                    o = (sv - st) - (ref_va[k] - ref_tr[k])
                    g = sv - ref_va[k]
                    if ref_va[k] > sv:
                        ref_tr[k], ref_va[k] = st, sv
                else:
                    n0 = max(len(b) - 1 - hist, 0)
                    g = b[n0] - b[-1]
                    o = (b[-1] - a[-1]) - (b[n0] - a[n0])
                w = g / (o * o + 1e-6)
                raw.append(w if w > 0 else 0.0)
            total = sum(raw)
            if total != 0:
                weights = np.array([max(w / total, 1e-5) for w in raw])
            else:
                weights = np.array(init, dtype=np.float64)
        out.append(weights.copy())
    return out


def _run(
    bl: GradientBlending, train: np.ndarray, val: np.ndarray, steps_per_epoch: int
) -> list[np.ndarray]:
    out = []
    n_steps = train.shape[0]
    for step in range(n_steps):
        tr = torch.tensor(train[step], dtype=torch.float32)
        w_used = bl.weights(tr)  # in force during this step
        if out:
            np.testing.assert_array_equal(w_used.numpy(), out[-1].astype(np.float32))
        bl.after_step(tr, torch.tensor(val[step], dtype=torch.float32))
        out.append(bl.current_weights.double().numpy())
        if (step + 1) % steps_per_epoch == 0:
            bl.after_epoch(step // steps_per_epoch, tr)
    return out


@pytest.mark.parametrize("formulation", ["code", "supplement"])
@pytest.mark.parametrize("batch, val_batch, spe, warmup", [(32, 8, 10, 7), (8, 4, 6, 2)])
def test_weights_equal_reference(
    formulation: str, batch: int, val_batch: int, spe: int, warmup: int
) -> None:
    n_steps = spe * (warmup + 8)
    train, val = _synthetic(n_steps)
    # feed the exact float32 values the weighting will see
    train, val = (
        train.astype(np.float32).astype(np.float64),
        val.astype(np.float32).astype(np.float64),
    )
    bl = GradientBlending(
        3, warmup_epochs=warmup, batch_size=batch, val_batch_size=val_batch, formulation=formulation
    )
    got = _run(bl, train, val, spe)
    want = _reference(train, val, spe, warmup, batch, val_batch, [1.0, 1.0, 1.0], formulation)
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7, err_msg=f"step {step}")
    # the weights did move after warm-up, sum to ~1 and respect the floor
    post = np.array(got[spe * warmup :])
    assert not np.allclose(post, 1.0)
    assert np.all(post >= 1e-5 - 1e-12)
    moved = post[~np.all(post == 1.0, axis=1)]
    np.testing.assert_allclose(moved.sum(axis=1), 1.0, atol=3 * 1e-5)
    assert bl.last_O is not None and bl.last_G is not None and bl.last_raw_weights is not None


def test_weights_unchanged_during_warmup() -> None:
    spe, warmup = 5, 3
    train, val = _synthetic(spe * warmup + 20)
    init = [0.2, 1.0, 3.0]
    bl = GradientBlending(
        3, warmup_epochs=warmup, batch_size=4, val_batch_size=2, initial_weights=init
    )
    for step in range(spe * warmup):
        assert bl.in_warmup
        assert torch.equal(bl.weights(torch.ones(3)), torch.tensor(init))
        bl.after_step(torch.tensor(train[step]), torch.tensor(val[step]))
        assert torch.equal(bl.current_weights, torch.tensor(init))
        assert bl.last_O is None
        if (step + 1) % spe == 0:
            bl.after_epoch(step // spe, torch.ones(3))
    assert not bl.in_warmup and bl.epoch == warmup
    changed = []
    for step in range(spe * warmup, len(train)):
        bl.after_step(torch.tensor(train[step]), torch.tensor(val[step]))
        assert bl.last_O is not None
        changed.append(not torch.equal(bl.current_weights, torch.tensor(init)))
    assert any(changed)


def test_reverts_to_initial_when_all_weights_clip() -> None:
    # validation descent accelerates at every step: the val slope is always steeper than
    # its reference, so G < 0 and every raw weight clips to 0
    steps = np.arange(60, dtype=np.float64)
    val = np.stack([10.0 - c * steps**2 for c in (1e-3, 2e-3, 3e-3)], axis=1)
    train = val - 0.5
    init = [0.5, 1.0, 2.0]
    bl = GradientBlending(3, warmup_epochs=0, batch_size=8, val_batch_size=4, initial_weights=init)
    for i in range(60):
        bl.after_step(torch.tensor(train[i]), torch.tensor(val[i]))
    assert bl.last_raw_weights is not None
    assert torch.equal(bl.last_raw_weights, torch.zeros(3))
    assert (bl.last_G < 0).all()
    assert torch.equal(bl.current_weights, torch.tensor(init))


def test_bad_input() -> None:
    bl = GradientBlending(3, warmup_epochs=0)
    with pytest.raises(ValueError, match="interleaved validation"):
        bl.after_step(torch.ones(3))
    with pytest.raises(ValueError, match="3 tasks but got 2"):
        bl.after_step(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="non-finite"):
        bl.after_step(torch.tensor([1.0, float("nan"), 1.0]), torch.ones(3))
    with pytest.raises(ValueError, match="formulation"):
        GradientBlending(3, formulation="paper")
    with pytest.raises(ValueError, match="initial_weights"):
        GradientBlending(3, initial_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="hist_size"):
        GradientBlending(3, hist_size=1)


def test_defaults_follow_mixnet() -> None:
    bl = GradientBlending(3)
    assert bl.formulation == "code"
    assert (bl.warmup_epochs, bl.batch_size, bl.hist_size) == (7, 32, 32)
    assert (bl.train_window, bl.val_window) == (40, 10)
    assert torch.equal(bl.weights(torch.ones(3)), torch.ones(3))
