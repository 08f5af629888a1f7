"""Tiny hand-made dissection worlds and LaViSE explanations, shared by the dissection, controller and widget tests.

Builders are plain functions; a test module binds the fixtures at the end to the name its tests ask for
(``explanation = fake_dissection.filter_explanation``).

The colour world: a 1x1 identity conv reads the red, green and blue channels (units 0, 1, 2), and 8x8 images
each hold a bright 4x4 square of one primary colour (image i: channel i % 3), labelled with that colour. So unit c
is the detector of colour c, and its top images are the images c, c + 3, c + 6.

The square world: 16x16 images of dim noise with a red 6x6 square (labelled "square", its bright pixels "red-c",
every image "beach-s"), and a 2x2 stride-2 conv whose unit 0 reads red, unit 1 green and unit 2 is constant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.dissection import DissectionResult, ProbeDataset, dissect
from linkviz.lavise import LaviseExplanation

SQUARE_NAMES = ("-", "square", "red-c", "beach-s")
VOCABULARY = ("red", "green", "blue", "sky", "grass")


def colour_model() -> nn.Sequential:
    """Units 0, 1, 2 read the red, green and blue channels (1x1 identity conv, ReLU, 2x2 average pool)."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3)[:, :, None, None])
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2))


def colour_images(n_images: int) -> np.ndarray:
    """8x8 images: image i has a bright 4x4 square of channel i % 3 (top-left for i < 3, moving down-right after)."""
    images = np.full((n_images, 8, 8, 3), 10, np.uint8)
    for i in range(n_images):
        top = 2 * (i // 3)
        images[i, top:top + 4, top:top + 4, i % 3] = 250
    return images


def colour_probe() -> ProbeDataset:
    """Nine 8x8 images, each with a bright 4x4 square of one primary colour, labelled with that colour."""
    images = colour_images(9)
    labels = np.where(images.max(axis=-1) > 127, images.argmax(axis=-1) + 1, 0).astype(np.int64)[:, None]
    return ProbeDataset(images=images, label_names=("-", "red-c", "green-c", "blue-c"), categories=("color",),
                        pixel_labels={"color": labels})


def colour_world() -> tuple[DissectionResult, ProbeDataset]:
    """The colour model's layer "2" dissected on the colour probe (top 3 images per unit), on one torch thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    probe = colour_probe()
    try:
        return dissect(colour_model(), "2", probe, quantile=0.1, progress=False, top_k=3), probe
    finally:
        torch.set_num_threads(previous)


def square_probe(n_images: int = 10, *, seed: int = 1, low: int = 150) -> ProbeDataset:
    """``n_images`` 16x16 images: a red 6x6 square (red drawn from ``[low, 255)``) labelled "square" on dim noise;
    colour "red-c" where red exceeds 150; scene "beach-s"."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 100, (n_images, 16, 16, 3)).astype(np.uint8)
    objects = np.zeros((n_images, 1, 16, 16), np.int64)
    for i in range(n_images):
        top, left = rng.integers(0, 10, 2)
        images[i, top:top + 6, left:left + 6, 0] = rng.integers(low, 255, (6, 6))
        objects[i, 0, top:top + 6, left:left + 6] = 1
    colour = np.where(images[..., 0] > 150, 2, 0)[:, None]
    return ProbeDataset(images=images, label_names=SQUARE_NAMES, categories=("object", "color", "scene"),
                        pixel_labels={"object": objects, "color": colour},
                        image_labels={"scene": np.full((n_images, 1), 3)})


def red_model() -> nn.Sequential:
    """conv 2x2 stride 2 (unit 0 reads red, unit 1 green, unit 2 is constant) -> ReLU; maps are 8x8."""
    conv = nn.Conv2d(3, 3, 2, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = 0.25
        conv.weight[1, 1] = 0.25
        conv.bias[2] = 1.0
    return nn.Sequential(conv, nn.ReLU())


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def colour_squares() -> np.ndarray:
    """Six 8x8 images: image i has a bright 4x4 square of channel i % 3 (top-left for i < 3, centred after)."""
    return colour_images(6)


@pytest.fixture
def filter_explanation() -> LaviseExplanation:
    """Units 0 and 2 of the colour model explained (words of :data:`VOCABULARY`): unit 0 -> red, sky, grass;
    unit 2 is active on one of its two top images (5 and 1)."""
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


@pytest.fixture
def word_explanation() -> LaviseExplanation:
    """Units 0 and 1 of the colour model explained with the words red, sky (unit 0) and green (unit 1)."""
    ids = np.zeros((2, 1, 2), np.int64)
    return LaviseExplanation(
        layer="2", units=np.array([0, 1]), attention="code", s=2, top_images=np.array([[0], [1]]),
        image_activation=np.ones((2, 1), np.float32), valid=np.ones((2, 1), bool), image_word_ids=ids,
        image_similarity=np.ones((2, 1, 2), np.float32), unit_word_ids=(np.array([0, 2]), np.array([1])),
        unit_votes=(np.array([2.0, 1.0]), np.array([1.5])), vocabulary=("red", "green", "sky"))
