"""FilterExplainer driven through its traits, on a hand-made explanation of a three-unit colour model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn

from linkviz.controllers.filter_explaining import heat_overlay, unit_maps
from linkviz.lavise import LaviseExplanation
from linkviz.widgets import FilterExplainer

VOCABULARY = ("red", "green", "blue", "sky", "grass")


def decoded(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"))


def colour_model() -> nn.Sequential:
    """Units 0, 1, 2 read the red, green and blue channels (1x1 identity conv, ReLU, 2x2 average pool)."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3)[:, :, None, None])
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2))


@pytest.fixture
def images() -> np.ndarray:
    """Six 8x8 images: image i has a bright square of channel i % 3 at a different place."""
    images = np.full((6, 8, 8, 3), 10, np.uint8)
    for i in range(6):
        top = 2 * (i // 3)
        images[i, top:top + 4, top:top + 4, i % 3] = 250
    return images


@pytest.fixture
def explanation() -> LaviseExplanation:
    """Units 0 and 2 explained: unit 0 -> red, sky; unit 2 is active on one of its two top images."""
    ids = np.zeros((2, 2, 3), np.int64)
    ids[0, 0], ids[0, 1], ids[1, 0] = [0, 3, 1], [0, 4, 3], [2, 3, 0]
    similarity = np.full((2, 2, 3), np.nan, np.float32)
    similarity[0, 0], similarity[0, 1], similarity[1, 0] = [0.9, 0.5, 0.1], [0.8, 0.4, 0.3], [0.7, 0.6, 0.2]
    return LaviseExplanation(
        layer="2", units=np.array([0, 2]), attention="code", s=2, top_images=np.array([[3, 0], [5, 1]]),
        image_activation=np.array([[1.0, 0.9], [1.0, 0.0]], np.float32),
        valid=np.array([[True, True], [True, False]]), image_word_ids=ids, image_similarity=similarity,
        unit_word_ids=(np.array([0, 3, 4]), np.array([2, 3])), unit_votes=(np.array([1.9, 1.0, 0.9]),
                                                                          np.array([1.0, 1.0])),
        vocabulary=VOCABULARY)


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
