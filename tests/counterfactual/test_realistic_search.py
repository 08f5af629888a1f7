"""Realism-constrained counterfactuals on the fake world of conftest.py (identity link, w = r).

The realism model is set by hand: a unit Gaussian about (2, 2, 2), so the Mahalanobis distance is the Euclidean
distance from that centre, and the threshold a radius. With lr 5 the free search jumps in one step far beyond it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkviz.counterfactual import (
    LatentRealism,
    counterfactual_loss,
    counterfactual_trajectory,
    find_counterfactuals,
)
from linkviz.counterfactual.constraint import INSIDE, project_inside, realism_penalty

CENTRE = np.full(3, 2.0)


def _ball(radius: float, centre: np.ndarray = CENTRE) -> LatentRealism:
    """Mahalanobis distance = Euclidean distance from ``centre``; threshold ``radius``."""
    return LatentRealism(mean=np.asarray(centre, dtype=np.float64), precision=np.eye(3), threshold=radius,
                         quantile=0.99, reference=np.linspace(0.0, radius, 100))


def test_distance_tensor_is_the_numpy_distance_and_differentiable():
    realism = LatentRealism(mean=np.array([1.0, 0.0, -1.0]), precision=np.diag([4.0, 1.0, 0.25]), threshold=3.0,
                            quantile=0.99, reference=np.ones(10))
    w = torch.tensor([[1.0, 2.0, 3.0], [1.5, 0.0, -1.0]], requires_grad=True)
    distance = realism.distance_tensor(w)
    np.testing.assert_allclose(distance.detach().numpy(), realism.distance(w.detach().numpy()), rtol=1e-6)
    np.testing.assert_allclose(distance.detach().numpy(), [np.sqrt(4 + 4), 1.0], rtol=1e-6)
    distance.sum().backward()
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    pulled = realism.pull_inside(w.detach(), radius=2.0)
    np.testing.assert_allclose(realism.distance(pulled.numpy()), [2.0, 1.0], rtol=1e-6)  # the inside one stays
    torch.testing.assert_close(pulled[1], w.detach()[1])


def test_the_penalty_starts_at_a_fraction_of_the_threshold_and_enters_the_loss(world):
    link, _, classifier = world
    realism = _ball(2.0)
    w = torch.tensor([[2.0, 2.0, 2.0], [2.0, 2.0, 3.8], [2.0, 2.0, 6.0]])  # distances 0, 1.8, 4
    np.testing.assert_allclose(realism_penalty(realism, w).numpy(), [0.0, 0.0, (4 / 2 - INSIDE) ** 2], atol=1e-6)
    r, shift = torch.tensor([[2.0, 2.0, 6.0]]), torch.zeros(1, 3)
    options = {"origin": torch.tensor([2]), "target": torch.tensor([0])}
    free = counterfactual_loss(link, classifier, r, shift, **options)
    penalised = counterfactual_loss(link, classifier, r, shift, realism=realism, realism_weight=3.0, **options)
    torch.testing.assert_close(penalised - free, torch.tensor([3.0 * (2 - INSIDE) ** 2]))


def test_projection_moves_latents_beyond_the_threshold_inside_and_keeps_the_others(world):
    link, _, classifier = world
    realism = _ball(2.0)
    r = torch.tensor([[2.5, 2.0, 2.0], [2.5, 2.0, 2.0], [1.0, 1.0, 1.0]])
    shift = torch.tensor([[0.0, -6.0, 0.0], [0.5, 0.0, 0.0], [-0.5, 0.0, -9.0]])  # far, inside, far
    projected = project_inside(link, classifier, realism, r, shift)
    distance = realism.distance(torch.relu(r - projected).numpy())
    np.testing.assert_allclose(distance[[0, 2]], INSIDE * 2.0, rtol=1e-4)  # onto the smaller ellipsoid
    torch.testing.assert_close(projected[1], shift[1])


def test_projection_shortens_the_shift_where_the_relu_undoes_the_correction(world):
    """Centre below 0 in unit 2, where the post-ReLU clip cannot go: one pseudo-inverse step lands outside (the
    clip undoes part of it), so the shift is shortened along the path toward the (realistic) original, to the
    threshold by bisection, instead of being dropped."""
    link, _, classifier = world
    realism = _ball(1.0, centre=np.array([0.5, 0.5, -0.8]))
    r, shift = torch.tensor([[1.0, 0.5, 0.0]]), torch.tensor([[-5.0, 0.0, 0.0]])
    assert realism.distance(r.numpy())[0] <= 1.0
    one_step = project_inside(link, classifier, realism, r, shift, rounds=1, halvings=0)
    torch.testing.assert_close(one_step, torch.zeros(1, 3))  # without bisection: back to the original
    projected = project_inside(link, classifier, realism, r, shift, rounds=1)
    assert realism.distance(torch.relu(r - projected).numpy())[0] == pytest.approx(1.0, abs=1e-3)
    assert projected[0, 0] < 0.0


def test_a_constrained_search_stays_realistic_where_the_free_one_leaves(world, examples):
    link, generator, classifier = world
    r, origin, target = examples
    realism = _ball(2.0)
    assert (realism.distance(r.numpy()) < 2.0).all()
    options = {"origin": origin, "target": target, "max_steps": 50, "lr": 5.0, "progress": False}
    free = find_counterfactuals(link, generator, classifier, r, **options)
    assert free.success.all() and (realism.distance(free.r_counterfactual) > 4.0).all()  # far beyond
    assert free.latent_distance is None and free.realistic is None and np.isnan(free.realistic_rate)
    kept = find_counterfactuals(link, generator, classifier, r, realism=realism, **options)
    assert kept.success.all() and kept.realistic.all() and kept.reached_target.all()
    np.testing.assert_allclose(kept.latent_distance, realism.distance(kept.r_counterfactual), rtol=1e-5)
    assert (kept.latent_distance <= 2.0).all() and kept.realism_threshold == 2.0
    frame = kept.to_frame()
    assert {"reached_target", "latent_distance", "realistic"} <= set(frame.columns)
    assert frame["realistic"].all() and (frame["latent_distance"] <= 2.0).all()
    unscored = free.to_frame()
    assert unscored["latent_distance"].isna().all() and unscored["realistic"].isna().all()


def test_success_needs_a_realistic_latent(world, examples):
    """Within 0.5 of the original no point is of another class (the nearest boundary point lies 1.06 away): the
    constrained search never succeeds and never leaves; the free one succeeds off the ball."""
    link, generator, classifier = world
    r, origin, target = examples[0][:1], examples[1][:1], torch.tensor([1])
    realism = _ball(0.5, centre=r[0].numpy())
    options = {"origin": origin, "target": target, "max_steps": 40, "progress": False}
    free = find_counterfactuals(link, generator, classifier, r, **options)
    assert free.success.all() and realism.is_off(free.r_counterfactual).all()
    kept = find_counterfactuals(link, generator, classifier, r, realism=realism, **options)
    assert not kept.success.any() and not kept.reached_target.any() and kept.steps[0] == 40
    assert kept.realistic.all() and kept.success_rate == 0.0


def test_bad_realism_options(world, examples):
    link, generator, classifier = world
    r, origin, target = examples
    wrong = LatentRealism(mean=np.zeros(4), precision=np.eye(4), threshold=1.0, quantile=0.99, reference=np.ones(3))
    with pytest.raises(ValueError, match="latents of size 4 but the link makes w of size 3"):
        find_counterfactuals(link, generator, classifier, r, origin=origin, target=target, realism=wrong,
                             progress=False)
    with pytest.raises(ValueError, match="realism_weight must be non-negative; got -1"):
        find_counterfactuals(link, generator, classifier, r, origin=origin, target=target, realism=_ball(2.0),
                             realism_weight=-1.0, progress=False)


def test_a_scored_trajectory_gives_each_point_its_distance_and_flag(world):
    link, generator, classifier = world
    realism = _ball(2.0)
    r, s = torch.tensor([[2.0, 2.0, 2.0]]), torch.tensor([[0.0, -4.0, 0.0]])  # r1 from 2 to 6: 0 .. 4 away
    trajectory = counterfactual_trajectory(link, generator, classifier, r, s, alphas=np.linspace(0, 1, 5),
                                           realism=realism)
    np.testing.assert_allclose(trajectory.latent_distance[0], [0.0, 1.0, 2.0, 3.0, 4.0], atol=1e-5)
    np.testing.assert_array_equal(trajectory.realistic[0], [True, True, True, False, False])
    frame = trajectory.to_frame()
    by_step = frame.groupby("step")[["latent_distance", "realistic"]].first()
    np.testing.assert_allclose(by_step["latent_distance"], trajectory.latent_distance[0])
    np.testing.assert_array_equal(by_step["realistic"].to_numpy(dtype=bool), trajectory.realistic[0])
