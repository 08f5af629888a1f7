"""Dense residual flow against known motion fields: endpoint error (EPE), conventions, degenerate pairs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SIZE, bump_pair, endpoint_error, shifted_pair
from scipy import ndimage as ndi

from linkviz.tracking import MotionField, dense_flow, residual_flow

# Mean EPE bounds (pixels) over the moving region (true motion > 0.1 px) for a radial bump of up to 2.2 px.
# Measured on this fixture: tvl1 0.079 (growth) / 0.088 (shrinkage); ilk 0.163 / 0.166.
EPE_BOUND = {"tvl1": 0.15, "ilk": 0.25}


@pytest.mark.parametrize("method", ["tvl1", "ilk"])
@pytest.mark.parametrize("amplitude", [0.3, -0.3], ids=["growth", "shrinkage"])
def test_local_radial_warp_mean_epe_below_bound(method, amplitude):
    reference, moving, true_flow = bump_pair(amplitude)
    moving_region = np.hypot(*true_flow) > 0.1
    field = dense_flow(reference, moving, method=method)
    epe = endpoint_error(field.flow, true_flow, moving_region)
    mean_motion = np.hypot(*true_flow)[moving_region].mean()
    assert epe < EPE_BOUND[method], f"{method}: mean EPE {epe:.3f} px (mean true motion {mean_motion:.2f} px)"


def test_shift_plus_local_warp_total_flow_mean_epe_below_0_1_px():
    shift = np.array([1.3, -0.6])
    reference, moving, bump_flow = bump_pair(0.2)
    moving = ndi.shift(moving, shift, order=3, mode="nearest")
    field = residual_flow(reference, moving)
    np.testing.assert_allclose(field.alignment.translation, shift, atol=0.05)
    assert np.abs(field.flow[:, ~field.valid]).max(initial=0) == 0  # no flow where nothing was compared
    epe = endpoint_error(field.total_flow(), bump_flow + shift[:, None, None], field.valid)
    assert epe < 0.1, f"mean EPE of alignment + residual flow {epe:.3f} px"
    residual_epe = endpoint_error(field.flow, bump_flow, field.valid)
    assert residual_epe < 0.15, f"mean EPE of the residual flow alone {residual_epe:.3f} px"


def test_flow_convention_rightward_shift_is_positive_col_and_angle_zero():
    reference, moving = shifted_pair((0.0, 1.0))
    field = dense_flow(reference, moving)
    interior = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(np.median(field.flow[0][interior]), 0.0, atol=0.05)
    np.testing.assert_allclose(np.median(field.flow[1][interior]), 1.0, atol=0.05)
    np.testing.assert_allclose(np.median(field.angle[interior]), 0.0, atol=0.05)
    np.testing.assert_allclose(np.median(field.magnitude[interior]), 1.0, atol=0.05)


@pytest.mark.parametrize("method", ["tvl1", "ilk"])
def test_identical_images_give_zero_flow_without_nan(texture, method):
    for image in (texture, np.full((SIZE, SIZE), 0.3)):
        field = dense_flow(image, image.copy(), method=method)
        assert np.isfinite(field.flow).all()
        assert np.abs(field.flow).max() < 1e-6
    field = residual_flow(texture, texture.copy(), method=method)
    assert np.isfinite(field.flow).all() and np.abs(field.total_flow()).max() < 1e-3


def test_valid_mask_zeroes_the_flow_outside(texture):
    moving = ndi.shift(texture, (0.0, 1.0), order=3, mode="nearest")
    valid = np.ones((SIZE, SIZE), bool)
    valid[:, :10] = False
    field = dense_flow(texture, moving, valid=valid, method="ilk")
    assert isinstance(field, MotionField) and field.flow.shape == (2, SIZE, SIZE)
    assert np.all(field.flow[:, :, :10] == 0) and np.abs(field.flow[:, :, 10:]).max() > 0.5


def test_bad_arguments_are_refused(texture):
    with pytest.raises(ValueError, match="method must be one of"):
        dense_flow(texture, texture, method="farneback")
    with pytest.raises(ValueError, match="valid has shape"):
        dense_flow(texture, texture, valid=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="same shape"):
        dense_flow(texture, texture[:-1])
