"""DB-MTL (log-loss weighting + max-norm gradient balancing): golden values from the paper's
update rule worked out in numpy over several calls, loss-scale invariance end to end on a tiny
model, state round trip, registry/method-name resolution, one Trainer run with 2 and 3 tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from eegmtl.mtl.aggregators import AGGREGATORS, DBMTL, get_aggregator
from eegmtl.mtl.step import MTLStep, resolve_method
from eegmtl.mtl.tasks import Task
from eegmtl.mtl.trainer import Trainer
from eegmtl.mtl.weightings import WEIGHTINGS, LogLossWeighting, get_weighting

try:
    from ._tinynet import TinyNet
except ImportError:  # pragma: no cover - run as a plain module
    from _tinynet import TinyNet  # type: ignore[no-redef]


def _rows(seed: int, n_tasks: int, p: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_tasks, p)) * rng.uniform(0.01, 100.0, size=(n_tasks, 1))


def _reference(calls: list[np.ndarray], beta: float, sigma: float) -> list[np.ndarray]:
    """The paper's Algorithm 1, one task at a time, in plain numpy."""
    ema = [np.zeros_like(calls[0][t]) for t in range(calls[0].shape[0])]
    out = []
    for k, g in enumerate(calls, start=1):
        beta_k = beta / k**sigma
        ema = [beta_k * ema[t] + (1.0 - beta_k) * g[t] for t in range(len(ema))]
        norms = [float(np.sqrt(np.sum(e * e))) for e in ema]
        top = max(norms)
        out.append(sum(top * e / n for e, n in zip(ema, norms)))
    return out


# ----------------------------------------------------------------------------- aggregator
def test_golden_first_call_by_hand() -> None:
    # first call: EMA = 0.1 g; norms 0.1*5 and 0.1*1; update = 0.5 * (g0/5 + g1/1)
    g = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    out = DBMTL()(g)
    torch.testing.assert_close(out.vector, torch.tensor([0.3, 0.4, -0.5], dtype=torch.float64))
    torch.testing.assert_close(out.weights, torch.tensor([1.0, 5.0], dtype=torch.float64))


@pytest.mark.parametrize(("beta", "sigma"), [(0.9, 0.0), (0.5, 0.0), (0.9, 0.5), (0.0, 0.0)])
@pytest.mark.parametrize("n_tasks", [2, 3, 5])
def test_golden_values_over_calls(beta: float, sigma: float, n_tasks: int) -> None:
    calls = [_rows(10 * n_tasks + k, n_tasks) for k in range(6)]
    expected = _reference(calls, beta, sigma)
    agg = DBMTL(beta=beta, beta_sigma=sigma)
    ema = np.zeros_like(calls[0])
    for k, (g, exp) in enumerate(zip(calls, expected), start=1):
        out = agg(torch.from_numpy(g))
        np.testing.assert_allclose(out.vector.numpy(), exp, rtol=1e-12, atol=1e-12)
        b = beta / k**sigma
        ema = b * ema + (1 - b) * g
        np.testing.assert_allclose((out.weights @ torch.from_numpy(ema)).numpy(), exp, rtol=1e-12)


def test_every_task_moves_by_the_largest_norm() -> None:
    agg = DBMTL(beta=0.0)  # no averaging: the rows of this call
    g = torch.from_numpy(_rows(1, 4))
    out = agg(g)
    norms = g.norm(dim=1)
    contributions = out.weights[:, None] * g
    torch.testing.assert_close(contributions.norm(dim=1), norms.max().expand(4))


def test_scale_behaviour_of_the_aggregator() -> None:
    calls = [torch.from_numpy(_rows(k, 3)) for k in range(4)]
    a, b, c = DBMTL(), DBMTL(), DBMTL()
    for g in calls:
        ref = a(g).vector
        scaled_all = b(7.0 * g).vector
        one = g.clone()
        one[1] *= 1e-3  # a task that is not the largest: only its share of the sum is kept
        scaled_one = c(one).vector
    torch.testing.assert_close(scaled_all, 7.0 * ref)
    cos = float(ref @ scaled_one / (ref.norm() * scaled_one.norm()))
    assert cos == pytest.approx(1.0, abs=1e-12)


def test_zero_row_gets_zero_weight_and_tiny_rows_are_balanced() -> None:
    g = torch.tensor([[1e-12, 0.0], [0.0, 0.0], [0.0, 3e-12]], dtype=torch.float64)
    out = DBMTL(beta=0.0)(g)
    torch.testing.assert_close(out.weights, torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(out.vector, torch.tensor([3e-12, 3e-12], dtype=torch.float64))


def test_state_round_trip_and_shape_change() -> None:
    agg = DBMTL(beta=0.8, beta_sigma=0.3)
    for seed in range(3):
        agg(torch.from_numpy(_rows(seed, 3)))
    clone = DBMTL(beta=0.8, beta_sigma=0.3)
    clone.load_state_dict(agg.state_dict())
    for seed in range(3, 6):
        g = torch.from_numpy(_rows(seed, 3))
        torch.testing.assert_close(agg(g).vector, clone(g).vector, rtol=0, atol=0)
    with pytest.raises(ValueError, match="reset"):
        agg(torch.from_numpy(_rows(0, 2)))
    agg.reset()
    first = agg(torch.from_numpy(_rows(0, 2))).vector
    torch.testing.assert_close(
        first, DBMTL(beta=0.8, beta_sigma=0.3)(torch.from_numpy(_rows(0, 2))).vector
    )


@pytest.mark.parametrize(
    "kwargs", [{"beta": 1.0}, {"beta": -0.1}, {"beta": float("nan")}, {"beta_sigma": -1.0}]
)
def test_bad_hyper_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="beta"):
        DBMTL(**kwargs)


# ----------------------------------------------------------------------------- weighting
def test_log_weighting_values_and_errors() -> None:
    w = LogLossWeighting(3)
    losses = torch.tensor([0.5, 2.0, 1e-3])
    torch.testing.assert_close(w.weights(losses), 1.0 / (losses + 1e-8))
    torch.testing.assert_close(LogLossWeighting(3, eps=1.0).weights(losses), 1.0 / (losses + 1))
    with pytest.raises(ValueError, match="log"):
        w.weights(torch.tensor([0.5, -1.0, 1.0]))
    with pytest.raises(ValueError, match="eps"):
        LogLossWeighting(2, eps=-1.0)
    # the weighted gradient is the gradient of log(L + eps)
    x = torch.tensor([0.3, 1.7], requires_grad=True)
    loss = (x**2).sum() * 4.0
    (g,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g_log,) = torch.autograd.grad(torch.log(loss + 1e-8), x)
    torch.testing.assert_close(LogLossWeighting(1).weights(loss.detach()[None])[0] * g, g_log)


# ----------------------------------------------------------------------------- registry
def test_registered_and_resolved_as_one_method() -> None:
    assert AGGREGATORS["db_mtl"] is DBMTL and isinstance(get_aggregator("DB-MTL"), DBMTL)
    assert WEIGHTINGS["log"] is LogLossWeighting
    assert isinstance(get_weighting("log", 2), LogLossWeighting)
    assert resolve_method("db_mtl") == {"weighting": "log", "aggregator": "db_mtl", "flat": None}
    assert resolve_method("DB-MTL")["weighting"] == "log"
    flat = resolve_method("f-db_mtl")
    assert flat["aggregator"] == "db_mtl" and flat["flat"] is not None
    assert resolve_method("log") == {"weighting": "log", "aggregator": "sum", "flat": None}
    assert not DBMTL.linear and DBMTL.level == "parameters"


def test_mixnet_accepts_the_method_name() -> None:
    from eegmtl.mixnet.config import resolve_mtl

    out = resolve_mtl("db_mtl")  # what MixNetClassifier(mtl="db_mtl") trains with
    assert out["weighting"] == "log" and out["aggregator"] == "db_mtl"


# ----------------------------------------------------------------------------- end to end
def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 3, 16, generator=g)
    return x, {"cls": torch.randint(0, 2, (8,), generator=g), "rec": x}


def _shared_updates(scale: float, weighting: str, weight_heads: bool = False):
    torch.manual_seed(0)
    model = TinyNet(with_reg=False)
    tasks = [
        Task("cls", F.cross_entropy),
        Task("rec", lambda out, tgt: scale * F.mse_loss(out, tgt)),
    ]
    step = MTLStep(model, tasks, weighting, DBMTL(), weight_heads=weight_heads)
    grads = []
    for seed in range(3):  # several calls: the EMA state is exercised
        step(*_batch(seed))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    return grads


def test_loss_scale_invariance_end_to_end() -> None:
    for c in (1e3, 1e-3):
        for ref, scaled in zip(_shared_updates(1.0, "log", True), _shared_updates(c, "log", True)):
            torch.testing.assert_close(scaled, ref, rtol=1e-4, atol=1e-7)
    # without the log transform the largest norm, hence the update, follows the loss scale
    ref = _shared_updates(1.0, "ew")[-1]
    big = _shared_updates(1e3, "ew")[-1]
    assert float(big.norm()) > 10.0 * float(ref.norm())


def _loaders(n_tasks: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 16, generator=g)
    y = torch.randint(0, 2, (24,), generator=g)

    def collate(items):
        xb = torch.stack([i[0] for i in items])
        yb = torch.stack([i[1] for i in items])
        return xb, {"cls": yb, "rec": xb, "reg": torch.zeros(len(items))}

    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False, collate_fn=collate)


@pytest.mark.parametrize("n_tasks", [2, 3])
def test_trains_in_the_trainer(n_tasks: int) -> None:
    tasks = [Task("cls", F.cross_entropy), Task("rec", F.mse_loss)]
    if n_tasks == 3:
        tasks.append(Task("reg", lambda z, _t: z.pow(2).mean() + 0.1))
    torch.manual_seed(0)
    model = TinyNet(with_reg=n_tasks == 3)
    kw = resolve_method("db_mtl")
    tr = Trainer(
        model,
        tasks,
        max_epochs=1,
        progress=False,
        patience=None,
        seed=0,
        weighting=kw["weighting"],
        aggregator=kw["aggregator"],
    )
    assert isinstance(tr.weighting, LogLossWeighting) and isinstance(tr.aggregator, DBMTL)
    before = [p.detach().clone() for p in model.parameters()]
    tr.fit(_loaders(n_tasks), _loaders(n_tasks))
    after = list(model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert all(torch.isfinite(p).all() for p in after)
    assert tr.aggregator.state_dict()["_extra_state"]["n_steps"] == 3
