"""Part segmentations drawn over images: coloured, alpha-blended, with outlines; as pixels (live) or a figure.

:func:`overlay_parts` writes into a uint8 RGB array (for JPEG/PNG bytes of live widgets), :func:`plot_parts`
shows the same overlay in a matplotlib figure with a legend, and :func:`draw_superpixels` marks superpixel
boundaries, their ids and a selection (the brush of a labelling widget). Label ``i`` gets colour ``i`` of
:func:`label_colors`; the background label is left unpainted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np
from skimage.segmentation import find_boundaries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["BACKGROUND_COLOR", "draw_superpixels", "label_colors", "overlay_parts", "plot_parts", "to_hex"]

# Tableau 10 then its light variants (matplotlib's tab10 / tab20), as uint8 RGB; cycled for more labels.
_PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120), (152, 223, 138),
    (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (219, 219, 141), (158, 218, 229),
], dtype=np.uint8)
BACKGROUND_COLOR = (127, 127, 127)


def label_colors(n_labels: int, *, background: int | None = 0) -> np.ndarray:
    """One colour per label id: grey for ``background``, the Tableau palette (cycled) for the others.

    Parameters
    ----------
    n_labels : int
        Number of label ids.
    background : int, optional
        Id that gets :data:`BACKGROUND_COLOR`; None gives every id a palette colour.

    Returns
    -------
    ndarray of uint8, shape (n_labels, 3)
    """
    if n_labels < 0:
        raise ValueError(f"n_labels must be non-negative; got {n_labels}")
    ids = np.arange(n_labels)
    if background is not None:
        ids = ids - (ids > background)  # the first foreground label gets the first palette colour
    colors = _PALETTE[ids % len(_PALETTE)].copy()
    if background is not None and 0 <= background < n_labels:
        colors[background] = BACKGROUND_COLOR
    return colors


def to_hex(color: Sequence[int]) -> str:
    """``(r, g, b)`` uint8 -> ``"#rrggbb"``."""
    r, g, b = (int(c) for c in color)
    return f"#{r:02x}{g:02x}{b:02x}"


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255); got {image.dtype} (use linkviz.plotting.to_uint8)")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W) or (H, W, 3); got {image.shape}")
    return image


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label map resampled to ``shape`` by nearest neighbour (pixel centres), ids unchanged."""
    if mask.shape == shape:
        return mask
    rows = ((np.arange(shape[0]) + 0.5) * mask.shape[0] / shape[0]).astype(np.int64)
    cols = ((np.arange(shape[1]) + 0.5) * mask.shape[1] / shape[1]).astype(np.int64)
    return mask[rows[:, None], cols[None, :]]


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise ValueError(f"mask must be a 2-D integer label map; got {mask.dtype} {mask.shape}")
    if mask.size and mask.min() < 0:
        raise ValueError(f"mask holds negative label ids ({int(mask.min())})")
    return mask.astype(np.int64)


def overlay_parts(image: np.ndarray, mask: np.ndarray, *, alpha: float = 0.45, zoom: int = 1,
                  colors: np.ndarray | None = None, background: int | None = 0, outline: bool = True) -> np.ndarray:
    """The image, magnified, with each part tinted in its colour and outlined.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3) or (H, W)
    mask : ndarray of int, shape (h, w)
        Label ids; resampled by nearest neighbour to the magnified image if its size differs (e.g. a segmenter
        that predicts at a lower resolution).
    alpha : float in [0, 1]
        Opacity of the tint (0: image only, 1: flat colours).
    zoom : int
        Nearest-neighbour magnification of the image; outlines are drawn at the magnified resolution, one
        output pixel wide, so they stay thin.
    colors : ndarray of uint8, shape (L, 3), optional
        Colour of each label id; default :func:`label_colors` for ``max(mask) + 1`` labels.
    background : int, optional
        Label left untinted and unoutlined; None paints every label.
    outline : bool
        Draw each part's inner boundary in its colour at full opacity.

    Returns
    -------
    ndarray of uint8, shape (H * zoom, W * zoom, 3)
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if zoom < 1:
        raise ValueError(f"zoom must be at least 1; got {zoom}")
    image, mask = _rgb(image), _check_mask(mask)
    n_labels = int(mask.max(initial=0)) + 1
    colors = label_colors(n_labels, background=background) if colors is None else np.asarray(colors, np.uint8)
    if colors.ndim != 2 or colors.shape[1] != 3 or len(colors) < n_labels:
        raise ValueError(f"colors must have shape (L, 3) with L >= {n_labels} (the largest id + 1); got "
                         f"{colors.shape}")
    if zoom > 1:
        image = np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)
    mask = _resize_nearest(mask, image.shape[:2])
    painted = np.ones(mask.shape, bool) if background is None else mask != background
    out = image.astype(np.float32)
    tint = colors[mask].astype(np.float32)
    out[painted] = (1.0 - alpha) * out[painted] + alpha * tint[painted]
    if outline:
        edges = find_boundaries(mask, mode="inner", background=-1) & painted
        out[edges] = tint[edges]
    return np.round(out).astype(np.uint8)


def draw_superpixels(image: np.ndarray, segments: np.ndarray, *, zoom: int = 1,
                     selected: Collection[int] = (), numbers: bool = True,
                     boundary_color: Sequence[int] = (255, 255, 255),
                     selected_color: Sequence[int] = (255, 255, 0)) -> np.ndarray:
    """Superpixel boundaries (and ids at their centroids) drawn over a magnified image.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3) or (H * zoom, W * zoom, 3)
        An image, or an already magnified one (e.g. from :func:`overlay_parts` with the same ``zoom``).
    segments : ndarray of int, shape (H, W)
        Superpixel ids (e.g. :func:`skimage.segmentation.slic`).
    zoom : int
        Magnification of the output relative to ``segments``.
    selected : collection of int
        Superpixels outlined in ``selected_color`` (two pixels wide).
    numbers : bool
        Write each superpixel's id at its centroid.
    boundary_color, selected_color : (int, int, int)

    Returns
    -------
    ndarray of uint8, shape (H * zoom, W * zoom, 3)
    """
    segments = _check_mask(segments)
    shape = (segments.shape[0] * zoom, segments.shape[1] * zoom)
    canvas = _rgb(image).copy()
    if canvas.shape[:2] == segments.shape and zoom > 1:
        canvas = np.repeat(np.repeat(canvas, zoom, axis=0), zoom, axis=1)
    if canvas.shape[:2] != shape:
        raise ValueError(f"image must have the size of segments {segments.shape} or that size times zoom {shape}; "
                         f"got {canvas.shape[:2]}")
    big = _resize_nearest(segments, shape)
    canvas[find_boundaries(big, mode="inner", background=-1)] = boundary_color
    chosen = np.isin(big, np.fromiter(selected, np.int64, count=len(selected)))
    if chosen.any():
        ring = chosen & ~_eroded(chosen, 2)
        canvas[ring] = selected_color
    if numbers:
        canvas = _write_ids(canvas, segments, zoom=zoom)
    return canvas


def _eroded(region: np.ndarray, width: int) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return binary_erosion(region, iterations=width, border_value=0)


def _write_ids(canvas: np.ndarray, segments: np.ndarray, *, zoom: int) -> np.ndarray:
    """Each superpixel's id in small black-on-white text at its centroid."""
    from PIL import Image, ImageDraw, ImageFont

    ids = np.unique(segments)
    rows, cols = np.indices(segments.shape)
    counts = np.bincount(segments.ravel(), minlength=int(ids.max()) + 1)
    centre_rows = np.bincount(segments.ravel(), weights=rows.ravel(), minlength=len(counts))
    centre_cols = np.bincount(segments.ravel(), weights=cols.ravel(), minlength=len(counts))
    picture = Image.fromarray(canvas)
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for segment in ids:
        y = (centre_rows[segment] / counts[segment] + 0.5) * zoom
        x = (centre_cols[segment] / counts[segment] + 0.5) * zoom
        left, top, right, bottom = pen.textbbox((x, y), str(segment), font=font, anchor="mm")
        pen.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=(255, 255, 255))
        pen.text((x, y), str(segment), fill=(0, 0, 0), font=font, anchor="mm")
    return np.asarray(picture)


def plot_parts(image: np.ndarray, mask: np.ndarray, *, label_names: Sequence[str] | None = None,
               alpha: float = 0.45, background: int | None = 0, colors: np.ndarray | None = None,
               ax: Axes | None = None) -> Figure:
    """Figure of a part segmentation over its image (the :func:`overlay_parts` pixels) with a colour legend.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3) or (H, W)
    mask : ndarray of int, shape (h, w)
    label_names : sequence of str, optional
        Name of each label id for the legend; default ``"part i"``. Only labels present in ``mask`` are listed.
    alpha, background, colors
        As in :func:`overlay_parts`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    mask = _check_mask(mask)
    n_labels = max(int(mask.max(initial=0)) + 1, len(label_names or ()))
    colors = label_colors(n_labels, background=background) if colors is None else np.asarray(colors, np.uint8)
    zoom = max(1, -(-mask.shape[0] // np.asarray(image).shape[0]))  # draw at least at the mask's resolution
    pixels = overlay_parts(image, mask, alpha=alpha, zoom=zoom, colors=colors, background=background)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3.5 * pixels.shape[0] / pixels.shape[1]))
    ax.imshow(pixels, interpolation="nearest")
    names = list(label_names) if label_names is not None else [f"part {i}" for i in range(n_labels)]
    present = [int(i) for i in np.unique(mask) if i != background]
    ax.legend(handles=[Patch(color=colors[i] / 255.0, label=names[i]) for i in present], fontsize=7,
              frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_axis_off()
    return ax.figure
