"""Fixtures of the controller tests: the fake linked world of the widget tests and a three-unit colour world.

The colour world: a 1x1 identity conv reads the red, green and blue channels (units 0, 1, 2), and nine 8x8 probe
images each hold a bright 4x4 square of one primary colour (image i: channel i % 3), labelled with that colour.
So unit c is the detector of colour c, and its top images are the images c, c + 3, c + 6.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fake_world import CLASS_NAMES, FakeGenerator, fake_classifier
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn

from linkviz.dissection import DissectionResult, ProbeDataset, dissect
from linkviz.linking import LinearLink, LinkedModel, build_linked_model


class _FakeWorld:
    class_names = CLASS_NAMES

    def __init__(self) -> None:
        self.classifier = fake_classifier()
        self.generator = FakeGenerator(offset=2.0)


@pytest.fixture
def linked() -> LinkedModel:
    """The fake world of tests/widgets/conftest.py with a ridge link fitted on 24 pairs (r has 3 units)."""
    return build_linked_model(_FakeWorld(), samples_per_class=8, truncation_psi=1.0, seed=0)


@pytest.fixture
def identity_linked(linked) -> LinkedModel:
    """The same base pairs with the exact link w = r of the fake world (counterfactuals succeed)."""
    identity = LinearLink(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, dtype=np.float32))
    return dataclasses.replace(linked, link=identity)


def _colour_model() -> nn.Sequential:
    """Units 0, 1, 2 read the red, green and blue channels (1x1 identity conv, ReLU, 2x2 average pool)."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3)[:, :, None, None])
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2))


def colour_probe() -> ProbeDataset:
    """Nine 8x8 images, each with a bright 4x4 square of one primary colour, labelled with that colour."""
    images = np.full((9, 8, 8, 3), 10, np.uint8)
    labels = np.zeros((9, 1, 8, 8), np.int64)
    for i in range(9):
        top = 2 * (i // 3)
        images[i, top:top + 4, top:top + 4, i % 3] = 250
        labels[i, 0, top:top + 4, top:top + 4] = i % 3 + 1
    return ProbeDataset(images=images, label_names=("-", "red-c", "green-c", "blue-c"), categories=("color",),
                        pixel_labels={"color": labels})


@pytest.fixture(scope="module")
def colour_world() -> tuple[DissectionResult, ProbeDataset]:
    """The colour model's layer "2" dissected on the colour probe (top 3 images per unit)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    probe = colour_probe()
    try:
        return dissect(_colour_model(), "2", probe, quantile=0.1, progress=False, top_k=3), probe
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def colour_model() -> nn.Sequential:
    """Units 0, 1, 2 read the red, green and blue channels (1x1 identity conv, ReLU, 2x2 average pool)."""
    return _colour_model()


def _axis_labels(figure) -> tuple[list[str], list[str]]:
    ax = figure.axes[0]
    return [t.get_text() for t in ax.get_yticklabels()], [t.get_text() for t in ax.get_xticklabels()]


@pytest.fixture
def axis_labels():
    """``axis_labels(figure)``: the row (y tick) and column (x tick) labels of a grid figure's image axes."""
    return _axis_labels
