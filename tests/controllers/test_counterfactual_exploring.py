"""CounterfactualExploring without ipywidgets on the fake world with the identity link, where counterfactuals
succeed: the rendered end of the path is the target class."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from linkviz.controllers import CounterfactualExploring, CounterfactualView
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
