"""The toy landscape resolves method names with the MTL core's one resolver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegmtl.benchmarks.toy import resolve_method, run_trajectory
from eegmtl.mtl.aggregators import get_aggregator
from eegmtl.mtl.weightings import get_weighting


def test_combined_name_uses_weighting_and_aggregator() -> None:
    """'db_mtl' = log weighting + DB-MTL aggregator on the weighted rows (as MTLStep does)."""
    jac = torch.tensor([[3.0, 0.5], [-0.2, 0.01]], dtype=torch.float64)
    losses = torch.tensor([2.0, 0.5], dtype=torch.float64)
    vec, w = resolve_method("db_mtl")(jac, losses)
    lw = get_weighting("log", 2).weights(losses.float()).double()
    ref = get_aggregator("db_mtl")(jac * lw[:, None])
    torch.testing.assert_close(vec, ref.vector)
    torch.testing.assert_close(w, ref.weights.double() * lw)
    # plain aggregator names are not the same method
    assert not torch.allclose(vec, resolve_method("pcgrad")(jac, losses)[0])


def test_combined_name_runs_a_trajectory() -> None:
    tr = run_trajectory("db_mtl", (1.0, 2.0), n_iter=5)
    assert np.isfinite(tr.final).all() and tr.config["backend"] == "registry"


def test_flat_variant_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="flat-minima variant.*without the 'f-' prefix"):
        resolve_method("f-pcgrad")
