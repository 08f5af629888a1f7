"""Fixtures of the controller tests: the fake linked world of the widget tests and a three-unit colour world.

The colour world (:mod:`fake_dissection`): a 1x1 identity conv reads the red, green and blue channels (units 0,
1, 2), and nine 8x8 probe images each hold a bright 4x4 square of one primary colour (image i: channel i % 3),
labelled with that colour. So unit c is the detector of colour c, and its top images are the images c, c + 3, c + 6.
"""

from __future__ import annotations

import fake_dissection
import pytest
from fake_linked import fake_world, identity_linked, linked  # noqa: F401  (the fake linked world's fixtures)
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn

from linkviz.dissection import DissectionResult, ProbeDataset


@pytest.fixture(scope="module")
def colour_world() -> tuple[DissectionResult, ProbeDataset]:
    """The colour model's layer "2" dissected on the colour probe (top 3 images per unit)."""
    return fake_dissection.colour_world()


@pytest.fixture
def colour_model() -> nn.Sequential:
    """Units 0, 1, 2 read the red, green and blue channels (1x1 identity conv, ReLU, 2x2 average pool)."""
    return fake_dissection.colour_model()


def _axis_labels(figure) -> tuple[list[str], list[str]]:
    ax = figure.axes[0]
    return [t.get_text() for t in ax.get_yticklabels()], [t.get_text() for t in ax.get_xticklabels()]


@pytest.fixture
def axis_labels():
    """``axis_labels(figure)``: the row (y tick) and column (x tick) labels of a grid figure's image axes."""
    return _axis_labels
