"""CounterfactualExplorer driven through its traits on the tiny fake world, where counterfactuals succeed."""

import numpy as np
import pytest

from linkviz.widgets import CounterfactualExplorer


@pytest.fixture
def explorer(identity_linked):
    return CounterfactualExplorer(identity_linked, max_steps=200, n_alphas=5, top_k=2, origin=0, target=1)


def test_finds_a_counterfactual_and_shows_its_end(explorer, identity_linked):
    search = explorer.search
    assert search.origin == 0 and search.target == 1 and search.example == 0
    assert search.row == identity_linked.examples_of_class(0)[0]
    assert search.result.success[0] and "reached <b>green</b>" in explorer.status.value
    assert explorer.scrubber.value == explorer.scrubber.max == 4
    assert search.trajectory.predicted[0, -1] == 1  # the rendered end point is the target class
    assert "green" in explorer.probabilities.value and "alpha = 1.00" in explorer.probabilities.value
    assert f"<td>{search.top_units[0]}</td>" in explorer.units.value and len(search.top_units) == 2
    assert explorer.example.max == len(identity_linked.examples_of_class(0)) - 1


def test_scrubber_changes_image_and_probabilities(explorer):
    end_image, end_probabilities = explorer.image.value, explorer.probabilities.value
    explorer.scrubber.value = 0
    assert explorer.image.value != end_image and explorer.probabilities.value != end_probabilities
    assert "alpha = 0.00" in explorer.probabilities.value
    p = explorer.search.trajectory.probabilities[0, 0]
    assert f"{p[0]:.3f}" in explorer.probabilities.value


def test_controls_start_a_new_search_in_the_worker(explorer, identity_linked):
    explorer.target.value = 2
    assert explorer.worker.wait_idle(30)
    assert explorer.search.target == 2 and explorer.error.value == ""
    explorer.example.value = 1
    assert explorer.worker.wait_idle(30)
    assert explorer.search.row == identity_linked.examples_of_class(0)[1]
    explorer.origin.value = 2  # a new origin clamps the example to its own examples
    assert explorer.worker.wait_idle(30)
    assert explorer.example.max == len(identity_linked.examples_of_class(2)) - 1


def test_target_equal_to_origin_is_a_visible_error(explorer):
    shown = explorer.search
    explorer.target.value = explorer.origin.value
    assert explorer.worker.wait_idle(30)
    assert "target equals origin" in explorer.error.value
    assert explorer.search is shown and "showing the last one" in explorer.status.value


def test_static_snapshot_for_exported_notebooks(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert 'src="data:image/jpeg;base64,' in html and "top shifted units" in html and "reached" in html
    assert np.isfinite(explorer.search.trajectory.probabilities).all()


def test_the_image_keeps_its_aspect_ratio(explorer):
    """Shown at the grid's own pixel size, not stretched to the height of the tables beside it."""
    row = next(child for child in explorer.children if explorer.image in getattr(child, "children", ()))
    assert row.layout.align_items == "flex-start"  # a flex row would otherwise stretch its children's height
    layout = explorer.image.layout
    assert layout.object_fit == "contain" and layout.flex == "0 0 auto"
    for step in (explorer.scrubber.max, 0):
        explorer.scrubber.value = step
        height, width = explorer.shown.grid.shape[:2]
        assert (layout.width, layout.height) == (f"{width}px", f"{height}px")


def test_the_path_is_refined_and_points_off_the_generators_range_are_flagged(explorer):
    search = explorer.search
    assert explorer.scrubber.max == len(search.alphas) - 1 and explorer.controller.spacing == "refined"
    assert "latent distance" in explorer.probabilities.value
    assert "realistic range" in explorer.status.value
    assert "change r' − r" in explorer.units.value and "shift s</th>" not in explorer.units.value


def test_keep_realistic_is_on_by_default_and_unticking_runs_the_reference_search(explorer):
    assert explorer.constrained.value and explorer.search.constrained
    assert "Constrained search" in explorer.status.value
    explorer.constrained.value = False
    assert explorer.worker.wait_idle(30)
    assert not explorer.search.constrained and "Unconstrained search" in explorer.status.value
    assert explorer.error.value == ""


def test_stop_when_asks_for_a_confident_target(explorer):
    assert explorer.confidence.value == 0.0 and explorer.confidence.label == "target is the top class"
    assert explorer.search.success and "with p ≥" not in explorer.status.value
    explorer.confidence.value = 0.99  # beyond what the fake world's search reaches
    assert explorer.worker.wait_idle(30)
    assert not explorer.search.success and explorer.search.result.reached_target[0]
    assert "not with p ≥ 0.99" in explorer.status.value and explorer.error.value == ""


def test_the_smallest_change_search_is_a_realistic_success(explorer):
    assert not explorer.constrained.disabled
    explorer.method.value = "minimal"
    assert explorer.worker.wait_idle(60)
    minimal = explorer.search
    assert explorer.constrained.disabled and explorer.error.value == ""
    assert minimal.success and minimal.result.realistic[0] and minimal.trajectory.predicted[0, -1] == 1
    assert "Smallest-change search" in explorer.status.value and "reached <b>green</b>" in explorer.status.value
    assert minimal.result.target_probability[0] >= 0.5 - 1e-4  # "top class" asks the smallest change for p >= 0.5
    explorer.method.value = "gradient"
    assert explorer.worker.wait_idle(30)
    assert not explorer.constrained.disabled and "Constrained search" in explorer.status.value
