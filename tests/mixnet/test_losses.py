"""Tests of eegmtl.mixnet.losses: semi-hard triplet (TF-Addons definition), MSE, balanced CE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from eegmtl.mixnet.losses import (
    ClassBalancedCrossEntropy,
    ReconstructionLoss,
    SemiHardTripletLoss,
    balanced_class_weights,
    class_balanced_cross_entropy,
    pairwise_distances,
    reconstruction_loss,
    semi_hard_triplet_loss,
)


def naive_semi_hard(labels, emb, margin, squared=False):
    """Literal per-pair loops over the TF-Addons definition (independent of the vectorised code)."""
    n = emb.shape[0]
    total = emb.sum() * 0.0
    pairs = 0
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            pairs += 1

            def d(i, j):
                sq = ((emb[i] - emb[j]) ** 2).sum()
                return sq if squared else (sq.sqrt() if sq > 0 else sq * 0.0)

            d_ap = d(a, p)
            negs = [d(a, k) for k in range(n) if labels[k] != labels[a]]
            farther = [v for v in negs if v > d_ap]
            if farther:
                d_an = min(farther, key=lambda v: v.detach().item())
            elif negs:
                d_an = max(negs, key=lambda v: v.detach().item())
            else:
                d_an = emb.sum() * 0.0  # TF-Addons: no negative at all -> 0
            total = total + torch.clamp(margin + d_ap - d_an, min=0.0)
    return total / pairs


def masked_formulation(labels, emb, margin):
    """TF-Addons' masked-minimum / masked-maximum formulation, re-expressed in numpy."""
    labels, emb = np.asarray(labels), np.asarray(emb, dtype=np.float64)
    d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
    neg = labels[:, None] != labels[None]
    pos = ~neg & ~np.eye(len(labels), dtype=bool)
    total = 0.0
    for a, p in zip(*np.nonzero(pos)):
        row = d[a]
        mask = neg[a] & (row > row[p])
        if mask.any():  # masked minimum: min((x - max) * mask) + max
            d_an = ((row - row.max()) * mask).min() + row.max()
        else:  # masked maximum: max((x - min) * mask) + min  (-> 0 with no negative)
            d_an = ((row - row.min()) * neg[a]).max() + row.min()
        total += max(0.0, margin + row[p] - d_an)
    return total / pos.sum()


# ----------------------------------------------------------------------------- triplet, by hand
def test_triplet_hand_1d_semi_hard_and_fallback_with_tie():
    # points 0, 1 (class 0) and 1.5, 3 (class 1), margin 1
    # (0,1): d_ap=1, negatives {1.5, 3}, closest farther -> 1.5: 1 + 1 - 1.5 = 0.5
    # (1,0): d_ap=1, negatives {0.5, 2} -> 2: 1 + 1 - 2 = 0
    # (2,3): d_ap=1.5, negatives {1.5, 0.5}: none farther -> farthest 1.5: 1 + 1.5 - 1.5 = 1
    # (3,2): d_ap=1.5, negatives {3, 2} -> 2: 1 + 1.5 - 2 = 0.5
    emb = torch.tensor([[0.0], [1.0], [1.5], [3.0]])
    y = torch.tensor([0, 0, 1, 1])
    loss = semi_hard_triplet_loss(y, emb, margin=1.0)
    assert loss.item() == pytest.approx((0.5 + 0.0 + 1.0 + 0.5) / 4, abs=1e-6)


def test_triplet_hand_negative_at_same_distance_is_not_semi_hard():
    # points 0, 1 (class 0) and -1, 2 (class 1), margin 1
    # (0,1): d_ap=1, negatives {1, 2}: 1 is not *farther* -> 2: max(0, 1 + 1 - 2) = 0
    #        (a non-strict rule would pick 1 and give 1)
    # (1,0): d_ap=1, negatives {2, 1} -> 2: 0
    # (-1,2), (2,-1): d_ap=3, negatives {1, 2}: none farther -> farthest 2: 1 + 3 - 2 = 2 each
    emb = torch.tensor([[0.0], [1.0], [-1.0], [2.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert semi_hard_triplet_loss(y, emb, margin=1.0).item() == pytest.approx(4.0 / 4, abs=1e-6)


def test_triplet_hand_2d():
    # A=(0,0), B=(3,4) class 0; C=(0,4), D=(6,8) class 1; margin 2
    # AB=5 AC=4 AD=10 BC=3 BD=5 CD=sqrt(52)
    # (A,B): negatives {4, 10} -> 10: max(0, 2 + 5 - 10) = 0
    # (B,A): negatives {3, 5}: none > 5 -> farthest 5: 2 + 5 - 5 = 2
    # (C,D): negatives {4, 3}: none > sqrt52 -> farthest 4: 2 + sqrt52 - 4
    # (D,C): negatives {10, 5} -> 10: max(0, 2 + sqrt52 - 10) = 0
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0], [6.0, 8.0]])
    y = torch.tensor([0, 0, 1, 1])
    expected = (2.0 + (2.0 + math.sqrt(52.0) - 4.0)) / 4
    assert semi_hard_triplet_loss(y, emb, margin=2.0).item() == pytest.approx(expected, rel=1e-6)
    # squared distances: AB=25 AC=16 AD=100 BC=9 BD=25 CD=52
    # (A,B): 100 -> 0; (B,A): none > 25 -> 25: 2;
    # (C,D): none > 52 -> 16: 2 + 52 - 16 = 38; (D,C): 100 -> 0
    sq = semi_hard_triplet_loss(y, emb, margin=2.0, squared=True)
    assert sq.item() == pytest.approx((2.0 + 38.0) / 4, rel=1e-6)


def test_triplet_zero_when_classes_well_separated():
    emb = torch.tensor([[0.0], [0.1], [10.0], [10.1], [0.05]])
    y = torch.tensor([0, 0, 1, 1, 0])
    assert semi_hard_triplet_loss(y, emb, margin=1.0).item() == 0.0


def test_triplet_single_class_batch_matches_tfa_edge_case():
    # no negatives anywhere: TF-Addons compares with d_an = 0 -> margin + d_ap per ordered pair
    emb = torch.tensor([[0.0], [1.0], [3.0]])
    y = torch.tensor([4, 4, 4])
    expected = (6 * 1.0 + 2 * (1.0 + 3.0 + 2.0)) / 6
    assert semi_hard_triplet_loss(y, emb, margin=1.0).item() == pytest.approx(expected)


def test_triplet_no_positive_pairs_is_zero_with_zero_grad():
    emb = torch.randn(4, 3, requires_grad=True)
    loss = semi_hard_triplet_loss(torch.arange(4), emb, margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(emb.grad, torch.zeros_like(emb))


def test_triplet_gradient_finite_when_embeddings_coincide():
    emb = torch.tensor(
        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], requires_grad=True
    )
    y = torch.tensor([0, 0, 1, 1, 1])  # coincident positives and a coincident negative
    loss = semi_hard_triplet_loss(y, emb, margin=0.5)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(emb.grad).all()
    d = pairwise_distances(emb)
    assert torch.equal(torch.diagonal(d), torch.zeros(5))
    assert d[0, 1].item() == 0.0


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("integer_valued", [False, True])
def test_triplet_matches_naive_loops_values_and_gradients(squared, integer_valued):
    gen = torch.Generator().manual_seed(0)
    for trial in range(4):
        n, dim, k = 12, 3, 2 + trial % 3
        if integer_valued:  # many distance ties: checks the strict "farther than" rule
            emb = torch.randint(-2, 3, (n, dim), generator=gen).double()
        else:
            emb = torch.randn(n, dim, generator=gen, dtype=torch.float64) * 3
        y = torch.randint(0, k, (n,), generator=gen)
        margin = [0.1, 1.0, 5.0][trial % 3]
        e1 = emb.clone().requires_grad_(True)
        e2 = emb.clone().requires_grad_(True)
        fast = semi_hard_triplet_loss(y, e1, margin=margin, squared=squared)
        slow = naive_semi_hard(y.tolist(), e2, margin, squared=squared)
        assert fast.item() == pytest.approx(slow.item(), rel=1e-9, abs=1e-12)
        if not squared:
            masked = masked_formulation(y.numpy(), emb.numpy(), margin)
            assert fast.item() == pytest.approx(masked, rel=1e-9, abs=1e-12)
        if not integer_valued:  # gradients at ties are a matter of convention
            fast.backward()
            slow.backward()
            torch.testing.assert_close(e1.grad, e2.grad)


def test_triplet_module_signature_and_input_errors():
    loss = SemiHardTripletLoss(margin=1.0)
    emb = torch.tensor([[0.0], [1.0], [1.5], [3.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert loss(emb, y).item() == pytest.approx(0.5, abs=1e-6)  # (output, target) order
    assert loss(emb, y[:, None]).item() == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="labels must have shape"):
        loss(emb, y[:3])
    with pytest.raises(ValueError, match="2-D"):
        loss(emb[:, 0], y)
    with pytest.raises(ValueError, match="margin"):
        SemiHardTripletLoss(margin=-1.0)


# ----------------------------------------------------------------------------- MSE
def test_reconstruction_loss_is_plain_mse_including_zero_targets():
    out = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    tgt = torch.tensor([[0.0, 2.0], [1.0, 0.0]])  # zeros are NOT masked (MIN2Net masked them)
    expected = (1.0 + 0.0 + 4.0 + 16.0) / 4
    assert reconstruction_loss(out, tgt).item() == pytest.approx(expected)
    assert ReconstructionLoss()(out, tgt).item() == pytest.approx(expected)
    # (n, 1, C, T) target for an (n, C, T) output
    x = torch.randn(3, 2, 5)
    assert reconstruction_loss(x, x[:, None]).item() == 0.0
    with pytest.raises(ValueError, match="does not match"):
        reconstruction_loss(x, torch.randn(3, 2, 4))


# ----------------------------------------------------------------------------- class weights / CE
def test_balanced_class_weights_matches_sklearn_formula():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 1, 2, 2])
    w = balanced_class_weights(y)
    ref = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=y)
    np.testing.assert_allclose(w.numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), [6 / 9, 6 / 3, 6 / 6], rtol=1e-6)
    with pytest.raises(ValueError, match="no samples"):
        balanced_class_weights(np.array([0, 0, 2]))
    with pytest.raises(TypeError, match="integer"):
        balanced_class_weights(np.array([0.0, 1.0]))


def test_class_balanced_ce_divides_by_batch_size_like_keras():
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.0], [0.0, 0.0], [1.0, -1.0]])
    y = torch.tensor([0, 1, 1, 0])
    w = torch.tensor([0.5, 3.0])
    per_sample = F.cross_entropy(logits, y, reduction="none")
    keras = (per_sample * w[y]).sum() / 4  # SUM_OVER_BATCH_SIZE
    got = class_balanced_cross_entropy(logits, y, w)
    assert got.item() == pytest.approx(keras.item(), rel=1e-6)
    torch_weighted = F.cross_entropy(logits, y, weight=w)  # divides by the weight sum
    assert got.item() != pytest.approx(torch_weighted.item(), rel=1e-3)
    # hand value for one sample: -log softmax
    p0 = math.exp(2.0) / (math.exp(2.0) + 1.0)
    single = class_balanced_cross_entropy(logits[:1], y[:1], w)
    assert single.item() == pytest.approx(0.5 * -math.log(p0), rel=1e-6)
    assert class_balanced_cross_entropy(logits, y).item() == pytest.approx(per_sample.mean().item())


def test_class_balanced_ce_module():
    y = torch.tensor([0, 0, 0, 1])
    loss = ClassBalancedCrossEntropy.from_labels(y)
    torch.testing.assert_close(loss.class_weights, torch.tensor([4 / 6, 4 / 2]))
    assert "class_weights" in loss.state_dict()
    logits = torch.randn(4, 2, requires_grad=True)
    value = loss(logits, y)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="class_weights must have shape"):
        ClassBalancedCrossEntropy([1.0, 1.0, 1.0])(logits, y)
    with pytest.raises(ValueError, match="finite"):
        ClassBalancedCrossEntropy([1.0, float("nan")])


def test_masked_formulation_agrees_on_single_class_edge_case():
    emb, y = [[0.0], [1.0], [3.0]], [4, 4, 4]
    loss = semi_hard_triplet_loss(torch.tensor(y), torch.tensor(emb), margin=1.0)
    assert loss.item() == pytest.approx(masked_formulation(y, emb, 1.0))
