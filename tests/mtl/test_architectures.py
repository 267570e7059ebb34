"""MMoE, CGC, PLE and Cross-stitch wrappers: one training step with 2 and 3 tasks, sharing
semantics (gates on the simplex, CGC's private experts, PLE's shared-gate path, cross-stitch
near-identity start)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eegmtl.mtl import Task
from eegmtl.mtl.architectures import CGC, PLE, CrossStitch, CrossStitchUnit, MMoE
from eegmtl.mtl.step import MTLStep

IN = 12


def _expert() -> nn.Module:
    return nn.Sequential(nn.Linear(IN, 16), nn.ReLU(), nn.Linear(16, 6), nn.ReLU())


def _expert_low() -> nn.Module:  # PLE level 0: IN -> 8
    return nn.Sequential(nn.Linear(IN, 8), nn.ReLU())


def _expert_high() -> nn.Module:  # PLE level >= 1: 8 -> 6 (last) or 8 -> 8
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU())


def _ple(n_tasks: int, n_levels: int = 2) -> PLE:
    mids = [lambda: nn.Sequential(nn.Linear(8, 8), nn.Tanh())] * (n_levels - 2)
    factories = [_expert_low, *mids, _expert_high]
    return PLE(factories, 1, 2, _heads(n_tasks), [IN] + [8] * (n_levels - 1))


def _stages() -> list[nn.Module]:
    return [nn.Sequential(nn.Linear(IN, 16), nn.ReLU()), nn.Sequential(nn.Linear(16, 6), nn.ReLU())]


def _names(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


def _heads(n: int) -> dict[str, nn.Module]:
    return {t: nn.Linear(6, 3) for t in _names(n)}


BUILDERS = {
    "mmoe": lambda n: MMoE(_expert, 3, _heads(n), IN),
    "cgc": lambda n: CGC(_expert, 1, 2, _heads(n), IN),
    "ple": _ple,
    "cross_stitch": lambda n: CrossStitch(_stages, _heads(n)),
}


def _batch(n_tasks: int, b: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, IN, generator=g)
    y = {t: torch.randint(0, 3, (b,), generator=g) for t in _names(n_tasks)}
    return x, y


def _tasks(n: int) -> list[Task]:
    return [Task(t, F.cross_entropy) for t in _names(n)]


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("n_tasks", [2, 3])
@pytest.mark.parametrize("aggregator", ["sum", "pcgrad", "mgda_ub"])
def test_one_training_step(arch: str, n_tasks: int, aggregator: str) -> None:
    torch.manual_seed(0)
    model = BUILDERS[arch](n_tasks)
    x, y = _batch(n_tasks)
    rep = model.encode(x)
    assert rep.shape == (16, n_tasks, 6)
    out = model(x)
    assert set(out) == set(_names(n_tasks)) and all(v.shape == (16, 3) for v in out.values())
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = MTLStep(model, _tasks(n_tasks), "ew", aggregator, optimizer=opt)(x, y)
    assert torch.isfinite(res.losses).all() and res.losses.shape == (n_tasks,)
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters())]
    assert any(changed)
    # every head moved, and the shared part moved
    for t in model.task_names:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.task_parameters(t))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.shared_parameters())


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_parameter_partition(arch: str) -> None:
    model = BUILDERS[arch](3)
    shared = {id(p) for p in model.shared_parameters()}
    heads = [{id(p) for p in model.task_parameters(t)} for t in model.task_names]
    assert all(not (shared & h) for h in heads)
    assert shared | set().union(*heads) == {id(p) for p in model.parameters()}
    with pytest.raises(KeyError, match="unknown task"):
        model.task_parameters("nope")
    with pytest.raises(ValueError, match="per-task features"):
        model.decode(torch.randn(4, 6))


@pytest.mark.parametrize("arch", ["mmoe", "cgc"])
def test_gates_on_the_simplex(arch: str) -> None:
    model = BUILDERS[arch](3)
    x, _ = _batch(3)
    for gate in model.gate_weights(x).values():
        assert gate.shape == (16, 3) and (gate >= 0).all()
        torch.testing.assert_close(gate.sum(dim=1), torch.ones(16))


def test_mmoe_features_are_gate_mixtures() -> None:
    torch.manual_seed(1)
    model = MMoE(_expert, 3, _heads(2), IN)
    x, _ = _batch(2)
    experts = torch.stack([e(x) for e in model.experts], dim=1)  # (B, E, d)
    rep = model.encode(x)
    for i, gate in enumerate(model.gate_weights(x).values()):
        torch.testing.assert_close(rep[:, i], (gate[:, :, None] * experts).sum(1))


def test_mmoe_single_expert_is_hard_sharing() -> None:
    model = MMoE(_expert, 1, _heads(2), IN)
    x, _ = _batch(2)
    rep = model.encode(x)
    torch.testing.assert_close(rep[:, 0], model.experts[0](x))
    torch.testing.assert_close(rep[:, 1], model.experts[0](x))


def test_cgc_tasks_use_only_their_own_specific_experts() -> None:
    torch.manual_seed(2)
    model = CGC(_expert, 1, 2, _heads(3), IN)
    x, _ = _batch(3)
    rep = model.encode(x)
    with torch.no_grad():
        for p in model.specific_experts["t1"].parameters():
            p.add_(1.0)
    rep2 = model.encode(x)
    torch.testing.assert_close(rep2[:, 0], rep[:, 0])
    torch.testing.assert_close(rep2[:, 2], rep[:, 2])
    assert not torch.allclose(rep2[:, 1], rep[:, 1])
    # experts are independent modules (not one instance repeated)
    ids = {id(e) for e in model.shared_experts} | {
        id(e) for t in model.task_names for e in model.specific_experts[t]
    }
    assert len(ids) == 1 + 3 * 2


def _nonzero_grad(module: nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("n_tasks", [2, 3])
def test_ple_one_level_is_cgc(n_tasks: int) -> None:
    torch.manual_seed(4)
    cgc = CGC(_expert, 1, 2, _heads(n_tasks), IN)
    ple = PLE([_expert], 1, 2, _heads(n_tasks), IN)
    shared = {k: v for k, v in cgc.state_dict().items() if not k.startswith("heads.")}
    ple.levels[0].load_state_dict(shared)  # strict: same experts and gates, same names
    ple.heads.load_state_dict(cgc.heads.state_dict())
    x, _ = _batch(n_tasks)
    assert not torch.allclose(PLE([_expert], 1, 2, _heads(n_tasks), IN).encode(x), cgc.encode(x))
    torch.testing.assert_close(ple.encode(x), cgc.encode(x))
    for t, out in cgc(x).items():
        torch.testing.assert_close(ple(x)[t], out)
    (gates,) = ple.gate_weights(x)
    for t, g in cgc.gate_weights(x).items():
        torch.testing.assert_close(gates[t], g)
    assert ple.shared_gate_weights(x) == [] and ple.levels[0].shared_gate is None


@pytest.mark.parametrize("n_levels", [2, 3])
def test_ple_gates_on_the_simplex(n_levels: int) -> None:
    model = _ple(3, n_levels)
    x, _ = _batch(3)
    task_gates, shared_gates = model.gate_weights(x), model.shared_gate_weights(x)
    assert len(task_gates) == n_levels and len(shared_gates) == n_levels - 1
    gates = [g for level in task_gates for g in level.values()]
    assert all(g.shape == (16, 1 + 2) for g in gates)
    assert all(g.shape == (16, 1 + 3 * 2) for g in shared_gates)
    for g in gates + shared_gates:
        assert (g >= 0).all()
        torch.testing.assert_close(g.sum(dim=1), torch.ones(16))


def test_ple_task_features_go_through_the_shared_gate() -> None:
    """Task t's feature depends on level 0's shared gate and, through it, on the other tasks'
    level-0 experts, but not on their level-0 gates nor their level-1 experts."""
    torch.manual_seed(5)
    model = _ple(3)
    x, _ = _batch(3)
    low, high = model.levels
    for i, t in enumerate(model.task_names):
        model.zero_grad(set_to_none=True)
        model.encode(x)[:, i].sum().backward()
        assert _nonzero_grad(low.shared_gate) and _nonzero_grad(low.shared_experts)
        assert _nonzero_grad(low.gates[t]) and _nonzero_grad(high.gates[t])
        for u in model.task_names:
            assert _nonzero_grad(low.specific_experts[u])  # u's experts -> shared gate -> t
            if u != t:
                assert not _nonzero_grad(low.gates[u]) and not _nonzero_grad(high.gates[u])
                assert not _nonzero_grad(high.specific_experts[u])
    assert high.shared_gate is None
    # every expert of every level is its own module
    experts = [e for lv in model.levels for e in lv.shared_experts]
    experts += [e for lv in model.levels for t in model.task_names for e in lv.specific_experts[t]]
    assert len({id(e) for e in experts}) == 2 * (1 + 3 * 2)


def test_ple_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="one per level"):
        PLE(_expert, 1, 1, _heads(2), IN)
    with pytest.raises(ValueError, match="one per level"):
        PLE([], 1, 1, _heads(2), IN)
    with pytest.raises(ValueError, match="one flattened input size per level"):
        PLE([_expert_low, _expert_high], 1, 1, _heads(2), [IN])
    with pytest.raises(ValueError, match="n_specific"):
        PLE([_expert], 1, -1, _heads(2), IN)
    wrong = PLE([_expert_low, _expert_high], 1, 1, _heads(2), IN)  # level 1 reads 8 values
    with pytest.raises(ValueError, match="in_features=12 got inputs of shape"):
        wrong.encode(_batch(2)[0])


@pytest.mark.parametrize("n_tasks", [1, 2, 3, 4])
def test_cross_stitch_unit_starts_near_identity(n_tasks: int) -> None:
    alpha = CrossStitchUnit(n_tasks).alpha.detach()
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(n_tasks))
    assert (alpha.diagonal() == (0.9 if n_tasks > 1 else 1.0)).all()
    xs = [torch.full((2, 3), float(i)) for i in range(n_tasks)]
    out = CrossStitchUnit(n_tasks, self_weight=1.0)(xs)
    for a, b in zip(out, xs):
        torch.testing.assert_close(a, b)


def test_cross_stitch_columns_separate_when_self_weight_one() -> None:
    torch.manual_seed(3)
    model = CrossStitch(_stages, _heads(2), self_weight=1.0)
    x, _ = _batch(2)
    rep = model.encode(x)
    with torch.no_grad():
        for p in model.columns[1].parameters():
            p.add_(1.0)
    torch.testing.assert_close(model.encode(x)[:, 0], rep[:, 0])
    # default 0.9/0.1 mixing: column 1 now changes task 0's feature
    mixed = CrossStitch(_stages, _heads(2))
    before = mixed.encode(x)[:, 0]
    with torch.no_grad():
        for p in mixed.columns[1].parameters():
            p.add_(1.0)
    assert not torch.allclose(mixed.encode(x)[:, 0], before)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="n_experts"):
        MMoE(_expert, 0, _heads(2), IN)
    with pytest.raises(ValueError, match="n_specific"):
        CGC(_expert, 1, -1, _heads(2), IN)
    with pytest.raises(ValueError, match="task head"):
        MMoE(_expert, 2, {}, IN)
    with pytest.raises(ValueError, match="self_weight"):
        CrossStitchUnit(2, 1.5)
    with pytest.raises(ValueError, match="at least one module"):
        CrossStitch(list, _heads(2))


@pytest.mark.parametrize("name", ["mmoe", "cgc", "ple", "cross_stitch"])
def test_lenet_models_through_the_runner_builder(name: str) -> None:
    from eegmtl.benchmarks.runner import _build_model

    model = _build_model(name, ["left", "right", "third"])
    out = model(torch.randn(2, 1, 36, 36))
    assert set(out) == {"left", "right", "third"} and out["left"].shape == (2, 10)
    with pytest.raises(ValueError, match="unknown model"):
        _build_model("nope", ["left"])
