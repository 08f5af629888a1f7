"""Factor prior: determinism, validation, the planted shortcut and concept masks."""

import numpy as np
import pytest

from linkviz.worlds.toy import (
    CLASS_NAMES,
    COLOUR_NAMES,
    SHORTCUT_CLASS,
    colour_name_mask,
    decorrelate_background,
    factor_vector,
    flip_shortcut,
    sample_factors,
)
from linkviz.worlds.toy.factors import FACTOR_DIM, N_UNIFORMS, SKY_HUE, factors_from_uniform


def in_sky_band(hue):
    return (hue >= SKY_HUE[0]) & (hue <= SKY_HUE[1])


def test_same_seed_same_factors_and_other_seed_differs():
    labels = np.repeat(np.arange(5), 10)
    a, b, c = (sample_factors(labels, seed=s) for s in (1, 1, 2))
    for name, value in a.as_dict().items():
        np.testing.assert_array_equal(value, getattr(b, name))
    assert not np.allclose(a.part_size, c.part_size)


def test_bad_inputs_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="shape"):
        factors_from_uniform(np.zeros(3, int), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="labels"):
        factors_from_uniform(np.array([7]), np.zeros((1, N_UNIFORMS)))
    with pytest.raises(KeyError, match="unknown factor"):
        sample_factors(np.zeros(1, int), seed=0).with_values(colour=np.zeros(1))


def test_shortcut_background_is_planted_only_in_its_class():
    labels = np.repeat(np.arange(5), 2000)
    table = sample_factors(labels, seed=0)
    sky = in_sky_band(table.background_hsv[:, 0])
    shortcut = labels == CLASS_NAMES.index(SHORTCUT_CLASS)
    assert 0.87 < sky[shortcut].mean() < 0.93
    assert not sky[~shortcut].any()
    flipped = flip_shortcut(table, seed=1)
    assert not in_sky_band(flipped.background_hsv[:, 0]).any()
    np.testing.assert_array_equal(flipped.part_hsv, table.part_hsv)
    no_shortcut = sample_factors(labels, seed=0, shortcut_probability=0.0)
    assert not in_sky_band(no_shortcut.background_hsv[:, 0]).any()


def test_factor_vector_shape_and_range():
    table = sample_factors(np.repeat(np.arange(5), 50), seed=0)
    vectors = factor_vector(table)
    assert vectors.shape == (250, FACTOR_DIM) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all() and np.abs(vectors).max() <= 1.5
    np.testing.assert_array_equal(vectors[:, :5].argmax(1), table.label)


def test_colour_names_of_known_pixels():
    pixels = np.array([[[255, 0, 0], [0, 200, 0], [0, 0, 255], [255, 255, 255], [10, 10, 10], [128, 128, 128],
                        [255, 230, 0], [120, 60, 20]]], np.uint8)
    names = [COLOUR_NAMES[i] for i in colour_name_mask(pixels)[0]]
    assert names == ["red", "green", "blue", "white", "black", "grey", "yellow", "brown"]
    with pytest.raises(ValueError, match="RGB"):
        colour_name_mask(np.zeros((2, 2, 4), np.uint8))


def test_table_rows_and_frame():
    table = sample_factors(np.array([0, 2]), seed=0)
    assert len(table[1]) == 1 and table[1].label[0] == 2
    frame = table.to_frame()
    assert list(frame["part"]) == ["stem", "cap", "wall", "roof", "door"]


def test_decorrelated_backgrounds_put_every_class_in_the_sky_band():
    labels = np.repeat(np.arange(5), 400)
    table = sample_factors(labels, seed=0)
    uniform = decorrelate_background(table, seed=3)
    hue = uniform.background_hsv[:, 0]
    assert hue.min() >= 0.0 and hue.max() < 360.0
    counts, _ = np.histogram(hue, bins=12, range=(0.0, 360.0))
    assert counts.min() > 0.6 * counts.mean()
    sky_share = [in_sky_band(hue[labels == k]).mean() for k in range(5)]
    assert all(0.03 < share < 0.15 for share in sky_share)  # the band is 30 of 360 degrees
    np.testing.assert_array_equal(uniform.background_hsv[:, 1:], table.background_hsv[:, 1:])
    np.testing.assert_array_equal(uniform.part_size, table.part_size)
    np.testing.assert_array_equal(decorrelate_background(table, seed=3).background_hsv, uniform.background_hsv)
