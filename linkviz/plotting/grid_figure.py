"""A labelled image grid as a matplotlib figure: the static form of what a widget shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["grid_figure"]


def grid_figure(grid: np.ndarray, *, rows: int, columns: int, row_labels: Sequence[str] = (),
                column_labels: Sequence[str] = (), title: str = "", caption: str = "",
                width_inches: float = 6.5) -> Figure:
    """Draw a tiled image grid with its row and column labels, title and caption.

    The figure is built with :class:`matplotlib.figure.Figure` directly (no pyplot), so making one never
    changes the user's backend or shows anything by itself.

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
    from matplotlib.figure import Figure

    grid = np.asarray(grid)
    if grid.ndim != 3 or grid.shape[-1] != 3 or grid.dtype != np.uint8:
        raise ValueError(f"grid must be uint8 of shape (H, W, 3); got {grid.dtype} {grid.shape}")
    for name, labels, count in (("row_labels", row_labels, rows), ("column_labels", column_labels, columns)):
        if labels and len(labels) != count:
            raise ValueError(f"{name} has {len(labels)} entries for {count} {name.split('_')[0]}s")
    height, width = grid.shape[:2]
    extra = 0.35 * bool(title) + 0.25 * bool(column_labels) + 0.2 * (caption.count("\n") + 1) * bool(caption)
    figure = Figure(figsize=(width_inches, width_inches * height / width + extra + 0.1), layout="constrained")
    ax = figure.add_subplot()
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if column_labels:
        ax.set_xticks([(j + 0.5) * width / columns for j in range(columns)], labels=list(column_labels), fontsize=7)
    if row_labels:
        ax.set_yticks([(i + 0.5) * height / rows for i in range(rows)], labels=list(row_labels), fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=9)
    if caption:
        figure.supxlabel(caption, fontsize=7, wrap=True)
    return figure
