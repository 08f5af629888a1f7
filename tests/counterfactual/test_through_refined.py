"""Counterfactuals rendered through feature inversion, on the fake world where the exact inverse is known.

The fake classifier reads ``r = relu(4 tanh(w / 4))`` from the fake generator's image, so the identity link
``w = r`` is only a first guess; the latent whose image has features r is ``w* = 4 atanh(r / 4)`` (for
``0 < r < 4``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_world import FakeGenerator, fake_classifier, identity_link

from linkviz.counterfactual import CounterfactualResult, fit_latent_realism, render_through_refined_link
from linkviz.linking import RefinedLink


@pytest.fixture
def refined() -> RefinedLink:
    return RefinedLink(link=identity_link(), generator=FakeGenerator(), classifier=fake_classifier(),
                       unit_scale=np.ones(3, dtype=np.float32), steps=300, step_size=0.05)


def _result(r: np.ndarray, r_counterfactual: np.ndarray, target: np.ndarray) -> CounterfactualResult:
    n = len(r)
    return CounterfactualResult(shift=r - r_counterfactual, r_counterfactual=r_counterfactual,
                                success=np.ones(n, dtype=bool), steps=np.ones(n, dtype=int),
                                predicted=target.copy(), target_probability=np.ones(n, dtype=np.float32),
                                origin=r.argmax(axis=1), target=target, class_names=("red", "green", "blue"))


def test_refinement_finds_the_latent_whose_image_has_the_features(refined):
    r = np.array([[3.0, 1.5, 1.2], [1.4, 3.2, 1.3]], dtype=np.float32)
    exact = 4 * np.arctanh(r / 4)
    assert np.abs(identity_link().predict(r) - exact).max() > 0.5  # the linear link is only a first guess
    np.testing.assert_allclose(refined.predict(r), exact, atol=0.05)


def test_a_start_is_where_the_steps_begin(refined):
    r = np.array([[3.0, 1.5, 1.2]], dtype=np.float32)
    start = np.array([[0.5, 0.6, 0.7]], dtype=np.float32)
    no_steps = RefinedLink(link=refined.link, generator=refined.generator, classifier=refined.classifier,
                           unit_scale=refined.unit_scale, steps=0)
    np.testing.assert_array_equal(no_steps.predict(r, start=start), start)
    np.testing.assert_array_equal(no_steps.predict(r), r)  # the identity link's latent
    with pytest.raises(ValueError, match=r"start must have shape \(1, 3\)"):
        refined.to_w(torch.as_tensor(r), torch.zeros(2, 3))


def test_examples_are_judged_on_the_inverted_images(refined):
    r = np.array([[3.0, 1.5, 1.2], [1.4, 3.2, 1.3], [1.3, 1.5, 2.8]], dtype=np.float32)
    # row 0 reaches green, row 1 stays green although blue was asked for, row 2 reaches red
    r_counterfactual = np.array([[1.5, 3.0, 1.2], [1.4, 3.2, 2.0], [3.3, 1.5, 1.0]], dtype=np.float32)
    target = np.array([1, 2, 0])
    judged, path = render_through_refined_link(_result(r, r_counterfactual, target), refined, refined.generator,
                                               refined.classifier, r)
    assert judged.success.tolist() == [True, False, True]
    assert judged.predicted.tolist() == [1, 1, 0]
    assert judged.target_probability[1] < 0.5 < judged.target_probability[0]
    np.testing.assert_array_equal(judged.shift, r - r_counterfactual)  # the search's shift is kept
    # the path: inverted original at alpha 0 and inverted counterfactual at alpha 1, classified as their r
    assert path.images.shape == (3, 2, 8, 8, 3) and path.alphas.tolist() == [0.0, 1.0]
    assert (path.predicted[:, 0] == r.argmax(axis=1)).all()
    assert (path.predicted[:, 1] == r_counterfactual.argmax(axis=1)).all()
    np.testing.assert_allclose(path.w[:, 1], 4 * np.arctanh(r_counterfactual / 4), atol=0.05)


def test_an_unrealistic_inverted_latent_is_no_success(refined):
    r = np.array([[3.0, 1.5, 1.2]], dtype=np.float32)
    r_counterfactual = np.array([[1.5, 3.0, 1.2]], dtype=np.float32)
    far_away = fit_latent_realism(np.random.default_rng(0).normal(-20.0, 0.1, size=(200, 3)))
    judged, path = render_through_refined_link(_result(r, r_counterfactual, np.array([1])), refined,
                                               refined.generator, refined.classifier, r, realism=far_away)
    assert judged.predicted.tolist() == [1] and judged.success.tolist() == [False]
    assert judged.latent_distance[0] > judged.realism_threshold
    assert path.realistic is not None and not path.realistic.any()
    with pytest.raises(ValueError, match="search's originals"):
        render_through_refined_link(_result(r, r_counterfactual, np.array([1])), refined, refined.generator,
                                    refined.classifier, np.zeros((2, 3), dtype=np.float32))
