"""Renderer ground truth: rendered parts have the area, eccentricity and angle their factors say."""

import numpy as np
import pytest
from skimage.filters.rank import entropy
from skimage.measure import regionprops
from skimage.morphology import disk

from linkviz.worlds.toy import CLASS_NAMES, PART_NAMES, render
from linkviz.worlds.toy.factors import N_UNIFORMS, factors_from_uniform

RESOLUTION = 64
CROWN = PART_NAMES.index("crown")


def one_tree(**changes):
    """A centred tree; ``changes`` override slot-1 (crown) factors or whole factor arrays."""
    table = factors_from_uniform(np.array([CLASS_NAMES.index("tree")]), np.full((1, N_UNIFORMS), 0.5))
    values = {"position": np.zeros((1, 2)), "scale": np.array([0.7])}
    for name in ("part_size", "part_elongation", "part_tilt"):
        if name in changes:
            array = getattr(table, name).copy()
            array[0, 1] = changes.pop(name)
            values[name] = array
    values.update(changes)
    return table.with_values(**values)


def crown_truth(table):
    """Analytic semi-axes (pixels at the output resolution) and orientation of the crown ellipse."""
    height = table.scale[0] * RESOLUTION
    size, stretch = table.part_size[0, 1], np.sqrt(table.part_elongation[0, 1])
    along, across = 0.32 * height * size * stretch, 0.28 * height * size / stretch
    tilt = table.part_tilt[0, 1]
    orientation = tilt if along >= across else (tilt + 90 + 90) % 180 - 90
    return along, across, orientation


@pytest.mark.parametrize("size, elongation, tilt", [(1.0, 1.0, 0.0), (1.2, 1.5, 25.0), (0.8, 1.6, -30.0),
                                                   (1.1, 0.6, 10.0)])
def test_crown_area_eccentricity_and_angle_match_factors(size, elongation, tilt):
    table = one_tree(part_size=size, part_elongation=elongation, part_tilt=tilt)
    mask = render(table, resolution=RESOLUTION).part_masks[0] == CROWN
    (props,) = regionprops(mask.astype(int))
    along, across = crown_truth(table)[:2]
    assert props.area == pytest.approx(np.pi * along * across, rel=0.04)
    major, minor = max(along, across), min(along, across)
    assert props.eccentricity == pytest.approx(np.sqrt(1 - (minor / major) ** 2), abs=0.03)
    if abs(elongation * 0.32 / 0.28 - 1) > 0.2:  # orientation is defined only for a clearly elongated ellipse
        difference = (np.rad2deg(props.orientation) - crown_truth(table)[2] + 90) % 180 - 90
        assert abs(difference) < 2.5


def test_part_size_scales_area_quadratically_and_elongation_keeps_it():
    areas = {}
    for size, elongation in [(0.8, 1.0), (1.2, 1.0), (1.2, 1.5)]:
        mask = render(one_tree(part_size=size, part_elongation=elongation)).part_masks[0]
        areas[size, elongation] = (mask == CROWN).sum()
    assert areas[1.2, 1.0] / areas[0.8, 1.0] == pytest.approx(1.5 ** 2, rel=0.05)
    assert areas[1.2, 1.5] == pytest.approx(areas[1.2, 1.0], rel=0.04)


def test_position_moves_the_object_by_the_stated_offset():
    centroids = []
    for dx in (0.0, 0.125):  # 8 output pixels, a whole number of canvas pixels
        mask = render(one_tree(position=np.array([[dx, 0.0]]))).part_masks[0] > 0
        centroids.append(np.argwhere(mask).mean(0))
    shift = centroids[1] - centroids[0]
    assert shift[1] == pytest.approx(0.125 * RESOLUTION, abs=0.05)
    assert shift[0] == pytest.approx(0.0, abs=0.05)


def luminance(image, mask):
    rgb = image[mask].astype(float)
    return float((rgb @ np.array([0.299, 0.587, 0.114])).mean())


def test_part_value_drives_luminance_and_texture_drives_entropy():
    base = one_tree(part_texture=np.zeros((1, 3), np.int64))
    hsv = base.part_hsv.copy()
    dark, bright = hsv.copy(), hsv.copy()
    dark[0, 1, 2], bright[0, 1, 2] = 0.3, 0.9
    images = [render(base.with_values(part_hsv=x)) for x in (dark, bright)]
    masks = [b.part_masks[0] == CROWN for b in images]
    assert luminance(images[1].images[0], masks[1]) > luminance(images[0].images[0], masks[0]) + 60

    entropies = {}
    for kind in (0, 1, 2):
        texture = base.part_texture.copy()
        texture[0, 1] = kind
        batch = render(base.with_values(part_texture=texture, part_size=np.array([[1.0, 1.25, 1.0]])))
        grey = (batch.images[0].astype(float) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        crown = batch.part_masks[0] == CROWN
        entropies[kind] = entropy(grey, disk(5))[crown].mean()
        assert set(np.unique(batch.texture_masks[0][crown])) == {1 + kind}
    assert entropies[1] > entropies[0] + 0.5 and entropies[2] > entropies[0] + 0.5


def test_render_is_deterministic_and_masks_are_consistent():
    table = factors_from_uniform(np.arange(5), np.random.default_rng(3).random((5, N_UNIFORMS)))
    first, second = render(table), render(table)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.part_masks, second.part_masks)
    assert first.images.shape == (5, 64, 64, 3) and first.images.dtype == np.uint8
    for i, class_name in enumerate(CLASS_NAMES):
        labels = {PART_NAMES[k] for k in np.unique(first.part_masks[i])} - {"background"}
        assert labels <= set(table.part_names(i)) and len(labels) >= 2
        assert ((first.texture_masks[i] > 0) == (first.part_masks[i] > 0)).mean() > 0.97


def test_every_class_part_is_visible_in_typical_renders():
    table = factors_from_uniform(np.repeat(np.arange(5), 20), np.random.default_rng(0).random((100, N_UNIFORMS)))
    batch = render(table)
    for i in range(len(table)):
        for part in table.part_names(i):
            assert (batch.part_masks[i] == PART_NAMES.index(part)).sum() >= 4, (i, part)


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="resolution"):
        render(one_tree(), resolution=4)
