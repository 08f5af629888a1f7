"""A labelled image grid as a matplotlib figure: the static form of what a widget shows, in the paper style."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from linkviz.plotting.paper_style import paper_figure, paper_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["draw_image_grid", "grid_figure"]


def _check_grid(grid: np.ndarray, rows: int, columns: int, row_labels: Sequence[str],
                column_labels: Sequence[str]) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 3 or grid.shape[-1] != 3 or grid.dtype != np.uint8:
        raise ValueError(f"grid must be uint8 of shape (H, W, 3); got {grid.dtype} {grid.shape}")
    for name, labels, count in (("row_labels", row_labels, rows), ("column_labels", column_labels, columns)):
        if labels and len(labels) != count:
            raise ValueError(f"{name} has {len(labels)} entries for {count} {name.split('_')[0]}s")
    return grid


def draw_image_grid(ax: Axes, grid: np.ndarray, *, rows: int, columns: int, row_labels: Sequence[str] = (),
                    column_labels: Sequence[str] = ()) -> Axes:
    """Show a tiled grid on ``ax`` as a raster image, rows labelled on the left and columns on top.

    The image is drawn with ``interpolation="none"`` so that vector output embeds its pixels unresampled.

    Parameters
    ----------
    ax : matplotlib Axes
    grid : ndarray of uint8, shape (H, W, 3)
        ``rows`` x ``columns`` tiles of equal size (gaps included), as made by :func:`linkviz.images.tile_images`.
    rows, columns : int
        The tile layout of ``grid``.
    row_labels, column_labels : sequence of str
        One per row / column, or empty; they are the y and x tick labels, at the tile centres.

    Returns
    -------
    matplotlib Axes
        ``ax``.
    """
    grid = _check_grid(grid, rows, columns, row_labels, column_labels)
    height, width = grid.shape[:2]
    ax.imshow(grid, interpolation="none")
    ax.set_xticks([])
    ax.set_yticks([])
    if column_labels:
        ax.set_xticks([(j + 0.5) * width / columns for j in range(columns)], labels=list(column_labels))
    if row_labels:
        ax.set_yticks([(i + 0.5) * height / rows for i in range(rows)], labels=list(row_labels))
    ax.xaxis.tick_top()
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def grid_figure(grid: np.ndarray, *, rows: int, columns: int, row_labels: Sequence[str] = (),
                column_labels: Sequence[str] = (), title: str = "", caption: str = "",
                width_inches: float = 6.5) -> Figure:
    """Draw a tiled image grid with its row and column labels, title and caption, in the paper style.

    The figure is built with :class:`matplotlib.figure.Figure` directly (no pyplot), so making one never
    changes the user's backend or shows anything by itself; save it with
    :func:`linkviz.plotting.paper_style.save_figure` for deterministic PDF, SVG or PNG files.

    Parameters
    ----------
    grid : ndarray of uint8, shape (H, W, 3)
        The tiles, ``rows`` x ``columns`` of equal size (gaps included), as made by :func:`linkviz.images.tile_images`.
    rows, columns : int
        The tile layout of ``grid``.
    row_labels, column_labels : sequence of str
        One per row / column, or empty.
    title, caption : str
        Plain text above and below the grid.
    width_inches : float
        Figure width; the height follows the grid's aspect ratio.

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = _check_grid(grid, rows, columns, row_labels, column_labels)
    height, width = grid.shape[:2]
    extra = 0.3 * bool(title) + 0.2 * bool(column_labels) + 0.35 * bool(caption)
    with paper_style():
        figure = paper_figure(width_inches, width_inches * height / width + extra + 0.1)
        draw_image_grid(figure.add_subplot(), grid, rows=rows, columns=columns, row_labels=row_labels,
                        column_labels=column_labels)
        if title:
            figure.suptitle(title)
        if caption:
            figure.supxlabel(caption, fontsize=6, wrap=True)
    return figure
