"""Minimal counterfactuals on the fake world of conftest.py (identity link, w = r, logits of the rendered image
``relu(4 tanh(r' / 4))``): the search finds the smallest change, in the realism metric, that makes the rendered
image the target with the asked probability.

Ground truth: the same constrained problem solved by an independent general solver (scipy's SLSQP, several
starts) on the fake world's closed-form logits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from linkviz.counterfactual import LatentRealism, find_minimal_counterfactuals
from linkviz.counterfactual.minimal import metric_square_root, target_log_odds

PRECISION = np.diag([0.25, 4.0, 1.0])  # lowering unit 0 is cheap, raising unit 1 dear
DAMPING = 0.01


def _realism(precision: np.ndarray = PRECISION, threshold: float = 100.0) -> LatentRealism:
    return LatentRealism(mean=np.full(3, 2.0), precision=precision, threshold=threshold, quantile=0.99,
                         reference=np.linspace(0.0, threshold, 100))


def _image_logits(r_new: np.ndarray) -> np.ndarray:
    """The fake world's logits of the image rendered from ``r_new`` (identity link and head)."""
    return np.maximum(4.0 * np.tanh(np.maximum(r_new, 0.0) / 4.0), 0.0)


def _log_odds(logits: np.ndarray, target: int) -> float:
    others = np.delete(logits, target)
    return float(logits[target] - np.log(np.exp(others).sum()))


def _solve(r: np.ndarray, target: int, probability: float) -> tuple[float, np.ndarray]:
    """The smallest ``s^T (P + damping I) s`` with the image of ``relu(r - s)`` at log-odds ``log(p / (1-p))``."""
    metric = PRECISION + DAMPING * np.eye(3)
    needed = math.log(probability / (1 - probability))
    best = None
    for start in ([0.0, -1.0, 0.0], [1.0, -1.0, 1.0], [3.0, 0.0, 1.2], [0.0, -3.0, 0.0]):
        found = minimize(lambda s: s @ metric @ s, np.asarray(start), method="SLSQP",
                         constraints=[{"type": "ineq",
                                       "fun": lambda s: _log_odds(_image_logits(r - s), target) - needed}],
                         options={"ftol": 1e-10, "maxiter": 500})
        if found.success and (best is None or found.fun < best.fun):
            best = found
    assert best is not None
    return float(best.fun), best.x


def test_target_log_odds_is_the_log_odds_of_the_softmax_probability():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    p = logits.softmax(dim=1)[torch.arange(2), target]
    torch.testing.assert_close(target_log_odds(logits, target), torch.log(p / (1 - p)))


def test_the_whitened_length_is_the_realism_metric_of_the_shift(world):
    link, _, _ = world
    root = metric_square_root(link, _realism(), damping=DAMPING).double()
    v = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    s = v @ root
    metric = torch.as_tensor(PRECISION + DAMPING * np.eye(3))
    torch.testing.assert_close((s @ metric @ s.T).squeeze(), (v ** 2).sum(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("probability", [0.5, 0.9])
def test_the_search_finds_the_smallest_change_an_independent_solver_finds(world, probability):
    link, generator, classifier = world
    r = np.array([3.0, 1.5, 1.2])
    expected_cost, expected_shift = _solve(r, target=1, probability=probability)
    result = find_minimal_counterfactuals(link, generator, classifier, torch.tensor(r[None], dtype=torch.float32),
                                          origin=0, target=1, realism=_realism(), target_probability=probability,
                                          steps=400, lr=0.05, damping=DAMPING, progress=False)
    shift = result.shift[0].astype(np.float64)
    cost = shift @ (PRECISION + DAMPING * np.eye(3)) @ shift
    assert result.success[0] and result.predicted[0] == 1
    assert result.target_probability[0] >= probability - 1e-4
    assert cost == pytest.approx(expected_cost, rel=0.05)
    np.testing.assert_allclose(shift, expected_shift, atol=0.15)
    # the cheap unit (0) carries the change: it falls further than the dear unit (1) rises
    assert shift[0] > abs(shift[1]) > 0


def test_a_counterfactual_beyond_the_threshold_is_no_success_and_the_last_shift_is_kept(world):
    link, generator, classifier = world
    r = torch.tensor([[3.0, 1.5, 1.2]])
    tight = _realism(threshold=1.5)  # the original lies at distance ~0.9; the smallest tree at ~2.4
    result = find_minimal_counterfactuals(link, generator, classifier, r, origin=0, target=1, realism=tight,
                                          target_probability=0.9, steps=100, damping=DAMPING, progress=False)
    assert not result.success[0]
    assert result.steps[0] == 100 and np.abs(result.shift).sum() > 0
    assert result.latent_distance[0] == pytest.approx(tight.distance(result.r_counterfactual[0]), rel=1e-4)


def test_bad_options_are_refused(world):
    link, generator, classifier = world
    r = torch.tensor([[3.0, 1.5, 1.2]])
    options = {"origin": 0, "target": 1, "realism": _realism(), "progress": False}
    with pytest.raises(ValueError, match="target_probability"):
        find_minimal_counterfactuals(link, generator, classifier, r, target_probability=0.3, **options)
    with pytest.raises(ValueError, match="positive"):
        find_minimal_counterfactuals(link, generator, classifier, r, steps=0, **options)
    with pytest.raises(ValueError, match="another class"):
        find_minimal_counterfactuals(link, generator, classifier, r, **{**options, "target": 0})
    with pytest.raises(ValueError, match="latents of size 2"):
        small = LatentRealism(mean=np.zeros(2), precision=np.eye(2), threshold=1.0, quantile=0.99,
                              reference=np.ones(3))
        find_minimal_counterfactuals(link, generator, classifier, r, **{**options, "realism": small})
    with pytest.raises(ValueError, match="NaN"):
        find_minimal_counterfactuals(link, generator, classifier, torch.tensor([[np.nan, 1.0, 1.0]]), **options)
