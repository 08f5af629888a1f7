"""``target_probability`` and ``step_metric`` of find_counterfactuals on the fake world of conftest.py.

The fake world's image is the class evidence itself (identity link, the class is argmax r), so the target's
probability after a step is known exactly; the realism model is a Gaussian set by hand, so the preconditioner has
a closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkviz.counterfactual import LatentRealism, find_counterfactuals
from linkviz.counterfactual.constraint import realism_preconditioner
from linkviz.counterfactual.optimise import render_and_classify


def _gaussian(variances: np.ndarray, radius: float = 50.0) -> LatentRealism:
    """A Gaussian about 2 with these variances per latent dimension; threshold ``radius`` (wide: never binding)."""
    return LatentRealism(mean=np.full(len(variances), 2.0), precision=np.diag(1.0 / np.asarray(variances)),
                         threshold=radius, quantile=0.99, reference=np.linspace(0.0, radius, 100))


def test_target_probability_keeps_stepping_past_the_decision_boundary(world, examples):
    link, generator, classifier = world
    r, origin, target = examples
    options = {"origin": origin, "target": target, "lr": 0.05, "max_steps": 400, "progress": False}
    boundary = find_counterfactuals(link, generator, classifier, r, **options)
    confident = find_counterfactuals(link, generator, classifier, r, target_probability=0.6, **options)
    assert boundary.success.all() and confident.success.all()
    assert (boundary.target_probability < 0.5).all()  # argmax alone stops just past the boundary
    assert (confident.target_probability >= 0.6).all()
    assert (confident.steps > boundary.steps).all()
    # the recorded probability is that of the rendered counterfactual
    logits, _ = render_and_classify(link, generator, classifier, torch.as_tensor(confident.r_counterfactual))
    np.testing.assert_allclose(logits.softmax(dim=1)[torch.arange(4), target].numpy(),
                               confident.target_probability, rtol=1e-5)


def test_realism_preconditioner_is_the_inverse_pulled_back_metric(world):
    link, _, _ = world  # identity link: the pulled-back metric is the precision itself
    realism = _gaussian(np.array([4.0, 1.0, 0.25]))
    expected = np.diag(1.0 / (np.array([0.25, 1.0, 4.0]) + 0.5))
    np.testing.assert_allclose(realism_preconditioner(link, realism, damping=0.5).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="damping must be positive; got 0"):
        realism_preconditioner(link, realism, damping=0.0)


def test_realism_steps_favour_directions_the_latents_vary_along(world):
    """One natural-gradient step is the Euclidean step times (P + I)^-1: larger along high-variance latents."""
    link, generator, classifier = world
    r = torch.tensor([[3.0, 1.0, 1.0]])
    realism = _gaussian(np.array([1.0, 9.0, 1.0]))
    options = {"origin": 0, "target": 1, "lr": 0.05, "max_steps": 1, "realism": realism, "realism_weight": 0.0,
                   "initial_shift": torch.zeros(1, 3), "progress": False}
    euclidean = find_counterfactuals(link, generator, classifier, r, **options)
    natural = find_counterfactuals(link, generator, classifier, r, step_metric="realism", **options)
    np.testing.assert_allclose(natural.shift, euclidean.shift * np.array([1 / 2, 9 / 10, 1 / 2]), rtol=1e-5)
    assert natural.shift[0, 1] < 0  # the target unit grows


def test_bad_confidence_options_are_refused(world, examples):
    link, generator, classifier = world
    r, origin, target = examples
    options = {"origin": origin, "target": target, "max_steps": 1, "progress": False}
    with pytest.raises(ValueError, match="target_probability must lie in \\(0, 1\\) or be None; got 1.0"):
        find_counterfactuals(link, generator, classifier, r, target_probability=1.0, **options)
    with pytest.raises(ValueError, match="step_metric must be 'euclidean' or 'realism'; got 'pixels'"):
        find_counterfactuals(link, generator, classifier, r, step_metric="pixels", **options)
    with pytest.raises(ValueError, match="pass realism="):
        find_counterfactuals(link, generator, classifier, r, step_metric="realism", **options)
