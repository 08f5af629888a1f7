"""Pieces shared by the paper figures: image grids (from stacks or from a widget's tiled grid), the direction
wheel of motion arrows, and text panels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from linkviz.images import tile_images
from linkviz.plotting.grid_figure import draw_image_grid
from linkviz.tracking.arrows import direction_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["GridLike", "ImageGrid", "direction_wheel", "draw_grid", "grid_aspect", "text_panel", "tile_gap"]


class GridLike(Protocol):
    """A tiled image grid with its layout and labels; every :class:`linkviz.controllers.GridView` is one."""

    grid: np.ndarray
    rows: int
    columns: int
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]


@dataclass(frozen=True)
class ImageGrid:
    """Tiles of equal size in one image, with their layout and labels.

    Attributes
    ----------
    grid : ndarray of uint8, shape (H, W, 3)
    rows, columns : int
    row_labels, column_labels : tuple of str
        One per row / column, or empty.
    """

    grid: np.ndarray
    rows: int
    columns: int
    row_labels: tuple[str, ...] = ()
    column_labels: tuple[str, ...] = ()

    @classmethod
    def from_stack(cls, images: np.ndarray, *, row_labels: Sequence[str] = (), column_labels: Sequence[str] = (),
                   zoom: int = 1) -> ImageGrid:
        """Tile a stack of images, one row of the grid per first index.

        Parameters
        ----------
        images : ndarray of uint8, shape (R, C, H, W, 3)
        row_labels, column_labels : sequence of str
        zoom : int
            Nearest-neighbour magnification of each tile (the white gaps are :func:`tile_gap` pixels, zoomed).

        Returns
        -------
        ImageGrid
        """
        images = np.asarray(images)
        if images.ndim != 5 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 of shape (R, C, H, W, 3); got {images.dtype} {images.shape}")
        rows, columns = images.shape[:2]
        grid = tile_images(images.reshape(-1, *images.shape[2:]), columns=columns, zoom=zoom,
                           gap=tile_gap(images.shape[2]))
        return cls(grid=grid, rows=rows, columns=columns, row_labels=tuple(row_labels),
                   column_labels=tuple(column_labels))


def tile_gap(height: int) -> int:
    """White pixels between tiles of ``height`` pixels: about 1/16 of a tile, at least one."""
    return max(1, round(height / 16))


def grid_aspect(grid: GridLike) -> float:
    """Height over width of a grid's image."""
    return grid.grid.shape[0] / grid.grid.shape[1]


def draw_grid(ax: Axes, grid: GridLike, *, row_labels: Sequence[str] | None = None,
              column_labels: Sequence[str] | None = None) -> Axes:
    """:func:`linkviz.plotting.grid_figure.draw_image_grid` of a grid-like object (labels overridable)."""
    return draw_image_grid(ax, grid.grid, rows=grid.rows, columns=grid.columns,
                           row_labels=tuple(grid.row_labels if row_labels is None else row_labels),
                           column_labels=tuple(grid.column_labels if column_labels is None else column_labels))


def direction_wheel(ax: Axes, *, size: int = 129) -> Axes:
    """The colour key of motion arrows: hue = direction, saturation = length (:func:`direction_colors`).

    Parameters
    ----------
    ax : matplotlib Axes
        Gets a disk image (``size`` x ``size`` pixels, white outside) and the four directions named around it.
    size : int
        Pixels across the disk.

    Returns
    -------
    matplotlib Axes
        ``ax``.
    """
    centre = (size - 1) / 2
    rows, cols = np.mgrid[:size, :size] - centre
    radius = np.hypot(rows, cols) / centre
    colours = direction_colors(np.arctan2(0.0 - rows, cols), radius, max_magnitude=1.0)
    colours[radius > 1.0] = 1.0
    ax.imshow(np.round(colours * 255).astype(np.uint8), interpolation="none")
    for x, y, text, align in ((size + 1, centre, "right", "left"), (-2, centre, "left", "right")):
        ax.text(x, y, text, ha=align, va="center", fontsize=5)
    for y, text, align in ((-2, "up", "bottom"), (size + 1, "down", "top")):
        ax.text(centre, y, text, ha="center", va=align, fontsize=5)
    ax.set_title("arrow direction", pad=8)
    ax.set_axis_off()
    return ax


def text_panel(ax: Axes, heading: str, lines: Sequence[str]) -> Axes:
    """A boxless panel of text: a bold heading over a few lines (e.g. what one method says about a unit)."""
    ax.set_axis_off()
    ax.set_title(heading, loc="left", fontweight="bold")
    ax.text(0.0, 1.0, "\n".join(lines), ha="left", va="top", transform=ax.transAxes, linespacing=1.4, wrap=True)
    return ax
