"""Where flow is trusted: a textured square moved over a flat background gets arrows on the square only, pointing
the way it moved; batched TV-L1 agrees with scikit-image's; registered pairs skip the alignment."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bump_pair, shifted_pair, smooth_texture
from scipy import ndimage as ndi
from skimage.color import rgb2hsv
from skimage.registration import optical_flow_tvl1

from linkviz.tracking import (
    MotionField,
    align_images,
    consistency_mask,
    dense_flow,
    direction_legend,
    draw_motion_arrows,
    forward_backward_error,
    pair_flows,
    reliable_motion,
    residual_flow,
    strongest_motions,
    structure_mask,
    tvl1_flow_batch,
)

SIZE, TOP, SIDE = 64, 20, 20
SHIFT = (0, 3)  # (row, col): the square moves 3 px to the right
STEP = 4
NEAR = 8  # "near the square": within this many pixels of where it was or went


def square_pair(shift: tuple[int, int] = SHIFT, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured 20-px square on a flat grey background, and the same square moved by ``shift`` pixels."""
    texture = smooth_texture(SIZE, seed=seed)[TOP:TOP + SIDE, TOP:TOP + SIDE]
    reference, moving = np.full((SIZE, SIZE), 0.5), np.full((SIZE, SIZE), 0.5)
    reference[TOP:TOP + SIDE, TOP:TOP + SIDE] = texture
    moving[TOP + shift[0]:TOP + shift[0] + SIDE, TOP + shift[1]:TOP + shift[1] + SIDE] = texture
    return reference, moving


def near_square(positions: np.ndarray, margin: float) -> np.ndarray:
    low, high = TOP - margin, TOP + SIDE + max(SHIFT) + margin
    return np.all((positions >= low) & (positions <= high), axis=1)


def test_unmasked_tvl1_fills_the_flat_background_with_motion():
    """Why the mask is needed: TV-L1 spreads the square's motion over the whole flat background."""
    reference, moving = square_pair()
    field = dense_flow(reference, moving)
    background = np.ones((SIZE, SIZE), bool)
    background[TOP - 8:TOP + SIDE + 8, TOP - 8:TOP + SIDE + 11] = False
    assert np.median(field.flow[1][background]) > 0.5  # no pixel there moved
    arrows = strongest_motions(field, quantile=0.5, step=STEP)
    assert not near_square(arrows.positions, NEAR).all()


def test_reliable_arrows_sit_on_the_moved_square_and_point_its_way():
    reference, moving = square_pair()
    forward, backward = dense_flow(reference, moving), dense_flow(moving, reference)
    mask = reliable_motion(reference, forward.flow, backward.flow)
    assert not mask[:TOP - 8].any() and not mask[:, :TOP - 8].any()  # flat background: no structure
    assert mask[TOP + 2:TOP + SIDE - 2, TOP + 2:TOP + SIDE - 2].mean() > 0.9
    for quantile in (0.0, 0.5, 0.85):
        arrows = strongest_motions(forward, quantile=quantile, step=STEP, mask=mask)
        assert len(arrows) > 0 and near_square(arrows.positions, NEAR).all()
        assert np.all(arrows.vectors[:, 1] > 1.0) and np.all(np.abs(arrows.vectors[:, 0]) < 0.5)  # right
    canvas = draw_motion_arrows(reference, forward, step=STEP, quantile=0.5, upscale=2, mask=mask)
    hsv = rgb2hsv(canvas)
    drawn = (hsv[..., 1] > 0.3) & (hsv[..., 2] > 0.5)
    rows, cols = np.nonzero(drawn)
    assert drawn.sum() > 20 and near_square(np.column_stack([rows, cols]) / 2, 2 * STEP).all()
    hue = hsv[..., 0][drawn]
    assert np.mean((hue < 0.08) | (hue > 0.92)) > 0.9  # red: pointing right


def test_pair_flows_sets_the_reliable_mask_that_arrows_follow_by_default():
    reference, moving = square_pair()
    second = square_pair((2, 0), seed=1)  # a second pair in the same batch: moves down
    (field, other) = pair_flows(np.stack([reference, second[0]]), np.stack([moving, second[1]]))
    assert field.alignment is None and field.reliable is not None and field.reliable.shape == (SIZE, SIZE)
    arrows = strongest_motions(field, quantile=0.5, step=STEP)  # field.reliable applies without mask=
    assert len(arrows) and near_square(arrows.positions, NEAR).all() and np.all(arrows.vectors[:, 1] > 1.5)
    down = strongest_motions(other, quantile=0.5, step=STEP)
    assert len(down) and np.all(down.vectors[:, 0] > 1.0)
    unchecked = pair_flows(reference[None], moving[None], reliability=False)[0]
    assert unchecked.reliable is None and not near_square(strongest_motions(unchecked, quantile=0.5,
                                                                            step=STEP).positions, NEAR).all()


def test_forward_backward_check_flags_disagreement():
    forward = np.zeros((2, 16, 16))
    forward[1] = 2.0  # everything moves 2 px right ...
    backward = np.zeros((2, 16, 16))
    backward[1] = -2.0  # ... and back
    error, _ = forward_backward_error(forward, backward)
    assert np.all(error[:, :14] < 1e-9) and np.isinf(error[:, -1]).all()  # the last column leaves the image
    backward[1, :, 8:] = 3.0  # where the return trip lands here, it disagrees
    consistent = consistency_mask(forward, backward)
    assert consistent[:, :5].all() and not consistent[:, 7:].any()
    with pytest.raises(ValueError, match="same shape"):
        forward_backward_error(forward, backward[:, :8])


def test_structure_mask_is_false_on_flat_images_and_scales_with_uint8():
    assert not structure_mask(np.full((SIZE, SIZE), 0.3)).any()
    texture = smooth_texture(SIZE, seed=0)
    assert structure_mask(texture).mean() > 0.9
    np.testing.assert_array_equal(structure_mask(np.round(texture * 255).astype(np.uint8)), structure_mask(texture))
    assert structure_mask(texture * 2 - 1, value_range=(-1, 1)).mean() > 0.9


def test_batched_tvl1_matches_scikit_image():
    pairs = [shifted_pair((0.5, 1.5)), bump_pair(0.3)[:2], bump_pair(-0.3, seed=2)[:2]]
    references, movings = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    batched = tvl1_flow_batch(references, movings)
    assert batched.shape == (3, 2, *references.shape[1:]) and batched.dtype == np.float32
    for flow, (reference, moving) in zip(batched, pairs):
        np.testing.assert_allclose(flow, optical_flow_tvl1(reference, moving), atol=1e-3)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        tvl1_flow_batch(references[0], movings[0])


def test_identical_pairs_give_zero_flow_and_no_arrows():
    texture = smooth_texture(SIZE, seed=3)
    (field,) = pair_flows(texture[None], texture[None].copy())
    assert np.abs(field.flow).max() == 0 and len(strongest_motions(field, quantile=0.0, step=STEP)) == 0


def test_align_none_keeps_the_moving_image():
    reference, moving = shifted_pair((1.0, 2.0))
    alignment = align_images(reference, moving, method="none")
    assert alignment.method == "identity" and np.array_equal(alignment.matrix, np.eye(3))
    np.testing.assert_array_equal(alignment.warped, moving)
    field = residual_flow(reference, moving, align_method="none")
    np.testing.assert_allclose(np.median(field.flow[1][8:-8, 8:-8]), 2.0, atol=0.1)
    assert isinstance(field, MotionField)
    (phase,) = pair_flows(reference[None], ndi.shift(reference, (0, 2.0), order=3, mode="nearest")[None],
                          align_method="phase")
    np.testing.assert_allclose(phase.alignment.translation, (0.0, 2.0), atol=0.05)


def test_direction_legend_hue_is_the_arrow_direction():
    legend = direction_legend(64)
    assert legend.shape == (64, 64, 3) and legend.dtype == np.uint8
    hsv = rgb2hsv(legend)
    for (row, col), hue in (((35, 54), 0.0), ((10, 35), 0.25), ((35, 10), 0.5), ((54, 35), 0.75)):
        pixel = hsv[row, col]  # off the axes, beside the key's small arrows: right, up, left, down of the centre
        assert min(abs(pixel[0] - hue), 1 - abs(pixel[0] - hue)) < 0.05 and pixel[1] > 0.6
    assert hsv[32, 32, 1] < 0.1  # the centre (no motion) is white
    with pytest.raises(ValueError, match="at least 8"):
        direction_legend(4)
