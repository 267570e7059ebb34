"""FAMO, FairGrad, DB-MTL, STCH and ExcessMTL: agreement with TorchJD where it has the method,
golden values from the papers' update rules elsewhere, stated properties, one Trainer step with
2 and 3 tasks, and exact resume of their state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from eegmtl.mtl.aggregators import ExcessMTL, FairGrad, NashMTL, get_aggregator
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.trainer import Trainer
from eegmtl.mtl.weightings import FAMOWeighting, STCHWeighting, get_weighting

try:
    from ._tinynet import TinyNet
except ImportError:  # pragma: no cover - run as a plain module
    from _tinynet import TinyNet  # type: ignore[no-redef]

torchjd_aggregation = pytest.importorskip("torchjd.aggregation")

# the reference matrix of TorchJD's value tests
J_REF = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)


def _random(seed: int, n_tasks: int, p: int = 30, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_tasks, p, generator=g, dtype=dtype)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ----------------------------------------------------------------------------- FairGrad
def test_fairgrad_golden_value() -> None:
    out = FairGrad(alpha=1.0)(J_REF)
    torch.testing.assert_close(
        out.vector, torch.tensor([0.0766, 0.9985, 0.9985], dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(out.weights @ J_REF, out.vector)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_fairgrad_equals_torchjd(alpha: float) -> None:
    for seed in range(12):
        m = _random(seed, (2, 3, 5)[seed % 3])
        ours = FairGrad(alpha=alpha)(m).vector
        theirs = torchjd_aggregation.FairGrad(alpha=alpha)(m)
        assert _rel(ours, theirs) < 1e-6, (alpha, seed)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_fairgrad_solves_its_equation_and_scales(alpha: float) -> None:
    m = _random(3, 4)
    out = FairGrad(alpha=alpha)(m)
    w = out.weights
    # G G^T w = w^(-1/alpha): each directional derivative g_i . d equals w_i^(-1/alpha)
    torch.testing.assert_close(m @ out.vector, w ** (-1.0 / alpha), rtol=1e-9, atol=0)
    assert (w > 0).all()
    c = 7.0  # update scales as c^((1 - alpha) / (1 + alpha))
    scaled = FairGrad(alpha=alpha)(c * m).vector
    torch.testing.assert_close(scaled, c ** ((1 - alpha) / (1 + alpha)) * out.vector)


def test_fairgrad_alpha_one_is_nash_bargaining() -> None:
    for seed in range(5):
        m = _random(seed, 3)
        torch.testing.assert_close(
            FairGrad(alpha=1.0)(m).vector, NashMTL(max_norm=0.0)(m).vector, rtol=1e-6, atol=1e-9
        )


def test_fairgrad_zero_row_and_errors() -> None:
    m = _random(0, 3)
    m[1] = 0.0
    out = FairGrad()(m)
    assert out.weights[1] == 0 and torch.isfinite(out.vector).all()
    with pytest.raises(ValueError, match="alpha"):
        FairGrad(alpha=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        FairGrad(max_iter=0)


# ----------------------------------------------------------------------------- Trainer
def _loaders(n_tasks: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 16, generator=g)
    y = torch.randint(0, 2, (24,), generator=g)
    ds = TensorDataset(x, y)

    def collate(items):
        xb = torch.stack([i[0] for i in items])
        yb = torch.stack([i[1] for i in items])
        return xb, {"cls": yb, "rec": xb, "reg": torch.zeros(len(items))}

    return DataLoader(ds, batch_size=8, shuffle=False, collate_fn=collate)


def _tasks(n_tasks: int) -> list[Task]:
    tasks = [Task("cls", F.cross_entropy), Task("rec", F.mse_loss)]
    if n_tasks == 3:
        tasks.append(Task("reg", lambda z, _t: z.pow(2).mean() + 0.1))
    return tasks


def _trainer(n_tasks: int, epochs: int = 1, **method) -> Trainer:
    torch.manual_seed(0)
    model = TinyNet(with_reg=n_tasks == 3)
    return Trainer(model, _tasks(n_tasks), max_epochs=epochs, progress=False, patience=None,
                   seed=0, **method)


NEW_METHODS = [
    {"aggregator": "fairgrad"},
    {"aggregator": "excess_mtl"},
    {"weighting": "famo"},
    {"weighting": "stch"},
]


@pytest.mark.parametrize("n_tasks", [2, 3])
@pytest.mark.parametrize("method", NEW_METHODS, ids=lambda m: "+".join(map(str, m.values())))
def test_new_method_trains_in_the_trainer(method: dict, n_tasks: int) -> None:
    tr = _trainer(n_tasks, **method)
    before = [p.detach().clone() for p in tr.model.parameters()]
    tr.fit(_loaders(n_tasks), _loaders(n_tasks))
    after = list(tr.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert all(torch.isfinite(p).all() for p in after)


def test_registered_by_name() -> None:
    assert isinstance(get_aggregator("FairGrad", alpha=2.0), FairGrad)
    assert np.isclose(get_aggregator("fairgrad", alpha=2.0).alpha, 2.0)


# ----------------------------------------------------------------------------- ExcessMTL
@pytest.mark.parametrize("warmup", [0, 2])
def test_excess_mtl_equals_torchjd_over_calls(warmup: int) -> None:
    ours = ExcessMTL(robust_step_size=0.5, n_warmup_steps=warmup)
    theirs = torchjd_aggregation.ExcessMTL(robust_step_size=0.5, n_warmup_steps=warmup)
    for seed in range(8):
        m = _random(seed, 3) * (1 + seed)
        out = ours(m)
        assert _rel(out.vector, theirs(m)) < 1e-12, seed
        torch.testing.assert_close(out.weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_excess_mtl_golden_and_state_round_trip() -> None:
    # by hand: first call, S = g^2, E_t = sum g^2 / sqrt(g^2 + 1e-7) ~ ||g_t||_1, used raw
    m = J_REF
    out = ExcessMTL(robust_step_size=0.1)(m)
    e = (m.pow(2) / torch.sqrt(m.pow(2) + 1e-7)).sum(1)
    w = torch.softmax(torch.log(torch.full((2,), 0.5, dtype=torch.float64)) + 0.1 * e, 0)
    torch.testing.assert_close(out.weights, w)
    agg = ExcessMTL()
    for seed in range(3):
        agg(_random(seed, 3))
    clone = ExcessMTL()
    clone.load_state_dict(agg.state_dict())
    for seed in range(3, 6):
        torch.testing.assert_close(agg(_random(seed, 3)).vector, clone(_random(seed, 3)).vector)
    with pytest.raises(ValueError, match="reset"):
        agg(_random(0, 2))


# ----------------------------------------------------------------------------- FAMO
def _torchjd_famo_grad(famo, values: torch.Tensor) -> torch.Tensor:
    v = values.clone().requires_grad_(True)
    famo(v).backward()
    return v.grad


@pytest.mark.parametrize("n_tasks", [2, 3])
def test_famo_equals_torchjd_with_exact_update(n_tasks: int) -> None:
    scal = pytest.importorskip("torchjd.scalarization")
    theirs = scal.FAMO(n_tasks, lr=0.025, weight_decay=1e-3)
    ours = FAMOWeighting(n_tasks)
    g = torch.Generator().manual_seed(n_tasks)
    for _ in range(15):
        before = torch.rand(n_tasks, generator=g) + 0.5
        after = before * (0.5 + torch.rand(n_tasks, generator=g))
        w = ours.weights(before)
        torch.testing.assert_close(w, _torchjd_famo_grad(theirs, before), rtol=1e-5, atol=1e-6)
        ours.update(after)
        theirs.update(after)
    torch.testing.assert_close(ours.logits.float(), theirs._w.detach(), rtol=1e-5, atol=1e-6)
    assert ours.logits.abs().max() > 1e-3  # the logits moved


def test_famo_golden_and_lagged_update() -> None:
    # by hand: z = softmax(0) = 1/2, w_t = (1/L_t) / sum_s (1/L_s)
    famo = FAMOWeighting(2)
    torch.testing.assert_close(famo.weights(torch.tensor([1.0, 3.0])), torch.tensor([0.75, 0.25]))
    # without update(): the next weights() call updates with its losses as "after"
    lagged, exact = FAMOWeighting(2), FAMOWeighting(2)
    lagged.weights(torch.tensor([1.0, 3.0]))
    exact.weights(torch.tensor([1.0, 3.0]))
    exact.update(torch.tensor([0.5, 2.9]))
    lagged.weights(torch.tensor([0.5, 2.9]))
    torch.testing.assert_close(lagged.logits, exact.logits)
    # task 0 improved more, so its logit went down (first Adam step: -lr * sign)
    assert lagged.logits[0] < 0 < lagged.logits[1]
    torch.testing.assert_close(lagged.logits.abs(), torch.full((2,), 0.025, dtype=torch.float64))
    with pytest.raises(ValueError, match="lower bound"):
        FAMOWeighting(2, min_losses=[1.0, 0.0]).weights(torch.tensor([0.5, 1.0]))


def test_weightings_registered_and_modules() -> None:
    famo = get_weighting("famo", 3)
    assert isinstance(famo, FAMOWeighting) and isinstance(famo, torch.nn.Module)
    assert list(famo.parameters()) == []  # the logits are not for the trainer's optimiser
    assert {"logits", "exp_avg", "exp_avg_sq", "_extra_state"} <= set(famo.state_dict())


# ----------------------------------------------------------------------------- STCH
def test_stch_matches_torchjd_formula_after_warmup() -> None:
    scal = pytest.importorskip("torchjd.scalarization")
    stch = STCHWeighting(3, mu=0.5, warmup_epochs=1)
    seen = [torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 2.0, 1.5])]
    torch.testing.assert_close(stch.weights(seen[0]), 1.0 / seen[0])  # warm-up: log losses
    stch.after_epoch(0, seen[0])
    for s in seen:  # nadir epoch: still log losses, losses averaged
        torch.testing.assert_close(stch.weights(s), 1.0 / s)
    stch.after_epoch(1, seen[1])
    nadir = (seen[0] + seen[1]) / 2
    losses = torch.tensor([1.5, 0.8, 1.2], dtype=torch.float64, requires_grad=True)
    u = torch.log(losses / nadir.double() + 1e-20)
    (3 * scal.STCH(mu=0.5, weights=torch.ones(3, dtype=torch.float64))(u)).backward()
    torch.testing.assert_close(stch.weights(losses.detach()), losses.grad)
    clone = STCHWeighting(3, mu=0.5, warmup_epochs=1)
    clone.load_state_dict(stch.state_dict())
    torch.testing.assert_close(clone.weights(losses.detach()), losses.grad)
