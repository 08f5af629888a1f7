"""The vectorised change table equals the per-sequence path (measure_parts + part_changes) on varied masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from linkviz.quantify import ChangeTable, measure_parts, part_changes, unit_changes
from linkviz.quantify.batch_changes import batch_component_ellipses, batch_part_metrics
from linkviz.quantify.component_ellipses import component_ellipses

LABELS = ("background", "blob", "disk", "dot", "absent")
SIZE = 32


def _disk(centre: tuple[float, float], radius: float) -> np.ndarray:
    rows, cols = np.mgrid[:SIZE, :SIZE] + 0.5
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


def _sequence(rng: np.random.Generator, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Images [S, H, W, 3] and masks [S, H, W]: fragmented blobs touching borders, a disk, one-pixel dots."""
    images = rng.integers(0, 256, (n_steps, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n_steps, SIZE, SIZE), np.int64)
    for step in range(n_steps):
        noise = ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 2.5)
        masks[step][noise > 0.08 + 0.02 * step] = 1  # several components, some on the border
        masks[step][_disk((20 + rng.random(), 12 + rng.random()), 4 + step * 0.7)] = 2
        masks[step][rng.integers(0, SIZE, 3), rng.integers(0, SIZE, 3)] = 3  # single pixels (skipped)
        if step % 2:
            masks[step][:, -3:] = 1  # a strip along the right border
            masks[step][masks[step] == 2] = 0  # the disk is gone at odd steps
    return images, masks


def _oracle(images, masks, *, unit, references, **options) -> pd.DataFrame:
    tables = [part_changes(measure_parts(images[k], masks[k], LABELS, reference_step=int(references[k])), unit=unit,
                           seed=k, **options) for k in range(len(images))]
    return ChangeTable.concat(tables).frame


@pytest.mark.parametrize("options", [{}, {"visibility": 1.0, "area_floor": 3.0}, {"angle_min_eccentricity": 0.6}])
def test_unit_changes_equals_the_per_sequence_path(options):
    rng = np.random.default_rng(7)
    pairs = [_sequence(rng, 5) for _ in range(6)]
    images, masks = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    references = np.array([2, 0, 4, 2, 1, 3])
    expected = _oracle(images, masks, unit=5, references=references, **options)
    table = unit_changes(images, masks, LABELS, unit=5, reference_steps=references, **options).frame
    assert table["change"].notna().any() and (table["change"] != 0).any()
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-9, atol=1e-9)


def test_component_ellipses_equal_regionprops_on_every_part():
    rng = np.random.default_rng(3)
    _, masks = _sequence(rng, 6)
    found = batch_component_ellipses(masks, [1, 2, 3, 4], connectivity=2, min_component_area=2)
    for step in range(len(masks)):
        for slot, value in enumerate([1, 2, 3, 4]):
            ellipses, n_skipped = component_ellipses(masks[step] == value)
            mine = (found.image == step) & (found.part == slot)
            assert found.n_skipped[step, slot] == n_skipped
            np.testing.assert_allclose(found.area[mine], [e.area for e in ellipses])
            np.testing.assert_allclose(found.centroid[mine], np.array([e.centroid for e in ellipses]).reshape(-1, 2))
            np.testing.assert_allclose(found.eccentricity[mine], [e.eccentricity for e in ellipses], atol=1e-9)
            oriented = np.array([e.eccentricity > 1e-6 for e in ellipses], bool)
            np.testing.assert_allclose(found.angle[mine][oriented], np.array([e.angle for e in ellipses])[oriented],
                                       atol=1e-6)


def test_edge_cases_against_hand_computed_values():
    images = np.zeros((1, 16, 16, 3), np.uint8)
    images[..., 0] = 100  # luminance 29.9 everywhere
    masks = np.zeros((1, 16, 16), np.int64)
    masks[0, 0, 0] = 3  # one pixel in a corner: area 1, no ellipse
    masks[0, 5:10, 0:16] = 1  # a horizontal bar touching both borders: angle 0
    masks[0, 12:15, 12:15] = 2  # a 3x3 square: a disk for the moments, angle NaN
    metrics, components = batch_part_metrics(images, masks, [1, 2, 3, 4])
    area, luminance, entropy, eccentricity, angle = np.moveaxis(metrics[0], -1, 0)
    np.testing.assert_array_equal(area, [80, 9, 1, 0])
    np.testing.assert_allclose(luminance[:3], 29.9)
    assert np.isnan(luminance[3]) and np.isnan(entropy[3])  # empty part
    np.testing.assert_allclose(entropy[:3], 0.0)  # a flat image has no local entropy
    assert angle[0] == pytest.approx(0.0) and eccentricity[0] > 0.9
    assert eccentricity[1] == pytest.approx(0.0) and np.isnan(angle[1])  # the square has no orientation
    assert np.isnan(eccentricity[2]) and np.isnan(angle[2])  # one pixel: skipped, counted
    assert components.n_skipped[0].tolist() == [0, 0, 1, 0]


def test_empty_inputs_give_an_empty_table_with_the_columns():
    images, masks = np.zeros((0, 3, 8, 8, 3), np.uint8), np.zeros((0, 3, 8, 8), np.int64)
    table = unit_changes(images, masks, LABELS, unit=0, reference_steps=0).frame
    assert table.empty and list(table.columns) == list(ChangeTable.concat([]).frame.columns)
    only_background = unit_changes(np.zeros((2, 3, 8, 8, 3), np.uint8), np.zeros((2, 3, 8, 8), np.int64),
                                   ("background",), unit=0, reference_steps=0).frame
    assert only_background.empty


def test_a_bad_reference_step_is_refused_with_its_value():
    images, masks = np.zeros((2, 3, 8, 8, 3), np.uint8), np.zeros((2, 3, 8, 8), np.int64)
    with pytest.raises(ValueError, match="got 3"):
        unit_changes(images, masks, LABELS, unit=0, reference_steps=[0, 3])
