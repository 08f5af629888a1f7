"""FilterExplainer driven through its traits, on a hand-made explanation of a three-unit colour model."""

from __future__ import annotations

import io

import fake_dissection
import numpy as np
import pytest
from fake_dissection import colour_model
from PIL import Image
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

from linkviz.controllers.filter_explaining import heat_overlay, unit_maps
from linkviz.widgets import FilterExplainer

images = fake_dissection.colour_squares  # fixtures shared with the controller tests
explanation = fake_dissection.filter_explanation


def decoded(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"))


def test_words_with_votes_and_top_images(explanation, images):
    explainer = FilterExplainer(explanation, images)
    assert explainer.unit.value == 0 and explainer.unit.options[0][0] == "unit 0: red, sky, grass"
    assert explainer.shown.images == (3, 0) and not explainer.shown.maps
    assert "<b>red</b></td><td>1.9</td><td>50%</td>" in explainer.words.value
    assert "red (0.90), sky (0.50)" in explainer.image_words.value and "grass (0.40)" in explainer.image_words.value
    grid = decoded(explainer.image.value)
    zoom = 96 // 8
    assert grid.shape == (8 * zoom, (2 * 9 - 1) * zoom, 3)
    assert np.array_equal(grid[::zoom, ::zoom][:8, :8], images[3])


def test_unit_change_runs_in_the_worker_with_activation_maps(explanation, images):
    model = colour_model()
    explainer = FilterExplainer(explanation, images, model=model, k=4)
    assert explainer.shown.maps
    explainer.unit.value = 2
    assert explainer.worker.wait_idle(10) and explainer.error.value == ""
    assert explainer.shown.unit == 2 and explainer.shown.images == (5,)  # the inactive image is skipped
    assert "<b>blue</b>" in explainer.words.value and "sky (0.60)" in explainer.image_words.value
    grid = decoded(explainer.image.value)
    zoom = 96 // 8
    heat = heat_overlay(images[[5]], unit_maps(model, "2", images[[5]], 2))[0]
    assert np.array_equal(grid[9 * zoom::zoom, ::zoom][:8, :8], heat)
    assert heat[4, 4, 0] > heat[0, 0, 0]  # the blue square is hot for the blue unit


def test_unit_maps_and_heat_overlay(images):
    maps = unit_maps(colour_model(), "2", images[:1], 0)
    assert maps.shape == (1, 8, 8) and maps[0, 1, 1] > 200 / 255 and maps[0, 7, 7] < 20 / 255
    shown = heat_overlay(images[:1], maps)
    assert shown.dtype == np.uint8 and tuple(shown[0, 1, 1]) != tuple(images[0, 1, 1])
    assert np.array_equal(heat_overlay(images[:1], np.zeros((1, 8, 8))), images[:1])
    with pytest.raises(ValueError, match="out of range"):
        unit_maps(colour_model(), "2", images[:1], 3)


def test_snapshot_and_bad_input(explanation, images):
    explainer = FilterExplainer(explanation, images, unit=2)
    bundle = explainer._repr_mimebundle_()
    assert bundle["text/html"].startswith('<img src="data:image/png;base64,')
    assert "blue" in bundle["text/html"]
    with pytest.raises(KeyError, match="not explained"):
        FilterExplainer(explanation, images, unit=1)
    with pytest.raises(ValueError, match="probe has 3"):
        FilterExplainer(explanation, images[:3])
