"""Tests for linkviz.counterfactual.trajectory on the consistent fake world of conftest.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from linkviz.counterfactual import (
    counterfactual_trajectory,
    find_counterfactuals,
    path_pca,
    refined_trajectory,
    top_shifted_units,
    unit_frequency,
)
from linkviz.counterfactual.optimise import render_and_classify


@pytest.fixture
def solved(world, examples):
    link, generator, classifier = world
    r, origin, target = examples
    result = find_counterfactuals(link, generator, classifier, r, origin=origin, target=target, max_steps=200,
                                  progress=False)
    return r, result


def test_shapes_and_probabilities(world, solved):
    link, generator, classifier = world
    r, result = solved
    trajectory = counterfactual_trajectory(link, generator, classifier, r, result.shift,
                                           alphas=np.linspace(0, 1, 4), batch_size=5)
    assert trajectory.images.shape == (4, 4, 8, 8, 3) and trajectory.images.dtype == np.uint8
    assert trajectory.probabilities.shape == (4, 4, 3)
    np.testing.assert_allclose(trajectory.probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert trajectory.r.shape == (4, 4, 3) and trajectory.w.shape == (4, 4, 3)
    assert trajectory.r_pca.shape == (4, 4, 2) and trajectory.w_pca.shape == (4, 4, 2)
    assert trajectory.predicted.shape == (4, 4)


def test_endpoints(world, solved):
    link, generator, classifier = world
    r, result = solved
    trajectory = counterfactual_trajectory(link, generator, classifier, r, result.shift)
    np.testing.assert_array_equal(trajectory.alphas, np.linspace(0, 1, 5))
    # alpha = 0 reproduces the original's prediction, alpha = 1 the counterfactual's.
    original, _ = render_and_classify(link, generator, classifier, r)
    np.testing.assert_array_equal(trajectory.predicted[:, 0], original.argmax(dim=1).numpy())
    np.testing.assert_allclose(trajectory.probabilities[:, 0], original.softmax(dim=1).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(trajectory.predicted[:, -1], result.target)
    np.testing.assert_allclose(trajectory.r[:, 0], r.numpy())
    np.testing.assert_allclose(trajectory.r[:, -1], result.r_counterfactual, rtol=1e-6)
    np.testing.assert_allclose(trajectory.w, link.predict(trajectory.r.reshape(-1, 3)).reshape(4, 5, 3))


def test_relu_along_the_path_and_extrapolation(world):
    link, generator, classifier = world
    r = torch.tensor([[1.0, 2.0, 0.5]])
    s = torch.tensor([[2.0, 0.0, -1.0]])
    trajectory = counterfactual_trajectory(link, generator, classifier, r, s, alphas=[0.0, 1.0, 2.0])
    np.testing.assert_allclose(trajectory.r[0], [[1.0, 2.0, 0.5], [0.0, 2.0, 1.5], [0.0, 2.0, 2.5]])


def test_bad_inputs(world):
    link, generator, classifier = world
    r = torch.ones(2, 3)
    with pytest.raises(ValueError, match="shape of r"):
        counterfactual_trajectory(link, generator, classifier, r, torch.ones(1, 3))
    with pytest.raises(ValueError, match="alphas"):
        counterfactual_trajectory(link, generator, classifier, r, r, alphas=[])
    with pytest.raises(ValueError, match="1 NaN"):
        counterfactual_trajectory(link, generator, classifier, r, torch.tensor([[0, 0, float("nan")], [0, 0, 0]]))


def test_top_shifted_units_on_hand_values():
    s = np.array([[0.1, -3.0, 2.0, 0.0], [1.0, 1.0, -0.5, 4.0]])
    np.testing.assert_array_equal(top_shifted_units(s, k=2), [[1, 2], [3, 0]])  # tie 0/1 -> lower index first
    np.testing.assert_array_equal(top_shifted_units(torch.as_tensor(s), k=4)[0], [1, 2, 0, 3])
    with pytest.raises(ValueError, match="k must be"):
        top_shifted_units(s, k=5)


def test_unit_frequency_counts_across_examples():
    s = np.array([[5.0, 4.0, 0.0, 0.0], [0.0, 4.0, 5.0, 0.0], [0.0, 3.0, 0.0, 9.0]])
    frequency = unit_frequency(s, k=2)
    expected = pd.Series([3, 1, 1, 1], index=pd.Index([1, 0, 2, 3], name="unit"), name="count")
    pd.testing.assert_series_equal(frequency, expected, check_dtype=False)


def test_path_pca():
    rng = np.random.default_rng(0)
    start, direction = rng.normal(size=(1, 1, 6)), rng.normal(size=(1, 1, 6))
    line = start + np.linspace(0, 1, 7)[None, :, None] * direction  # one straight path
    projected = path_pca(line)
    assert projected.shape == (1, 7, 2)
    np.testing.assert_allclose(projected[0, :, 1], 0, atol=1e-5)  # collinear: no second component
    np.testing.assert_allclose(np.abs(np.diff(projected[0, :, 0])), np.linalg.norm(direction) / 6, rtol=1e-5)
    np.testing.assert_array_equal(path_pca(np.ones((1, 1, 4))), np.zeros((1, 1, 2)))


def test_to_frame(world, solved):
    link, generator, classifier = world
    r, result = solved
    frame = counterfactual_trajectory(link, generator, classifier, r, result.shift, alphas=[0, 1]).to_frame()
    assert len(frame) == 4 * 2 * 3
    assert set(frame.columns) == {"example", "step", "alpha", "class", "class_name", "probability", "predicted",
                                  "latent_distance", "realistic"}
    np.testing.assert_allclose(frame.groupby(["example", "step"])["probability"].sum(), 1.0, rtol=1e-5)
    assert frame["latent_distance"].isna().all() and frame["realistic"].isna().all()  # not scored


def _largest_jump(trajectory) -> float:
    """The largest total-variation distance between the class probabilities of neighbouring points."""
    return float((0.5 * np.abs(np.diff(trajectory.probabilities, axis=1)).sum(axis=-1)).max())


def test_refined_trajectory_packs_points_where_the_class_flips(world):
    """A shift that flips red to green within alpha < 0.1 (the fake world saturates beyond): evenly spaced points
    jump across the boundary in one step, refined points cross it gradually, rendered exactly as the plain path."""
    link, generator, classifier = world
    r, s = torch.tensor([[3.0, 1.0, 1.0]]), torch.tensor([[40.0, -40.0, 0.0]])
    uniform = counterfactual_trajectory(link, generator, classifier, r, s, alphas=np.linspace(0, 1, 9))
    refined = refined_trajectory(link, generator, classifier, r, s, n_alphas=9)
    assert refined.alphas[0] == 0.0 and refined.alphas[-1] == 1.0 and len(refined.alphas) == 9
    assert (np.diff(refined.alphas) > 0).all()
    assert (refined.alphas < 0.125).sum() >= 4  # half the points where the class changes
    assert _largest_jump(uniform) > 0.5 and _largest_jump(refined) < 0.6 * _largest_jump(uniform)
    plain = counterfactual_trajectory(link, generator, classifier, r, s, alphas=refined.alphas)
    for name in ("r", "w", "images"):
        np.testing.assert_array_equal(getattr(refined, name), getattr(plain, name))
    np.testing.assert_allclose(refined.probabilities, plain.probabilities, rtol=1e-6)
    assert refined.predicted[0, 0] == 0 and refined.predicted[0, -1] == 1
    even = refined_trajectory(link, generator, classifier, r, s, n_alphas=5, n_uniform=5)
    np.testing.assert_array_equal(even.alphas, np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="n_uniform"):
        refined_trajectory(link, generator, classifier, r, s, n_alphas=3, n_uniform=4)
