"""Global alignment on synthetic pairs with known motion: sub-pixel shifts, rotation + scale, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SIZE, camera, centred_similarity, shifted_pair
from skimage.transform import warp

from linkviz.tracking import Alignment, AlignmentError, align_images

CORNERS = np.array([[0, 0], [SIZE - 1, 0], [0, SIZE - 1], [SIZE - 1, SIZE - 1]], dtype=float)  # (col, row)


@pytest.mark.parametrize("method", ["phase", "auto"])
@pytest.mark.parametrize("shift", [(1.3, -2.7), (-0.45, 0.8)])
def test_subpixel_shift_recovered_below_0_1_px(method, shift):
    reference, moving = shifted_pair(shift)
    alignment = align_images(reference, moving, method=method)
    error = np.abs(alignment.translation - shift).max()
    assert error < 0.1, f"{method}: translation error {error:.4f} px for shift {shift}"
    assert abs(alignment.rotation) < 1e-3 and abs(alignment.scale - 1) < 1e-3


def test_rotation_and_scale_recovered_by_ransac_affine():
    reference = camera()
    truth = centred_similarity(scale=1.1, rotation_deg=10.0, shift=(1.5, -0.8))
    moving = warp(reference, truth.inverse, order=3, mode="reflect")

    coarse = align_images(reference, moving, method="features", refine=False)
    assert coarse.method == "features" and coarse.n_inliers >= 6 and not coarse.refined
    assert np.abs(coarse.transform(CORNERS) - truth(CORNERS)).max() < 1.5  # keypoint noise only

    alignment = align_images(reference, moving, method="features")
    corner_error = np.abs(alignment.transform(CORNERS) - truth(CORNERS)).max()
    assert alignment.refined and corner_error < 0.1, f"corner error {corner_error:.4f} px"
    assert np.rad2deg(alignment.rotation) == pytest.approx(10.0, abs=0.05)
    assert alignment.scale == pytest.approx(1.1, abs=1e-3)
    np.testing.assert_allclose(alignment.translation, (1.5, -0.8), atol=0.05)

    inside = alignment.valid
    before = np.abs(moving - reference)[inside].mean()
    after = np.abs(alignment.warped - reference)[inside].mean()
    assert after < 0.1 * before


def test_alignment_is_seeded():
    reference, moving = shifted_pair((0.7, 1.1))
    first = align_images(reference, moving, method="features", refine=False, seed=3)
    second = align_images(reference, moving, method="features", refine=False, seed=3)
    np.testing.assert_array_equal(first.matrix, second.matrix)


def test_rgb_and_uint8_inputs():
    reference, moving = shifted_pair((2.0, -1.25))
    to_rgb_uint8 = lambda image: np.round(np.repeat(image[:, :, None], 3, axis=2) * 255).astype(np.uint8)
    alignment = align_images(to_rgb_uint8(reference), to_rgb_uint8(moving), method="phase")
    assert alignment.warped.shape == (SIZE, SIZE, 3) and alignment.warped.dtype == np.float64
    np.testing.assert_allclose(alignment.translation, (2.0, -1.25), atol=0.1)
    assert alignment.warped.max() <= 255


def test_identical_images_give_identity():
    reference, _ = shifted_pair((0.0, 0.0))
    alignment = align_images(reference, reference.copy())
    np.testing.assert_allclose(alignment.matrix, np.eye(3), atol=1e-4)
    assert alignment.valid.all()
    np.testing.assert_allclose(alignment.warped, reference, atol=1e-3)


def test_constant_images_are_left_unaligned():
    flat = np.full((32, 32), 0.5)
    alignment = align_images(flat, flat, method="features")
    assert isinstance(alignment, Alignment) and alignment.method == "identity"
    np.testing.assert_array_equal(alignment.matrix, np.eye(3))
    assert np.isfinite(alignment.warped).all()


def test_auto_falls_back_to_phase_when_features_fail():
    rows, cols = np.mgrid[:SIZE, :SIZE]
    blob = lambda r, c: np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 10.0 ** 2))
    reference, moving = blob(47.5, 47.5), blob(49.5, 50.5)  # one smooth blob: too few keypoints
    with pytest.raises(AlignmentError, match="matches|keypoints|inliers"):
        align_images(reference, moving, method="features")
    alignment = align_images(reference, moving, method="auto")
    assert alignment.method == "phase"
    np.testing.assert_allclose(alignment.translation, (2.0, 3.0), atol=0.05)


@pytest.mark.parametrize(("reference", "moving", "message"), [
    (np.zeros((32, 32)), np.zeros((32, 33)), "same shape"),
    (np.zeros((32, 32, 4)), np.zeros((32, 32, 4)), "channels last"),
    (np.zeros((4, 4)), np.zeros((4, 4)), "at least 8x8"),
    (np.full((32, 32), np.nan), np.zeros((32, 32)), "1024 NaN"),
])
def test_bad_input_is_refused(reference, moving, message):
    with pytest.raises(ValueError, match=message):
        align_images(reference, moving)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        align_images(np.zeros((16, 16)), np.zeros((16, 16)), method="orb")
