"""Motion arrows on a darkened image, coloured by direction: into the image bytes (live views) or as a quiver.

Only the strongest motions are drawn: the flow is averaged over ``step`` x ``step`` cells and the cells at or
above the ``quantile`` of cell magnitudes (and above ``min_magnitude``) get an arrow from the cell centre along
the mean displacement. Only trusted pixels count: valid ones, and of those the reliable ones
(:attr:`MotionField.reliable`, or an explicit ``mask``, e.g. :func:`linkviz.tracking.reliable_motion`), so
flat regions and inconsistent flow draw no arrows. Colour: HSV hue = screen angle / 2 pi (0 right = red,
up = yellow-green, left = cyan, down = violet), saturation = magnitude / ``max_magnitude``, value 1;
:func:`direction_legend` is its key as a raster tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.color import hsv2rgb

from linkviz.tracking.flow import MotionField

__all__ = ["MotionArrows", "darkened_rgb", "default_arrow_scale", "direction_colors", "direction_legend",
           "draw_motion_arrows", "strongest_motions"]


@dataclass(frozen=True, eq=False)
class MotionArrows:
    """The arrows selected for drawing, weakest first.

    Attributes
    ----------
    positions : ndarray, shape (K, 2)
        Arrow tails ``(row, col)`` in image pixels (cell centres).
    vectors : ndarray, shape (K, 2)
        Mean ``(row, col)`` displacement of each cell, in pixels.
    threshold : float
        Magnitude at or above which a cell got an arrow.
    """

    positions: np.ndarray
    vectors: np.ndarray
    threshold: float

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def magnitude(self) -> np.ndarray:
        """Arrow lengths in pixels, shape (K,)."""
        return np.hypot(self.vectors[:, 0], self.vectors[:, 1])

    @property
    def angle(self) -> np.ndarray:
        """Screen angles in radians, shape (K,): 0 right, pi/2 up."""
        return np.arctan2(0.0 - self.vectors[:, 0], self.vectors[:, 1])


def strongest_motions(field: MotionField, *, quantile: float = 0.85, step: int = 6, min_magnitude: float = 0.1,
                      mask: np.ndarray | None = None) -> MotionArrows:
    """Cells of ``field`` whose mean motion is among the strongest ``1 - quantile`` fraction.

    Parameters
    ----------
    field : MotionField
        Flow of shape (2, H, W).
    quantile : float in [0, 1)
        0.85 keeps the strongest 15 % of cells (ties at the threshold are all kept).
    step : int
        Cell size in pixels; cells with less than half their pixels valid, or (with a reliability mask) less than
        a quarter reliable, are ignored, and a cell's motion is the mean over its trusted pixels.
    min_magnitude : float
        Cells moving this little (pixels) or less never get an arrow, so static images get none.
    mask : ndarray, shape (H, W), bool, optional
        Pixels whose flow is reliable (e.g. :func:`linkviz.tracking.reliable_motion`); default
        ``field.reliable`` (all pixels when that is None). Combined with ``field.valid``.

    Returns
    -------
    MotionArrows
    """
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must be in [0, 1); got {quantile}")
    height, width = field.shape
    if not 1 <= step <= min(height, width):
        raise ValueError(f"step must be between 1 and {min(height, width)} pixels; got {step}")
    if mask is None:
        mask = field.reliable
    elif np.shape(mask) != field.shape:
        raise ValueError(f"mask has shape {np.shape(mask)}; expected {field.shape}")
    trusted = field.valid if mask is None else field.valid & np.asarray(mask, dtype=bool)
    n_rows, n_cols = height // step, width // step

    def per_cell(pixels: np.ndarray) -> np.ndarray:
        return pixels[..., :n_rows * step, :n_cols * step].reshape(*pixels.shape[:-2], n_rows, step, n_cols,
                                                                    step).sum(axis=(-3, -1))

    weights = per_cell(trusted)
    means = per_cell(field.flow * trusted) / np.maximum(weights, 1)
    usable = per_cell(field.valid) >= step * step / 2
    if mask is not None:
        usable &= weights >= step * step / 4
    magnitude = np.hypot(means[0], means[1])
    if not usable.any():
        return MotionArrows(np.empty((0, 2)), np.empty((0, 2)), np.inf)
    threshold = float(np.quantile(magnitude[usable], quantile))
    keep = usable & (magnitude >= threshold) & (magnitude > min_magnitude)
    cell_rows, cell_cols = np.nonzero(keep)
    order = np.argsort(magnitude[keep], kind="stable")
    positions = np.column_stack([cell_rows, cell_cols])[order] * step + (step - 1) / 2
    vectors = means[:, keep].T[order]
    return MotionArrows(positions.astype(np.float64), vectors, threshold)


def direction_colors(angle: np.ndarray, magnitude: np.ndarray, *, max_magnitude: float) -> np.ndarray:
    """RGB colours for motions: hue = angle / 2 pi, saturation = magnitude / max_magnitude, value 1.

    Parameters
    ----------
    angle : ndarray, shape (...)
        Screen angles in radians (0 right, pi/2 up).
    magnitude : ndarray, shape (...)
        Lengths in pixels.
    max_magnitude : float
        Magnitude of full saturation (> 0); larger ones are clipped.

    Returns
    -------
    ndarray, shape (..., 3), float64 in [0, 1]
    """
    if not max_magnitude > 0:
        raise ValueError(f"max_magnitude must be positive; got {max_magnitude}")
    angle, magnitude = np.broadcast_arrays(np.asarray(angle, float), np.asarray(magnitude, float))
    hsv = np.stack([np.mod(angle, 2 * np.pi) / (2 * np.pi), np.clip(magnitude / max_magnitude, 0.0, 1.0),
                    np.ones(angle.shape)], axis=-1)
    return hsv2rgb(hsv.reshape(-1, 1, 3)).reshape(hsv.shape)


def draw_motion_arrows(image: np.ndarray, field: MotionField, *, quantile: float = 0.85, step: int = 6,
                       upscale: int = 4, brightness: float = 0.4, arrow_scale: float | None = None,
                       max_magnitude: float | None = None, min_magnitude: float = 0.1,
                       value_range: tuple[float, float] = (0.0, 1.0), thickness: int = 2,
                       mask: np.ndarray | None = None) -> np.ndarray:
    """The image, darkened and upsampled, with arrows for its strongest motions drawn into the pixels.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        The reference image the field lives on; uint8 (0-255) or float in ``value_range``.
    field : MotionField
        Flow of shape (2, H, W).
    quantile, step, min_magnitude, mask
        Which motions get arrows; see :func:`strongest_motions` (by default only ``field.reliable`` pixels).
    upscale : int
        Nearest-neighbour upsampling factor, so that arrows on small images stay legible.
    brightness : float in [0, 1]
        Factor applied to the image under the arrows.
    arrow_scale : float, optional
        Drawn length per pixel of motion. Default: the longest arrow spans 0.9 ``step``. Fix it (and
        ``max_magnitude``) to compare frames of a live view.
    max_magnitude : float, optional
        Magnitude of full colour saturation; default the largest drawn magnitude.
    value_range : (float, float)
        Black and white levels of a float image, e.g. (-1, 1) for generator output.
    thickness : int
        Shaft width in output pixels.

    Returns
    -------
    ndarray, shape (H * upscale, W * upscale, 3), uint8
    """
    if upscale < 1 or thickness < 1:
        raise ValueError(f"upscale and thickness must be >= 1; got {upscale}, {thickness}")
    canvas = darkened_rgb(image, field.shape, brightness=brightness, value_range=value_range)
    canvas = np.repeat(np.repeat(canvas, upscale, axis=0), upscale, axis=1)
    arrows = strongest_motions(field, quantile=quantile, step=step, min_magnitude=min_magnitude, mask=mask)
    if not len(arrows):
        return canvas
    scale = default_arrow_scale(arrows, step) if arrow_scale is None else arrow_scale
    colors = direction_colors(arrows.angle, arrows.magnitude,
                              max_magnitude=max_magnitude or float(arrows.magnitude.max()))
    colors = np.round(colors * 255).astype(np.uint8)
    tails = (arrows.positions + 0.5) * upscale - 0.5
    for tail, vector, color in zip(tails, arrows.vectors, colors):
        _draw_arrow(canvas, tail, tail + vector * scale * upscale, color, thickness=thickness)
    return canvas


def direction_legend(size: int, *, brightness: float = 0.4) -> np.ndarray:
    """The colour key of the arrows as a raster tile: a disc whose hue is the direction and saturation the length.

    Same colours as :func:`direction_colors` (angle = direction from the centre on screen, saturation = distance
    from the centre over the radius), with short arrows of the four axis directions on the rim, on a background as
    dark as the arrow tiles' images (``brightness`` times white, grey).

    Parameters
    ----------
    size : int
        Side of the tile in pixels (>= 8).
    brightness : float in [0, 1]
        Grey level of the background.

    Returns
    -------
    ndarray, shape (size, size, 3), uint8
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels; got {size}")
    if not 0.0 <= brightness <= 1.0:
        raise ValueError(f"brightness must be in [0, 1]; got {brightness}")
    centre = (size - 1) / 2
    radius = 0.45 * size
    rows, cols = np.mgrid[:size, :size] - centre
    distance = np.hypot(rows, cols) / radius
    colours = direction_colors(np.arctan2(0.0 - rows, cols), distance, max_magnitude=1.0)
    tile = np.where((distance <= 1.0)[..., None], np.round(colours * 255), round(brightness * 255)).astype(np.uint8)
    if size >= 24:  # four small arrows from inside the rim outwards: the direction each hue stands for
        for angle in (0.0, np.pi / 2, np.pi, 3 * np.pi / 2):
            direction = np.array([-np.sin(angle), np.cos(angle)])
            colour = np.round(direction_colors(np.array(angle), np.array(1.0), max_magnitude=1.0) * 128).astype(np.uint8)
            _draw_arrow(tile, centre + direction * 0.45 * radius, centre + direction * 0.95 * radius, colour,
                        thickness=max(1, size // 48))
    return tile


def darkened_rgb(image: np.ndarray, shape: tuple[int, int], *, brightness: float,
                  value_range: tuple[float, float]) -> np.ndarray:
    """``image`` as uint8 RGB of shape (H, W, 3), scaled by ``brightness``."""
    image = np.asarray(image)
    if image.shape[:2] != shape or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must have shape {shape} or {shape + (3,)} to match the field; got {image.shape}")
    if not 0.0 <= brightness <= 1.0:
        raise ValueError(f"brightness must be in [0, 1]; got {brightness}")
    if image.dtype == np.uint8:
        unit = image / 255.0
    else:
        low, high = value_range
        if not high > low:
            raise ValueError(f"value_range must be increasing; got {value_range}")
        unit = np.clip((np.nan_to_num(image.astype(np.float64)) - low) / (high - low), 0.0, 1.0)
    if unit.ndim == 2:
        unit = np.repeat(unit[:, :, None], 3, axis=2)
    return np.round(unit * brightness * 255).astype(np.uint8)


def default_arrow_scale(arrows: MotionArrows, step: int) -> float:
    """Drawn length per pixel of motion that makes the longest arrow 0.9 cells long."""
    return 0.9 * step / float(arrows.magnitude.max())


def _draw_arrow(canvas: np.ndarray, tail: np.ndarray, tip: np.ndarray, color: np.ndarray, *,
                thickness: int) -> None:
    """Draw a shaft and a filled triangular head from ``tail`` to ``tip`` ((row, col) floats) in place.

    Rasterised in arrow coordinates over the arrow's bounding box: a pixel is painted when its centre lies within
    ``thickness / 2`` of the shaft, or inside the head (a triangle ``head`` long and ``head`` wide at its base,
    ``head = max(3, 0.35 length)``), both grown by half a pixel so thin arrows stay connected.
    """
    vector = tip - tail
    length = float(np.hypot(*vector))
    if length < 1.0:
        return
    direction = vector / length
    normal = np.array([direction[1], -direction[0]])
    head_length = max(3.0, 0.35 * length)
    shaft_length = max(length - head_length, 0.0)
    head_span = length - shaft_length
    half_base = head_length / 2
    corners = np.array([tail, tip, tail + normal * half_base, tail - normal * half_base,
                        tip - direction * head_span + normal * half_base,
                        tip - direction * head_span - normal * half_base])
    low = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    high = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, canvas.shape[:2])
    if np.any(high <= low):
        return
    rows, cols = np.mgrid[low[0]:high[0], low[1]:high[1]]
    d_row, d_col = rows - tail[0], cols - tail[1]
    along = d_row * direction[0] + d_col * direction[1]
    across = np.abs(d_row * normal[0] + d_col * normal[1])
    shaft = (along >= -0.5) & (along <= shaft_length + 0.5) & (across <= thickness / 2)
    into_head = along - shaft_length
    head = (into_head >= -0.5) & (into_head <= head_span + 0.5) & (
        across <= half_base * (1.0 - np.clip(into_head, 0.0, head_span) / head_span) + 0.5)
    paint = shaft | head
    canvas[rows[paint], cols[paint]] = color
