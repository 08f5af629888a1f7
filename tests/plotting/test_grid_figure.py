"""grid_figure: a tiled grid with its row and column labels, with or without labels."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.images import tile_images
from linkviz.plotting.grid_figure import grid_figure


def _grid(rows: int, columns: int) -> np.ndarray:
    tiles = np.zeros((rows * columns, 8, 8, 3), np.uint8)
    tiles[:, :, :, 1] = np.arange(rows * columns)[:, None, None] * 20
    return tile_images(tiles, columns=columns, gap=1)


def test_labels_sit_at_the_centres_of_their_rows_and_columns():
    figure = grid_figure(_grid(2, 3), rows=2, columns=3, row_labels=("original", "tuned"),
                         column_labels=("a", "b", "c"), title="unit 3", caption="a caption")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "tuned"]
    width = _grid(2, 3).shape[1]
    assert np.allclose(ax.get_xticks(), [(j + 0.5) * width / 3 for j in range(3)])
    assert figure._suptitle.get_text() == "unit 3"


def test_unlabelled_grids_draw_without_ticks():
    figure = grid_figure(_grid(1, 2), rows=1, columns=2)
    assert len(figure.axes[0].get_xticks()) == 0 and len(figure.axes[0].get_yticks()) == 0


def test_label_counts_must_match_the_layout():
    with pytest.raises(ValueError, match="row_labels has 1 entries for 2 rows"):
        grid_figure(_grid(2, 2), rows=2, columns=2, row_labels=("only one",))
