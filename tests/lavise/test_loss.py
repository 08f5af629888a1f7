"""csmr_loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from linkviz.lavise import csmr_loss


def unit_vectors_with_cosines(cosines: list[float]) -> torch.Tensor:
    """Rows e_j of norm 1 whose cosine with (1, 0) is cosines[j]."""
    return torch.tensor([[c, math.sqrt(1 - c * c)] for c in cosines])


def test_hand_computed_example():
    # positives at cosine 0.5 and 0.3 (s+ = 0.4), negatives at 0.9 and -0.2:
    # max(0, 1 - 0.4 + 0.9) + max(0, 1 - 0.4 - 0.2) = 1.5 + 0.4 = 1.9
    labels = unit_vectors_with_cosines([0.5, 0.9, 0.3, -0.2])
    prediction = torch.tensor([[2.0, 0.0]])  # the norm does not matter
    targets = torch.tensor([[True, False, True, False]])
    assert csmr_loss(prediction, labels, targets).item() == pytest.approx(1.9, abs=1e-6)
    assert csmr_loss(prediction, labels * 3.0, targets.float()).item() == pytest.approx(1.9, abs=1e-6)


def test_margin_clamp_and_reductions():
    labels = unit_vectors_with_cosines([1.0, 0.0, -0.5])
    predictions = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[1, 0, 0], [1, 0, 0]])
    # sample 0: s+ = 1, negatives 0 and -0.5: max(0, 0) + max(0, -0.5) = 0
    # sample 1: cosines (0, 1, sqrt(3)/2): s+ = 0, 1 + 1 + (1 + 0.866) = 3.866
    per_sample = csmr_loss(predictions, labels, targets, reduction="none")
    assert per_sample.tolist() == pytest.approx([0.0, 3.0 + math.sqrt(0.75)], abs=1e-6)
    assert csmr_loss(predictions, labels, targets, reduction="sum").item() == pytest.approx(per_sample.sum().item())
    assert csmr_loss(predictions, labels, targets).item() == pytest.approx(per_sample.mean().item())
    # a smaller margin lowers every active hinge by the difference
    assert csmr_loss(predictions, labels, targets, margin=0.5, reduction="none")[1].item() == pytest.approx(
        per_sample[1].item() - 1.0, abs=1e-6)


def test_gradient_pulls_towards_the_positive():
    labels = unit_vectors_with_cosines([1.0, 0.0])
    prediction = torch.tensor([[0.6, 0.8]], requires_grad=True)
    csmr_loss(prediction, labels, torch.tensor([[True, False]])).backward()
    assert prediction.grad[0, 0] < 0 < prediction.grad[0, 1]  # gradient descent moves towards (1, 0)


def test_bad_input():
    labels = torch.eye(3)
    with pytest.raises(ValueError, match="share D"):
        csmr_loss(torch.ones(2, 4), labels, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"targets must have shape \[B, T\]"):
        csmr_loss(torch.ones(2, 3), labels, torch.ones(2, 2))
    with pytest.raises(ValueError, match="sample 1 has no positive"):
        csmr_loss(torch.ones(2, 3), labels, torch.tensor([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="reduction"):
        csmr_loss(torch.ones(1, 3), labels, torch.ones(1, 3), reduction="max")
