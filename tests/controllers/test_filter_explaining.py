"""FilterExplaining without ipywidgets: a hand-made LaViSE explanation of the colour model (unit c reads channel c)."""

from __future__ import annotations

import fake_dissection
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from linkviz.controllers import ExplanationView, FilterExplaining, heat_overlay, unit_maps
from linkviz.lavise import LaviseExplanation

images = fake_dissection.colour_squares  # fixtures shared with the widget tests
explanation = fake_dissection.filter_explanation


def test_unit_maps_are_the_units_channel_pooled_and_upsampled(colour_model, images):
    maps = unit_maps(colour_model, "2", images, 2)
    assert maps.shape == (6, 8, 8) and maps.dtype == np.float32
    # ground truth: channel 2 in [0, 1], averaged over 2x2 blocks, upsampled bilinearly back to 8x8
    pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(images[..., 2] / 255.0).float()[:, None], 2)
    expected = torch.nn.functional.interpolate(pooled, size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(maps, expected.numpy(), atol=1e-5)
    assert maps[5, 4, 4] > 0.9 and maps[2, 1, 1] > 0.9 and maps[0].max() < 0.05  # only the blue squares
    with pytest.raises(ValueError, match="out of range"):
        unit_maps(colour_model, "2", images[:1], 3)
    assert np.array_equal(heat_overlay(images[:1], np.zeros((1, 8, 8))), images[:1])


def test_words_images_table_and_figure_without_a_model(explanation, images, axis_labels):
    explaining = FilterExplaining(explanation, images, k=5)
    assert explaining.units == (0, 2) and explaining.option(0) == "unit 0: red, sky, grass"
    view = explaining.compute(0)
    assert isinstance(view, ExplanationView) and view.images == (3, 0) and not view.maps and view.heat is None
    assert view.words.word.tolist() == ["red", "sky", "grass"]
    np.testing.assert_allclose(view.words.share, np.array([1.9, 1.0, 0.9]) / 3.8)
    assert view.image_words == ((("red", pytest.approx(0.9)), ("sky", pytest.approx(0.5))),
                                (("red", pytest.approx(0.8)), ("grass", pytest.approx(0.4))))
    assert "<b>red</b></td><td>1.9</td><td>50%</td>" in view.words_html and "grass (0.40)" in view.image_words_html
    zoom = 96 // 8
    assert view.grid.shape == (8 * zoom, (2 * 9 - 1) * zoom, 3) and (view.rows, view.columns) == (1, 2)
    np.testing.assert_array_equal(view.grid[::zoom, ::zoom][:8, :8], images[3])

    frame = view.to_frame()
    assert frame.columns.tolist() == ["unit", "image", "activation", "word_rank", "word", "similarity"]
    assert frame.image.tolist() == [3, 3, 0, 0] and frame.word.tolist() == ["red", "sky", "red", "grass"]
    np.testing.assert_allclose(frame.activation, [1.0, 1.0, 0.9, 0.9])
    figure = view.figure()
    assert isinstance(figure, Figure) and axis_labels(figure) == (["top images"], ["image 3", "image 0"])
    with pytest.raises(KeyError, match="not explained"):
        explaining.compute(1)


def test_activation_maps_with_a_model(explanation, images, colour_model, axis_labels):
    explaining = FilterExplaining(explanation, images, model=colour_model, k=4)
    view = explaining.compute(2)
    assert view.maps and view.images == (5,)  # the inactive top image is skipped
    np.testing.assert_allclose(view.heat, unit_maps(colour_model, "2", images[[5]], 2))
    zoom = 96 // 8
    assert (view.rows, view.columns) == (2, 1)
    np.testing.assert_array_equal(view.grid[9 * zoom::zoom, ::zoom][:8, :8], heat_overlay(images[[5]], view.heat)[0])
    assert view.heat[0, 4, 4] > view.heat[0, 0, 0]  # hot on the blue square
    frame = view.to_frame()
    assert frame.map_max.tolist() == pytest.approx([float(view.heat.max())] * 2)
    assert axis_labels(view.figure()) == (["top images", "activation map"], ["image 5"])
    assert explaining.compute(2).heat is view.heat  # cached per unit


def test_a_unit_inactive_on_all_its_top_images(explanation, images):
    valid = explanation.valid.copy()
    valid[1] = False
    explaining = FilterExplaining(LaviseExplanation(**{**explanation.__dict__, "valid": valid}), images)
    view = explaining.compute(2)
    assert view.images == () and view.to_frame().empty and view.image_words_html == ""
    assert isinstance(view.figure(), Figure)


def test_bad_input(explanation, images):
    with pytest.raises(ValueError, match="probe has 3"):
        FilterExplaining(explanation, images[:3])
    with pytest.raises(ValueError, match="positive"):
        FilterExplaining(explanation, images, k=0)
