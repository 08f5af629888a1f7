"""The typed result every controller returns: what a widget shows, as a figure and as a tidy table."""

from __future__ import annotations

import html
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.plotting.grid_figure import grid_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GridView", "plain_text"]


def plain_text(fragment: str) -> str:
    """An HTML caption as plain text (tags dropped, entities decoded, white space folded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


@dataclass(frozen=True, eq=False, kw_only=True)
class GridView(ABC):
    """A rendered view: an image grid with its labels and caption, and the data behind it.

    Controllers return subclasses that add their own fields (units, values, masks, motion fields ...) and say
    how their data reads as a tidy table in :meth:`to_frame`. The widget shows :attr:`grid` with
    :attr:`caption_html`; :meth:`figure` draws the same view with matplotlib for papers and exports.

    Attributes
    ----------
    grid : ndarray of uint8, shape (H, W, 3)
        The tiled images exactly as the widget shows them.
    rows, columns : int
        Tile layout of ``grid``.
    row_labels, column_labels : tuple of str
        What each row / column shows (empty when unlabelled).
    title : str
        One line naming the view.
    caption_html : str
        The explanation under the image (HTML; :attr:`caption` is its plain text).
    """

    grid: np.ndarray
    rows: int
    columns: int
    row_labels: tuple[str, ...] = ()
    column_labels: tuple[str, ...] = ()
    title: str = ""
    caption_html: str = ""

    @property
    def caption(self) -> str:
        """:attr:`caption_html` as plain text."""
        return plain_text(self.caption_html)

    @abstractmethod
    def to_frame(self) -> pd.DataFrame:
        """The data behind the view as a tidy table (one observation per row)."""

    def figure(self, *, width_inches: float = 6.5) -> Figure:
        """The view as a matplotlib figure (labelled rows and columns, title, caption); no pyplot involved."""
        return grid_figure(self.grid, rows=self.rows, columns=self.columns, row_labels=self.row_labels,
                           column_labels=self.column_labels, title=self.title, caption=self.caption,
                           width_inches=width_inches)
