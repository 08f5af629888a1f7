"""Geometry of the population figures: no empty columns in the cluster maps, a colour bar clear of the dendrogram,
the tSNE legend outside its points."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fake_population import planted_table
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from linkviz.plotting import plot_clustermap, plot_embedding
from linkviz.plotting.population import clustermap_figure, count, nonzero_columns
from linkviz.quantify import ChangeTable, cluster_label_vectors, label_vectors, tsne_embedding

UNITS = np.arange(100, 118)


@pytest.fixture(scope="module")
def vectors():
    """The planted table plus a label "tail" whose changes are undefined for every seed (filled with 0)."""
    frame = planted_table(UNITS).frame
    empty = frame[frame["label"] == "ear"].assign(label="tail", change=np.nan)
    return label_vectors(ChangeTable(pd.concat([frame, empty], ignore_index=True)))


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _renderer(figure):
    """Lay out and draw a pyplot-free figure on an Agg canvas; its renderer."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def test_count_pluralises():
    assert (count(1, "unit"), count(0, "unit"), count(3, "unit")) == ("1 unit", "0 units", "3 units")
    assert count(2, "empty column") == "2 empty columns"


def test_nonzero_columns(vectors):
    assert vectors.column_names[-2:] == ["tail/area", "tail/luminance"]
    np.testing.assert_array_equal(nonzero_columns(vectors), [True] * 6 + [False] * 2)
    nothing = label_vectors(planted_table(UNITS[:3]).frame.assign(change=0.0))
    assert nonzero_columns(nothing).all()  # nothing changes: keep every column rather than none


def test_clustermap_figure_drops_empty_columns_and_keeps_its_colour_bar_clear(vectors):
    figure = clustermap_figure(vectors, cluster_label_vectors(vectors, n_clusters=3))
    tree, strip, heat, bar = figure.axes
    data = heat.images[0].get_array()
    assert data.shape == (len(UNITS), 6) and np.all(np.any(data != 0, axis=0))
    assert [t.get_text() for t in heat.get_xticklabels()] == vectors.column_names[:6]
    assert "18 units in 3 clusters" in figure._suptitle.get_text()
    assert "2 empty columns hidden" in figure._suptitle.get_text()
    renderer = _renderer(figure)
    colour_bar = bar.get_tightbbox(renderer)  # with its ticks and label
    for other in (tree, strip, heat):
        assert not _overlap(colour_bar, other.get_window_extent(renderer))
    assert not _overlap(tree.get_window_extent(renderer), heat.get_window_extent(renderer))
    one = clustermap_figure(vectors, cluster_label_vectors(vectors, n_clusters=1))
    assert "in 1 cluster (" in one._suptitle.get_text()


def test_seaborn_clustermap_drops_empty_columns_and_keeps_its_colour_bar_off_the_dendrogram(vectors):
    grid = plot_clustermap(vectors, n_clusters=3, figsize=(9, 6))
    try:
        assert list(grid.data2d.columns) == vectors.column_names[:6]
        assert np.all(np.any(grid.data2d.to_numpy() != 0, axis=0))
        grid.figure.canvas.draw()
        renderer = grid.figure.canvas.get_renderer()
        colour_bar = grid.ax_cbar.get_tightbbox(renderer)
        for other in (grid.ax_row_dendrogram, grid.ax_row_colors, grid.ax_heatmap):
            assert not _overlap(colour_bar, other.get_window_extent(renderer))
        assert colour_bar.x0 >= 0 and colour_bar.y1 <= grid.figure.bbox.y1
    finally:
        plt.close(grid.figure)


def test_embedding_legend_sits_outside_the_points(vectors):
    figure = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = figure.add_subplot()
    plot_embedding(tsne_embedding(vectors, seed=0, perplexity=4, max_iter=250), ax=ax)
    renderer = _renderer(figure)
    legend = ax.get_legend().get_window_extent(renderer)
    assert not _overlap(legend, ax.get_window_extent(renderer)) and legend.x1 <= figure.bbox.x1
