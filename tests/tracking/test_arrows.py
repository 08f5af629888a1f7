"""Arrow overlays: shape and dtype, only the strongest motions drawn, hue = direction, and the quiver figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from conftest import SIZE, shifted_pair
from skimage.color import rgb2hsv

from linkviz.plotting import plot_motion_quiver
from linkviz.tracking import (
    MotionField,
    dense_flow,
    direction_colors,
    draw_motion_arrows,
    strongest_motions,
)

BRIGHTNESS = 0.4


def _field(flow_row, flow_col) -> MotionField:
    flow = np.stack(np.broadcast_arrays(np.asarray(flow_row, float), np.asarray(flow_col, float))).copy()
    return MotionField(flow=flow, valid=np.ones(flow.shape[1:], bool), method="synthetic")


def _arrow_pixels(canvas: np.ndarray) -> np.ndarray:
    """Pixels brighter than any darkened image pixel can be: the arrows."""
    return canvas.max(axis=2) > BRIGHTNESS * 255 + 1


def _hue_distance(hue: np.ndarray, target: float) -> np.ndarray:
    difference = np.abs(hue - target) % 1.0
    return np.minimum(difference, 1.0 - difference)


@pytest.mark.parametrize("image", [np.random.default_rng(0).random((SIZE, SIZE)),
                                   np.random.default_rng(0).random((SIZE, SIZE, 3)) * 2 - 1,
                                   np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)],
                         ids=["grey-float", "rgb-[-1,1]", "rgb-uint8"])
def test_output_is_upsampled_uint8_rgb(image):
    value_range = (-1.0, 1.0) if image.dtype != np.uint8 and image.min() < 0 else (0.0, 1.0)
    field = _field(np.zeros((SIZE, SIZE)), np.ones((SIZE, SIZE)))
    canvas = draw_motion_arrows(image, field, upscale=3, value_range=value_range)
    assert canvas.shape == (3 * SIZE, 3 * SIZE, 3) and canvas.dtype == np.uint8
    assert _arrow_pixels(canvas).any()


def test_no_motion_draws_nothing_on_the_darkened_image(texture):
    field = dense_flow(texture, texture.copy())
    assert len(strongest_motions(field)) == 0
    canvas = draw_motion_arrows(texture, field, upscale=2, brightness=BRIGHTNESS)
    darkened = np.round(texture * BRIGHTNESS * 255).astype(np.uint8)
    np.testing.assert_array_equal(canvas[::2, ::2, 0], darkened)
    assert not _arrow_pixels(canvas).any()


def test_only_the_top_quantile_gets_arrows():
    step, upscale = 6, 4
    cols = np.broadcast_to(np.arange(SIZE, dtype=float), (SIZE, SIZE))
    field = _field(np.zeros((SIZE, SIZE)), 2.0 * cols / SIZE)  # rightward, stronger to the right
    arrows = strongest_motions(field, quantile=0.8, step=step)
    n_cells = (SIZE // step) ** 2
    assert 0.15 * n_cells <= len(arrows) <= 0.25 * n_cells
    assert np.all(arrows.magnitude >= arrows.threshold) and np.all(np.diff(arrows.magnitude) >= 0)
    first_col = arrows.positions[:, 1].min()
    cell_centres = np.arange(SIZE // step) * step + (step - 1) / 2
    assert np.all(2.0 * cell_centres[cell_centres < first_col] / SIZE < arrows.threshold)  # weaker cells

    canvas = draw_motion_arrows(np.zeros((SIZE, SIZE)), field, quantile=0.8, step=step, upscale=upscale)
    drawn_cols = np.nonzero(_arrow_pixels(canvas))[1]
    assert drawn_cols.min() >= (first_col - step / 2) * upscale  # nothing left of the selected cells


@pytest.mark.parametrize(("flow", "hue"), [((0.0, 1.0), 0.0), ((-1.0, 0.0), 0.25), ((0.0, -1.0), 0.5),
                                           ((1.0, 0.0), 0.75)], ids=["right", "up", "left", "down"])
def test_arrow_hue_matches_direction(flow, hue):
    field = _field(np.full((SIZE, SIZE), flow[0]), np.full((SIZE, SIZE), flow[1]))
    canvas = draw_motion_arrows(np.zeros((SIZE, SIZE)), field)
    pixels = _arrow_pixels(canvas)
    assert pixels.sum() > 100
    hsv = rgb2hsv(canvas)[pixels]
    assert np.all(_hue_distance(hsv[:, 0], hue) < 0.01)
    assert np.all(hsv[:, 1] > 0.99)  # equal magnitudes: all at full saturation


def test_estimated_rightward_shift_draws_red_arrows():
    reference, moving = shifted_pair((0.0, 1.5))
    field = dense_flow(reference, moving)
    canvas = draw_motion_arrows(reference, field, quantile=0.85)
    hue = rgb2hsv(canvas)[_arrow_pixels(canvas)][:, 0]
    assert hue.size > 100
    assert np.mean(_hue_distance(hue, 0.0) < 0.05) > 0.9


def test_direction_colors_saturation_follows_magnitude():
    colors = direction_colors(np.array([0.0, 0.0, 2 * np.pi, np.pi / 2]), np.array([2.0, 1.0, 4.0, 2.0]),
                              max_magnitude=2.0)
    hsv = rgb2hsv(colors[None])[0]
    np.testing.assert_allclose(hsv[:, 1], [1.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(hsv[:, 0], [0.0, 0.0, 0.0, 0.25], atol=1e-9)
    np.testing.assert_allclose(colors[0], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="max_magnitude"):
        direction_colors(np.zeros(1), np.zeros(1), max_magnitude=0.0)


def test_quiver_figure_draws_the_selected_arrows():
    import matplotlib.pyplot as plt
    from matplotlib.quiver import Quiver

    rows = np.broadcast_to(np.arange(SIZE, dtype=float)[:, None], (SIZE, SIZE))
    field = _field(-2.0 * rows / SIZE, np.zeros((SIZE, SIZE)))  # upward, stronger towards the bottom
    arrows = strongest_motions(field, quantile=0.85)
    figure = plot_motion_quiver(np.zeros((SIZE, SIZE, 3)), field, quantile=0.85)
    try:
        (quiver,) = [c for c in figure.axes[0].collections if isinstance(c, Quiver)]
        assert quiver.N == len(arrows) > 0
        np.testing.assert_allclose(quiver.V, arrows.vectors[:, 0])  # negative rows: up on the inverted y axis
        expected = direction_colors(arrows.angle, arrows.magnitude, max_magnitude=arrows.magnitude.max())
        np.testing.assert_allclose(quiver.get_facecolors()[:, :3], expected)
        assert figure.axes[0].yaxis_inverted()
    finally:
        plt.close(figure)


def test_bad_arguments_are_refused():
    field = _field(np.zeros((SIZE, SIZE)), np.ones((SIZE, SIZE)))
    with pytest.raises(ValueError, match="quantile"):
        strongest_motions(field, quantile=1.0)
    with pytest.raises(ValueError, match="step"):
        strongest_motions(field, step=0)
    with pytest.raises(ValueError, match="to match the field"):
        draw_motion_arrows(np.zeros((SIZE, SIZE + 1)), field)
    with pytest.raises(ValueError, match="brightness"):
        draw_motion_arrows(np.zeros((SIZE, SIZE)), field, brightness=2.0)
