"""Flat-minima variants: batched = exact loop; LookSAM and m-sharpness contracts."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from eegmtl.mtl.aggregators import AGGREGATORS, get_aggregator
from eegmtl.mtl.flat import FlatConfig
from eegmtl.mtl.step import MTLStep
from eegmtl.mtl.tasks import Task

try:
    from ._tinynet import TinyNet
except ImportError:  # tests/ is not a package
    from _tinynet import TinyNet  # type: ignore[no-redef]

TASKS = [
    Task("cls", F.cross_entropy),
    Task("rec", F.mse_loss),
    Task("reg", lambda z, _: z.pow(2).mean()),
]


def _batch(seed=2, n=9):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, generator=g)
    return x, {"cls": torch.randint(0, 2, (n,), generator=g), "rec": x, "reg": x}


def _model():
    torch.manual_seed(0)
    return TinyNet()


def _agg(name):
    return get_aggregator(name, n_tasks=3) if name == "nash_mtl" else get_aggregator(name)


def _run(mode, agg="pcgrad", steps=3, every=1, adaptive=False, norm="separate", seed=0):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    flat = {"rho": 0.3, "adaptive": adaptive, "norm": norm, "mode": mode, "every": every}
    step = MTLStep(model, TASKS, "ew", _agg(agg), opt, flat=flat, gradient_mode="loop")
    grads = []
    for k in range(steps):
        res = step(*_batch(seed + k))
        grads.append([p.grad.clone() for p in model.parameters()])
    return model, grads, res, step


@pytest.mark.parametrize("agg", ["sum", "mean", "pcgrad", "mgda", "imtl_g"])
@pytest.mark.parametrize("adaptive,norm", [(False, "separate"), (True, "joint")])
def test_batched_equals_exact_loop(agg, adaptive, norm):
    if agg not in AGGREGATORS:
        pytest.skip(f"{agg} not registered")
    m1, g1, _, _ = _run("exact", agg, adaptive=adaptive, norm=norm)
    m2, g2, _, _ = _run("batched", agg, adaptive=adaptive, norm=norm)
    for a, b in zip(g1, g2):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=k)


def test_batched_leaves_parameters_and_batchnorm_untouched():
    x, y = _batch()
    m1, m2 = _model(), _model()
    MTLStep(m1, TASKS, "ew", "mean", fast_path=False)(x, y)
    MTLStep(m2, TASKS, "ew", "mean", flat={"rho": 0.5, "mode": "batched"})(x, y)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    assert not torch.allclose(m1.trunk[0].weight.grad, m2.trunk[0].weight.grad)


def test_looksam_every_one_equals_exact():
    m1, g1, _, _ = _run("exact")
    m2, g2, _, _ = _run("looksam", every=1)
    for a, b in zip(g1, g2):
        for x, y in zip(a, b):
            assert torch.equal(x, y)


def test_looksam_reuses_the_orthogonal_flat_component():
    model = _model()
    step = MTLStep(model, TASKS, "ew", "sum", None, flat={"rho": 0.3, "mode": "looksam",
                                                          "every": 3}, gradient_mode="loop")
    refresh = [step(*_batch(k)).diagnostics["flat_refresh"] for k in range(4)]
    assert refresh == [True, False, False, True]
    # on a reuse step the flat rows are alpha * |g_i| / |v_i| * v_i, v_i orthogonal to g_i
    v = step.looksam.ortho
    step.looksam.count = 1
    clean = torch.randn_like(v)
    rows, _ = step.looksam.reuse(clean, [[None] * len(h) for h in step.heads], 0.7)
    torch.testing.assert_close(rows.norm(dim=1), 0.7 * clean.norm(dim=1))
    torch.testing.assert_close(rows / rows.norm(dim=1, keepdim=True),
                               v / v.norm(dim=1, keepdim=True))
    # state travels with the step's state_dict (exact resume)
    other = MTLStep(_model(), TASKS, "ew", "sum", None,
                    flat={"rho": 0.3, "mode": "looksam", "every": 3})
    other.load_state_dict(step.state_dict())
    assert other.looksam.count == 1 and torch.equal(other.looksam.ortho, v)


def test_subset_perturbs_each_task_on_its_chunk():
    """For F-EW the shared update is the sum of the tasks' SAM gradients on their chunks."""
    x, y = _batch(n=9)  # T = 3 chunks of 3, no remainder after 9
    model = _model()
    step = MTLStep(model, TASKS, "ew", "sum", None, flat={"rho": 0.3, "mode": "subset"})
    step(x, y)
    got = torch.cat([p.grad.reshape(-1) for p in step.shared])
    # reference: the exact per-task perturbation, each task's SAM pass on its own chunk
    ref_model = _model()
    ref = MTLStep(ref_model, TASKS, "ew", "sum", None, flat={"rho": 0.3}, gradient_mode="loop")
    seen = {}

    def capture(i):
        out = ref_model.decode(ref_model.encode(x[3 * i: 3 * i + 3]))
        t = TASKS[i]
        tgt = y[t.name][3 * i: 3 * i + 3]
        seen[i] = True
        return t.loss(out[t.name], tgt)

    from eegmtl.mtl import flat as flat_mod

    rep = ref_model.encode(x)
    rep_d = rep.detach().requires_grad_(True)
    from eegmtl.mtl.step import compute_losses

    losses = compute_losses(ref_model.decode(rep_d), y, TASKS)
    grads = ref.engine.compute(losses, rep, rep_d, ref.shared, ref.heads)
    sam, _ = flat_mod.sharpness_aware_gradients(
        ref_model, capture, ref.shared, ref.heads, grads.matrix, grads.heads, ref.flat
    )
    torch.testing.assert_close(got, sam.sum(0), rtol=1e-4, atol=1e-6)
    assert len(seen) == 3


def test_batched_rejects_cumulative_batchnorm_with_a_clear_error():
    model = _model()
    model.trunk[2].momentum = None
    step = MTLStep(model, TASKS, "ew", "sum", None, flat={"rho": 0.3, "mode": "batched"})
    with pytest.raises(ValueError, match="mode='exact'"):
        step(*_batch())


def test_subset_needs_one_sample_per_task():
    model = _model()
    step = MTLStep(model, TASKS, "ew", "sum", None, flat={"rho": 0.3, "mode": "subset"})
    with pytest.raises(ValueError, match="chunks"):
        step(*_batch(n=2))


def test_flat_options_validated_and_recorded():
    with pytest.raises(ValueError, match="mode"):
        FlatConfig(mode="fast")
    with pytest.raises(ValueError, match="looksam"):
        FlatConfig(every=5)
    with pytest.raises(ValueError, match="every"):
        FlatConfig(mode="looksam", every=0)
    step = MTLStep(_model(), TASKS, "ew", "pcgrad", flat={"mode": "looksam", "every": 5})
    cfg = step.config()
    assert cfg["flat"]["mode"] == "looksam" and cfg["flat"]["every"] == 5
    assert cfg["gradient_mode"] in ("vmap", "loop") and cfg["autocast"] is None
