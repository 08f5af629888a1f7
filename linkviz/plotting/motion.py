"""Vector figures of motion fields: a matplotlib quiver of the strongest motions on the darkened image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from linkviz.tracking.arrows import darkened_rgb, default_arrow_scale, direction_colors, strongest_motions
from linkviz.tracking.flow import MotionField

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_motion_quiver"]


def plot_motion_quiver(image: np.ndarray, field: MotionField, *, quantile: float = 0.85, step: int = 6,
                       brightness: float = 0.4, arrow_scale: float | None = None,
                       max_magnitude: float | None = None, min_magnitude: float = 0.1,
                       value_range: tuple[float, float] = (0.0, 1.0), ax: Axes | None = None) -> Figure:
    """Vector figure of the strongest motions: a matplotlib quiver on the darkened image.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        The reference image; uint8 or float in ``value_range``.
    field : MotionField
        Flow of shape (2, H, W).
    quantile, step, min_magnitude, brightness, arrow_scale, max_magnitude, value_range
        As in :func:`draw_motion_arrows`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    background = darkened_rgb(image, field.shape, brightness=brightness, value_range=value_range)
    arrows = strongest_motions(field, quantile=quantile, step=step, min_magnitude=min_magnitude)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, 4.0 * field.shape[0] / field.shape[1]))
    ax.imshow(background, interpolation="nearest")
    if len(arrows):
        scale = default_arrow_scale(arrows, step) if arrow_scale is None else arrow_scale
        colors = direction_colors(arrows.angle, arrows.magnitude,
                                  max_magnitude=max_magnitude or float(arrows.magnitude.max()))
        ax.quiver(arrows.positions[:, 1], arrows.positions[:, 0], arrows.vectors[:, 1], arrows.vectors[:, 0],
                  color=colors, angles="xy", scale_units="xy", scale=1.0 / scale, width=0.006)
    ax.set_axis_off()
    ax.set_title(f"strongest {100 * (1 - quantile):.0f}% of motions", fontsize=9)
    return ax.figure
