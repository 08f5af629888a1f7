"""Part overlays and superpixel drawings on synthetic images and label maps of known layout."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from linkviz.plotting.overlays import (
    BACKGROUND_COLOR,
    draw_superpixels,
    label_colors,
    overlay_parts,
    plot_parts,
    to_hex,
)


def _image_and_mask():
    """A 12 x 12 mid-grey image; label 1 = rows 2..5 x cols 2..9, label 2 = rows 7..10 x cols 4..7."""
    image = np.full((12, 12, 3), 100, np.uint8)
    mask = np.zeros((12, 12), np.int64)
    mask[2:6, 2:10] = 1
    mask[7:11, 4:8] = 2
    return image, mask


def test_label_colors_grey_background_then_the_palette_cycling():
    colors = label_colors(25)
    assert colors.shape == (25, 3) and colors.dtype == np.uint8
    assert tuple(colors[0]) == BACKGROUND_COLOR
    assert tuple(colors[1]) == (31, 119, 180)  # the first palette colour goes to the first part
    assert len({tuple(c) for c in colors[1:19]}) == 18 and tuple(colors[19]) == tuple(colors[1])  # cycles
    assert tuple(label_colors(3, background=None)[0]) == (31, 119, 180)
    np.testing.assert_array_equal(label_colors(3)[2], label_colors(9)[2])  # an id's colour never depends on n
    assert to_hex((31, 119, 180)) == "#1f77b4"


def test_overlay_tints_parts_leaves_background_and_outlines_the_inner_boundary():
    image, mask = _image_and_mask()
    colors = label_colors(3)
    plain = overlay_parts(image, mask, alpha=0.0, outline=False)
    np.testing.assert_array_equal(plain, image)
    flat = overlay_parts(image, mask, alpha=1.0, outline=False)
    np.testing.assert_array_equal(flat[mask == 0], image[mask == 0])
    np.testing.assert_array_equal(flat[mask == 1], np.broadcast_to(colors[1], (32, 3)))
    half = overlay_parts(image, mask, alpha=0.5, outline=True)
    assert tuple(half[2, 5]) == tuple(colors[1])                       # top edge of part 1: full colour
    assert tuple(half[3, 5]) == tuple(np.round(0.5 * 100 + 0.5 * colors[1].astype(float)).astype(np.uint8))
    assert tuple(half[1, 5]) == (100, 100, 100)                        # the background outside is untouched
    assert tuple(half[8, 5]) == tuple(np.round(0.5 * 100 + 0.5 * colors[2].astype(float)).astype(np.uint8))


def test_zoom_keeps_outlines_one_pixel_wide_and_low_resolution_masks_are_resampled():
    image, mask = _image_and_mask()
    big = overlay_parts(image, mask, alpha=0.5, zoom=4)
    assert big.shape == (48, 48, 3)
    colors = label_colors(3)
    assert tuple(big[8, 20]) == tuple(colors[1]) and tuple(big[9, 20]) != tuple(colors[1])
    coarse = mask[::2, ::2]  # 6 x 6: the segmenter predicted at half resolution
    resampled = overlay_parts(image, coarse, alpha=1.0, outline=False)
    np.testing.assert_array_equal(resampled, overlay_parts(image, np.kron(coarse, np.ones((2, 2), int)),
                                                           alpha=1.0, outline=False))
    grey = overlay_parts(image[..., 0], mask)  # a grey image is drawn as RGB
    assert grey.shape == (12, 12, 3)


def test_overlay_rejects_bad_input():
    image, mask = _image_and_mask()
    with pytest.raises(ValueError, match="uint8"):
        overlay_parts(image.astype(np.float32), mask)
    with pytest.raises(ValueError, match="alpha"):
        overlay_parts(image, mask, alpha=1.5)
    with pytest.raises(ValueError, match="integer label map"):
        overlay_parts(image, mask.astype(float))
    with pytest.raises(ValueError, match="L >= 3"):
        overlay_parts(image, mask, colors=label_colors(2))
    with pytest.raises(ValueError, match="negative"):
        overlay_parts(image, mask - 1)


def test_superpixels_get_white_boundaries_a_yellow_selection_ring_and_their_ids():
    image = np.full((16, 16, 3), 120, np.uint8)
    segments = np.zeros((16, 16), np.int64)
    segments[:, 8:] = 1
    drawn = draw_superpixels(image, segments, zoom=4, selected=[1], numbers=False)
    assert drawn.shape == (64, 64, 3)
    assert tuple(drawn[10, 31]) == (255, 255, 255) and tuple(drawn[10, 32]) == (255, 255, 0)  # boundary, ring
    assert tuple(drawn[10, 20]) == (120, 120, 120) and tuple(drawn[30, 62]) == (255, 255, 0)
    assert tuple(drawn[30, 45]) == (120, 120, 120)  # the ring is 2 px wide, the inside untouched
    numbered = draw_superpixels(image, segments, zoom=4)
    around_id = numbered[26:38, 10:22]  # id 0 at the centroid of the left half
    assert (around_id < 50).all(axis=-1).any() and (around_id == 255).all(axis=-1).any()  # black on white
    with pytest.raises(ValueError, match="size of segments"):
        draw_superpixels(image[:8], segments, zoom=4)


def test_plot_parts_lists_present_parts_in_the_legend():
    import matplotlib.pyplot as plt

    image, mask = _image_and_mask()
    figure = plot_parts(image, mask, label_names=("background", "ear", "eye", "nose"))
    try:
        legend = figure.axes[0].get_legend()
        assert [text.get_text() for text in legend.get_texts()] == ["ear", "eye"]
        assert figure.axes[0].images[0].get_array().shape == (12, 12, 3)
    finally:
        plt.close(figure)
