"""The analytic pattern planes predict where the renderer draws stripes, dots and petals."""

import numpy as np
import pytest
import torch

from linkviz.worlds.toy.factors import CLASS_NAMES, PART_NAMES, hsv_to_rgb, sample_factors
from linkviz.worlds.toy.patterns import N_PLANES, PATTERN_DIM, PETAL_COUNTS, pattern_geometry, pattern_planes
from linkviz.worlds.toy.render import _second_colour, render


@pytest.fixture(scope="module")
def world():
    table = sample_factors(np.arange(150) % len(CLASS_NAMES), seed=3)
    geometry = pattern_geometry(table)
    return table, render(table), geometry, pattern_planes(torch.from_numpy(geometry), 64).numpy()


def test_shapes_and_zero_geometry_for_absent_slots(world):
    table, _, geometry, planes = world
    assert geometry.shape == (len(table), PATTERN_DIM) and geometry.dtype == np.float32
    assert planes.shape == (len(table), N_PLANES, 64, 64)
    mushrooms = table.label == CLASS_NAMES.index("mushroom")
    assert np.all(geometry[mushrooms, 12:] == 0)  # no third part, no petals


def test_texture_waves_predict_the_second_colour(world):
    table, batch, _, planes = world
    agreement = {1: [], 2: []}
    for i in range(len(table)):
        for slot, part in enumerate(table.part_names(i)):
            kind = int(table.part_texture[i, slot])
            if kind == 0:
                continue
            pixels = batch.part_masks[i] == PART_NAMES.index(part)
            base = hsv_to_rgb(table.part_hsv[i, slot])
            second = hsv_to_rgb(_second_colour(table.part_hsv[i, slot]))
            image = batch.images[i] / 255.0
            drawn = np.abs(image - second).sum(-1) < np.abs(image - base).sum(-1)
            if kind == 1:  # stripes: second colour where sin(2 pi a) > 0
                predicted = planes[i, 4 * slot] > 0
            else:  # dots: near the half period along and across
                predicted = planes[i, 4 * slot + 1] + planes[i, 4 * slot + 3] < -1.1
            agreement[kind].append((drawn == predicted)[pixels].mean())
    assert len(agreement[1]) > 5 and len(agreement[2]) > 5
    # anti-aliased edges and the dots' circular shape leave a few pixels off
    assert np.mean(agreement[1]) > 0.92 and np.mean(agreement[2]) > 0.9


def test_petal_wave_peaks_on_petals(world):
    table, batch, _, planes = world
    flowers = np.flatnonzero(table.label == CLASS_NAMES.index("flower"))
    on_petals = []
    for i in flowers:
        wave = planes[i, 12 + PETAL_COUNTS.index(int(table.petal_count[i]))]
        on_petals.append(wave[batch.part_masks[i] == PART_NAMES.index("petals")].mean())
    # the wave is +1 on each petal's axis and -1 halfway between petals (a wrong phase averages to ~0)
    assert min(on_petals) > 0.1 and np.mean(on_petals) > 0.3
