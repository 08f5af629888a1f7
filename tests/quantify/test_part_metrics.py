"""Per-part metrics on synthetic shapes with known values."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.quantify import (
    component_ellipses,
    match_components,
    measure_parts,
    part_angle,
    part_area,
    part_eccentricity,
    part_entropy,
    part_luminance,
    visibility_threshold,
    wrap_axial_degrees,
)

SIZE = 64


def _blank(colour=(0, 0, 0)) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (SIZE, SIZE, 3)).copy()


def _disk(radius: float, centre=(32, 32)) -> np.ndarray:
    rows, cols = np.mgrid[:SIZE, :SIZE]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def _ellipse(a: float, b: float, angle_degrees: float, centre=(32.0, 32.0), size: int = SIZE) -> np.ndarray:
    """Ellipse with semi-axes a (major) and b, major axis at angle_degrees from +x, counter-clockwise on screen."""
    rows, cols = np.mgrid[:size, :size]
    x, y = cols - centre[1], -(rows - centre[0])  # screen coordinates: y points up
    t = np.radians(angle_degrees)
    u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def test_disk_area_matches_pi_r_squared():
    mask = _disk(20)
    assert part_area(_blank(), mask) == mask.sum()
    assert part_area(_blank(), mask) == pytest.approx(np.pi * 20**2, rel=0.02)


@pytest.mark.parametrize(("colour", "expected"), [((255, 0, 0), 0.299 * 255), ((0, 255, 0), 0.587 * 255),
                                                  ((0, 0, 255), 0.114 * 255), ((255, 255, 255), 255.0),
                                                  ((100, 100, 100), 100.0)])
def test_luminance_of_known_colours(colour, expected):
    image = _blank()
    mask = _disk(8)
    image[mask] = colour
    assert part_luminance(image, mask) == pytest.approx(expected)
    assert np.isnan(part_luminance(image, np.zeros((SIZE, SIZE), bool)))


def test_entropy_ordering_plain_stripes_noise():
    rng = np.random.default_rng(0)
    plain = _blank((120, 120, 120))
    stripes = _blank()
    stripes[:, ::2] = 255
    noise = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    mask = _disk(15)
    values = [part_entropy(image, mask) for image in (plain, stripes, noise)]
    assert values[0] == pytest.approx(0.0)
    assert values[1] == pytest.approx(1.0, abs=0.05)  # two equally frequent grey levels: 1 bit
    assert values[0] < values[1] < values[2]
    assert values[2] > 5.0  # nearly log2(81 px in a radius-5 disk) = 6.3 bits


@pytest.mark.parametrize("angle", [0.0, 30.0, -45.0, 60.0, 90.0])
def test_rotated_ellipse_eccentricity_and_angle(angle):
    mask = _ellipse(20, 10, angle)
    assert part_eccentricity(_blank(), mask) == pytest.approx(np.sqrt(1 - 0.5**2), abs=0.01)
    assert wrap_axial_degrees(part_angle(_blank(), mask) - angle) == pytest.approx(0.0, abs=1.0)
    assert -90 < part_angle(_blank(), mask) <= 90


def test_disk_eccentricity_is_near_zero():
    assert part_eccentricity(_blank(), _disk(12)) < 0.1


@pytest.mark.parametrize(("delta", "expected"), [(-178.0, 2.0), (178.0, -2.0), (90.0, 90.0), (-90.0, 90.0),
                                                 (180.0, 0.0), (45.0, 45.0), (-135.0, 45.0), (0.0, 0.0)])
def test_axial_angle_differences_wrap_to_half_open_interval(delta, expected):
    assert wrap_axial_degrees(delta) == pytest.approx(expected)
    np.testing.assert_allclose(wrap_axial_degrees(np.array([delta])), [expected])


def test_wrapped_change_across_the_axis_seam():
    before, after = _ellipse(20, 8, 89.0), _ellipse(20, 8, -89.0)
    change = wrap_axial_degrees(part_angle(_blank(), after) - part_angle(_blank(), before))
    assert change == pytest.approx(2.0, abs=1.0)


def test_single_pixel_components_are_skipped_and_counted():
    mask = _ellipse(12, 6, 20.0)
    mask[2, 2] = mask[2, 60] = mask[60, 2] = True
    ellipses, n_skipped = component_ellipses(mask)
    assert n_skipped == 3 and len(ellipses) == 1
    assert ellipses[0].eccentricity == pytest.approx(np.sqrt(1 - 0.25), abs=0.02)


def test_components_match_by_centroid_and_far_ones_do_not():
    reference, _ = component_ellipses(_disk(5, (15, 15)) | _disk(5, (45, 45)))
    moving, _ = component_ellipses(_disk(3, (10, 55)) | _disk(5, (47, 46)))  # raster order: far one first
    assert moving[0].centroid == pytest.approx((10, 55))
    assert list(match_components(reference, moving)) == [-1, 1]
    assert list(match_components(reference, moving, max_distance=100)) == [0, 1]
    assert list(match_components(reference, [])) == []


def test_visibility_threshold_scales_with_resolution():
    assert visibility_threshold((128, 128)) == 20.0
    assert visibility_threshold((256, 256)) == 80.0
    assert visibility_threshold((64, 64)) == 5.0


def test_measure_parts_tidy_table_and_absent_labels():
    images = np.stack([_blank((50, 50, 50)), _blank((50, 50, 50))])
    masks = np.zeros((2, SIZE, SIZE), np.int64)
    masks[0][_disk(10)] = 1
    masks[1][_ellipse(14, 7, 30.0)] = 1
    masks[1][5, 5] = 1  # a stray single pixel
    measured = measure_parts(images, masks, ["background", "body", "tail"])
    assert measured.labels == ("body", "tail")
    assert measured.n_skipped == 1
    frame = measured.to_frame()
    assert len(frame) == 2 * 2 * 5 and list(frame.columns) == ["step", "label", "metric", "value"]
    tail = frame[frame["label"] == "tail"].set_index(["step", "metric"])["value"]
    assert tail[0, "area"] == 0 and np.isnan(tail[0, "luminance"]) and np.isnan(tail[1, "angle"])
    body = frame[frame["label"] == "body"].set_index(["step", "metric"])["value"]
    assert body[1, "luminance"] == pytest.approx(50.0)
    assert body[1, "angle"] == pytest.approx(30.0, abs=1.5)
    components = measured.components
    assert (components["track"] == 0).all()  # the ellipse is matched to the reference disk


def test_bad_input_is_rejected():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="masks must have shape"):
        measure_parts(images, np.zeros((2, 8, 9), int), ["a"])
    with pytest.raises(ValueError, match="mask values"):
        measure_parts(images, np.full((2, 8, 8), 3), ["a", "b"])
    with pytest.raises(ValueError, match="reference_step"):
        measure_parts(images, np.zeros((2, 8, 8), int), ["a"], reference_step=-1)
    with pytest.raises(ValueError, match="uint8"):
        measure_parts(images.astype(float), np.zeros((2, 8, 8), int), ["a"])


def _subpixel_disk(radius: float, centre: tuple[float, float]) -> np.ndarray:
    rows, cols = np.mgrid[:SIZE, :SIZE]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


@pytest.mark.parametrize("radius", [3.0, 5.2, 8.0, 12.0, 20.0])
@pytest.mark.parametrize("centre", [(32.0, 32.0), (32.25, 32.5), (31.5, 32.75)])
def test_a_disk_has_no_angle(radius, centre):
    # Digitised disks have eccentricities up to 0.4 at these radii, but their axes differ by less than the
    # pixel grid can make them; the orientation is undefined, not 45 degrees or a noise angle.
    assert np.isnan(part_angle(_blank(), _subpixel_disk(radius, centre)))


def test_an_ellipse_keeps_its_angle_and_a_disk_beside_it_does_not_count():
    ellipse = _ellipse(16, 8, 30.0, centre=(20.0, 20.0))  # axes differ by 16 px: clearly oriented
    assert part_angle(_blank(), ellipse) == pytest.approx(30.0, abs=1.0)
    with_disk = ellipse | _disk(10, (46, 46))  # a disk of similar area would pull the mean towards 45
    assert len(component_ellipses(with_disk)[0]) == 2
    assert part_angle(_blank(), with_disk) == pytest.approx(30.0, abs=1.0)


def test_near_disk_threshold_is_the_one_part_changes_uses():
    import inspect

    from linkviz.quantify import part_changes
    from linkviz.quantify.component_ellipses import ANGLE_MIN_ECCENTRICITY
    default = inspect.signature(part_changes).parameters["angle_min_eccentricity"].default
    assert default == ANGLE_MIN_ECCENTRICITY == inspect.signature(part_angle).parameters["min_eccentricity"].default


@pytest.mark.parametrize("metric", [part_area, part_luminance, part_entropy, part_eccentricity, part_angle])
@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.where(_disk(5), np.nan, 0.0), "got dtype float64, 81 of them NaN"),
        (_disk(5).astype(np.float32), "got dtype float32"),
        (_disk(5).astype(np.int64) * 3, r"integer mask must hold only 0 and 1; got values \[0, 3\]"),
    ],
)
def test_every_metric_refuses_float_nan_and_label_map_masks(metric, mask, message):
    with pytest.raises(ValueError, match=message):
        metric(_blank(), mask)


def test_integer_zero_one_masks_are_accepted():
    mask = _ellipse(20, 10, 30.0)
    assert part_angle(_blank(), mask.astype(np.uint8)) == part_angle(_blank(), mask)
