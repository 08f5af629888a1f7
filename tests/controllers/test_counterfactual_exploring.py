"""CounterfactualExploring without ipywidgets on the fake world with the identity link, where counterfactuals
succeed: the rendered end of the path is the target class."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.figure import Figure

from linkviz.controllers import CounterfactualExploring, CounterfactualView
from linkviz.counterfactual import CounterfactualResult
from linkviz.images import tile_images


@pytest.fixture
def exploring(identity_linked) -> CounterfactualExploring:
    return CounterfactualExploring(identity_linked, max_steps=200, n_alphas=5, top_k=2)


def test_a_search_reaches_the_target_and_shows_the_path_end(exploring, identity_linked, axis_labels):
    view = exploring.compute(0, 1, 0)
    assert isinstance(view, CounterfactualView)
    assert (view.origin, view.target, view.example) == (0, 1, 0)
    assert view.row == identity_linked.examples_of_class(0)[0]
    assert view.success and view.trajectory.predicted[0, -1] == 1 and view.trajectory.predicted[0, 0] == 0
    assert view.step == 4 and "reached green" in view.caption
    np.testing.assert_array_equal(view.top_units, np.argsort(-np.abs(view.result.shift[0]), kind="stable")[:2])
    images = view.trajectory.images[0]
    np.testing.assert_array_equal(view.grid, tile_images(images[[0, 4]], columns=2, zoom=20, gap=1))
    assert "alpha = 1.00" in view.probabilities_html and f"<td>{view.top_units[0]}</td>" in view.units_html

    start = view.at_step(0)
    assert start.step == 0 and start.result is view.result and not np.array_equal(start.grid, view.grid)
    p = view.trajectory.probabilities[0, 0]
    assert "alpha = 0.00" in start.probabilities_html and f"{p[0]:.3f}" in start.probabilities_html
    with pytest.raises(IndexError, match="step 5 out of range"):
        view.at_step(5)

    frame = view.to_frame()
    assert len(frame) == 5 * (3 + 2)
    probabilities = frame[frame["quantity"] == "probability"]
    np.testing.assert_allclose(probabilities["value"].to_numpy().reshape(5, 3), view.trajectory.probabilities[0])
    units = frame[frame["quantity"] == "activation"]
    assert set(units["name"]) == {str(u) for u in view.top_units}
    np.testing.assert_allclose(units["value"].to_numpy().reshape(5, 2), view.trajectory.r[0][:, view.top_units])
    assert frame["alpha"].unique().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and frame["success"].all()

    figure = view.figure()
    assert isinstance(figure, Figure)
    assert axis_labels(figure) == ([f"base example {view.row}"], ["alpha = 0", "alpha = 1.00"])
    assert axis_labels(start.figure())[1] == ["alpha = 0", "alpha = 0.00"]


def test_default_classes_and_bad_requests(exploring, identity_linked):
    counts = np.bincount(identity_linked.pairs.predicted, minlength=3)
    origin, target = exploring.default_classes()
    assert origin == int(np.argmax(counts)) and target == (origin + 1) % 3
    assert exploring.n_examples(2) == counts[2]
    with pytest.raises(ValueError, match="target equals origin"):
        exploring.compute(1, 1, 0)
    with pytest.raises(IndexError, match="out of range"):
        exploring.compute(0, 1, int(counts[0]))
    with pytest.raises(ValueError, match="n_alphas must be at least 2"):
        CounterfactualExploring(identity_linked, n_alphas=1)


def hand_result(shift: np.ndarray, r: np.ndarray, *, origin: int = 0, target: int = 1) -> CounterfactualResult:
    """A one-example search result with a shift chosen by hand."""
    return CounterfactualResult(shift=shift[None].astype(np.float32),
                                r_counterfactual=np.maximum(r - shift, 0)[None].astype(np.float32),
                                success=np.array([True]), steps=np.array([1]), predicted=np.array([target]),
                                target_probability=np.array([0.5], np.float32), origin=np.array([origin]),
                                target=np.array([target]), class_names=("red", "green", "blue"))


def test_a_known_shift_shows_the_change_of_r_with_its_sign(exploring, identity_linked):
    """r' = relu(r - alpha s): a positive shift lowers the unit, and the table says so (not "+1")."""
    row = identity_linked.examples_of_class(0)[0]
    r = identity_linked.pairs.r[row]
    assert r[0] > 1.0 and r[1] > 0.5
    view = exploring.path(0, 1, 0, hand_result(np.array([1.0, -0.5, 0.0]), r))
    assert view.top_units.tolist() == [0, 1] and view.alphas[-1] == 1.0
    html = view.units_html
    assert "<th>change r' − r</th>" in html and "a unit with s &gt; 0 falls" in html
    assert f"<tr><td>0</td><td>{r[0]:.3g}</td><td>{r[0] - 1:.3g}</td><td>-1</td></tr>" in html
    assert f"<tr><td>1</td><td>{r[1]:.3g}</td><td>{r[1] + 0.5:.3g}</td><td>+0.5</td></tr>" in html
    units = view.to_frame().query("quantity == 'activation'")
    unit0, unit1 = units[units["name"] == "0"], units[units["name"] == "1"]
    np.testing.assert_allclose(unit0["change"], -unit0["alpha"], atol=1e-6)  # falls while s = +1
    np.testing.assert_allclose(unit1["change"], 0.5 * unit1["alpha"], atol=1e-6)  # rises while s = -0.5
    assert (unit0["shift"] == 1.0).all() and (unit1["shift"] == -0.5).all()
    np.testing.assert_allclose(unit0["value"], r[0] - unit0["alpha"], rtol=1e-6)


def test_points_beyond_the_generators_range_are_flagged(exploring, identity_linked):
    """A shift that drives unit 0 far beyond any base latent: the path's far end is flagged in caption,
    probabilities, title and table; the start is not."""
    realism = exploring.realism
    assert realism.w_dim == 3 and realism.quantile == 0.99
    assert realism.is_off(identity_linked.pairs.w).mean() < 0.1
    r = identity_linked.pairs.r[identity_linked.examples_of_class(0)[0]]
    view = exploring.path(0, 1, 0, hand_result(np.array([-30.0, 0.0, 0.0]), r))
    off = view.off_manifold
    assert not off[0] and off[-1] and (np.diff(off.astype(int)) >= 0).all()  # leaves and stays away
    np.testing.assert_allclose(view.latent_distance, realism.distance(view.trajectory.w[0]))
    first = view.alphas[int(np.argmax(off))]
    assert f"from alpha = {first:.2f} on left the generator's realistic range" in view.caption
    assert "the 99th percentile of held-out base latents" in view.caption
    assert "off the generator's range" in view.probabilities_html and "off the generator's range" in view.title
    start = view.at_step(0)
    assert "within the generator's range" in start.probabilities_html and "off the" not in start.title
    frame = view.to_frame()
    by_step = frame.groupby("step")[["off_manifold", "latent_distance"]].first()
    np.testing.assert_array_equal(by_step["off_manifold"], off)
    np.testing.assert_allclose(by_step["latent_distance"], view.latent_distance)
    calm = exploring.path(0, 1, 0, hand_result(np.zeros(3), r))
    assert not calm.off_manifold.any() and "whole path stays within the generator's realistic range" in calm.caption


def test_refined_spacing_is_the_default(identity_linked):
    exploring = CounterfactualExploring(identity_linked, max_steps=200, top_k=2)
    assert exploring.n_alphas == 13 and exploring.spacing == "refined"
    view = exploring.compute(0, 1, 0)
    assert len(view.alphas) == 13 and view.alphas[0] == 0 and view.alphas[-1] == 1
    assert f"reached <b>green</b> in {view.result.steps[0]} step" in view.caption_html
    assert " 1 steps" not in view.caption and " 1 points" not in view.caption  # "1 step", "1 point"
    with pytest.raises(ValueError, match="spacing"):
        CounterfactualExploring(identity_linked, spacing="log")


def test_the_default_search_is_constrained_to_the_generators_range_and_says_so(exploring, identity_linked):
    """By default the search gets the realism model fitted on the base pairs' w, records each latent's distance
    and says in the caption that it was constrained; ``constrained=False`` runs the reference search."""
    assert exploring.constrained
    view = exploring.compute(0, 1, 0)
    assert view.constrained and view.result.latent_distance is not None
    assert view.result.realism_threshold == exploring.realism.threshold
    assert view.success == bool(view.result.success[0] and view.result.realistic[0])
    assert "Constrained search: kept within the generator's realistic range" in view.caption
    assert "reached <b>green</b> in " in view.caption_html and ", within the generator's realistic range" in view.caption
    np.testing.assert_allclose(view.latent_distance, view.trajectory.latent_distance[0])
    assert view.to_frame()["constrained"].all()
    free = exploring.compute(0, 1, 0, constrained=False)
    assert not free.constrained and free.result.latent_distance is None
    assert "Unconstrained search" in free.caption and not free.to_frame()["constrained"].any()
    # a given realism model is used as is
    other = CounterfactualExploring(identity_linked, max_steps=50, n_alphas=3, realism=exploring.realism,
                                    constrained=False)
    assert other.realism is exploring.realism and not other.compute(0, 1, 0).constrained


def test_a_target_reached_only_off_the_range_is_no_success(exploring, identity_linked):
    r = identity_linked.pairs.r[identity_linked.examples_of_class(0)[0]]
    result = hand_result(np.array([-30.0, 0.0, 0.0]), r)
    off = dataclasses.replace(result, success=np.array([False]), latent_distance=np.array([99.0]),
                              realism_threshold=exploring.realism.threshold)
    view = exploring.path(0, 1, 0, off)
    assert not view.success and view.constrained
    assert "only off the generator's range" in view.caption and "<b>no</b> realistic counterfactual" in view.caption_html


def test_a_confident_search_asks_for_the_target_probability_and_says_so(exploring):
    """Fake world: its loss saturates with p(green) about 0.41 for this example, so 0.3 is reached at the boundary
    and 0.99 never (find_counterfactuals's own tests show the search going on past the boundary)."""
    boundary = exploring.compute(0, 1, 0, constrained=False)
    assert boundary.success and "with p ≥" not in boundary.caption_html
    clear = exploring.compute(0, 1, 0, constrained=False, confidence=0.3)
    assert clear.success and clear.result.target_probability[0] >= 0.3
    assert "reached <b>green</b> with p ≥ 0.3 in" in clear.caption_html
    unreachable = exploring.compute(0, 1, 0, constrained=False, confidence=0.99)
    assert not unreachable.success and unreachable.result.reached_target[0]
    assert unreachable.result.target_probability[0] < 0.99
    assert "made green the top class but not with p ≥ 0.99" in unreachable.caption_html


def test_the_smallest_change_search_reaches_the_asked_probability(exploring):
    view = exploring.compute(0, 1, 0, confidence=0.6, search="minimal")
    assert view.success and view.constrained and view.result.realistic[0]
    assert view.result.target_probability[0] >= 0.6 - 1e-4 and view.trajectory.predicted[0, -1] == 1
    assert "Smallest-change search" in view.caption and "with p ≥ 0.6" in view.caption
    assert f"the smallest change found at step {view.result.steps[0]})" in view.caption
    with pytest.raises(ValueError, match="search must be"):
        exploring.compute(0, 1, 0, search="random")
