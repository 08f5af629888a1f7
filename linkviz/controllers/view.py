"""The typed result every controller returns: what a widget shows, as a figure and as a tidy table."""

from __future__ import annotations

import html
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.plotting.grid_figure import grid_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GridView", "choice_index", "plain_text"]


def plain_text(fragment: str) -> str:
    """An HTML caption as plain text (tags dropped, entities decoded, white space folded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def choice_index(choice: int | str, names: Sequence[str], *, noun: str, plural: str, index_noun: str | None = None,
                 range_error: type[Exception] = IndexError) -> int:
    """The index of a choice (a class, a label) given by name or by index.

    ValueError for an unknown name (``"unknown {noun} 'x'; {plural}: [...]"``); ``range_error`` for an index
    outside ``names`` (``"{index_noun} 7 out of range for 3 {plural}"``, ``index_noun`` defaulting to ``noun``).
    """
    if isinstance(choice, str):
        if choice not in names:
            raise ValueError(f"unknown {noun} {choice!r}; {plural}: {list(names)}")
        return list(names).index(choice)
    index = int(choice)
    if not 0 <= index < len(names):
        raise range_error(f"{index_noun or noun} {index} out of range for {len(names)} {plural}")
    return index


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
        """The view as a matplotlib figure in the paper style (labelled rows and columns, title, caption); no pyplot.

        Results with a paper figure (:mod:`linkviz.figures`) override this to draw it; save either with
        :func:`linkviz.plotting.paper_style.save_figure` for the same bytes on every save.
        """
        return grid_figure(self.grid, rows=self.rows, columns=self.columns, row_labels=self.row_labels,
                           column_labels=self.column_labels, title=self.title, caption=self.caption,
                           width_inches=width_inches)
