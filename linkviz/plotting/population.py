"""Figures of a unit population (the paper's Fig. 5): label sparsity histograms, the tSNE map, the cluster map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from linkviz.quantify.population import (
    LabelClustering,
    LabelVectors,
    Scaling,
    UnitEmbedding,
    cluster_label_vectors,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from seaborn.matrix import ClusterGrid

__all__ = ["AGREEMENT_COLOURS", "clustermap_figure", "count", "draw_unit_ring", "nonzero_columns", "plot_clustermap",
           "plot_concept_effects", "plot_embedding", "plot_label_sparsity"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` in the right number: ``"1 unit"``, ``"3 units"`` (``plural`` default ``noun + "s"``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def nonzero_columns(vectors: LabelVectors) -> np.ndarray:
    """Columns of ``vectors.matrix()`` that some unit changes: bool of shape (L * M,).

    A (label x metric) that no unit changes (all zero, e.g. a metric undefined for a part, filled with 0) says
    nothing and is left out of the cluster maps. If no column has a change, all are kept.
    """
    matrix = vectors.matrix(scaling="none")
    keep = np.any(np.nan_to_num(matrix) != 0, axis=0)
    return keep if keep.any() else np.ones(matrix.shape[1], dtype=bool)


def _hidden_note(keep: np.ndarray) -> str:
    hidden = int((~keep).sum())
    return f"; {count(hidden, 'empty column')} hidden" if hidden else ""


def _tight_layout(ax: Axes) -> None:
    """Tighten a whole figure that has no layout engine of its own (not a subfigure, not constrained)."""
    figure = ax.figure
    if hasattr(figure, "tight_layout") and figure.get_layout_engine() is None:
        figure.tight_layout()


def plot_clustermap(vectors: LabelVectors, *, method: str = "ward", scaling: Scaling = "metric",
                    n_clusters: int | None = None, **clustermap_kwargs: Any) -> ClusterGrid:
    """Seaborn cluster map of the label vectors: units as rows (clustered), (label x metric) as columns.

    Columns that no unit changes are left out (:func:`nonzero_columns`); the colour bar sits in the empty corner
    above the row dendrogram (seaborn's default position overlaps the dendrogram) unless ``cbar_pos`` is given.

    Parameters
    ----------
    vectors : LabelVectors
    method, scaling
        As in :func:`cluster_label_vectors`; the row dendrogram is that clustering.
    n_clusters : int, optional
        If given, rows get a colour strip of the flat clusters.
    **clustermap_kwargs
        Passed to :func:`seaborn.clustermap` (defaults: ``cmap="vlag"``, ``center=0``, ``col_cluster=False``).

    Returns
    -------
    seaborn.matrix.ClusterGrid
        Its ``figure`` is the figure; ``dendrogram_row.reordered_ind`` maps rows back to ``vectors.units``.
    """
    import seaborn as sns

    clustering = cluster_label_vectors(vectors, n_clusters=n_clusters or 1, method=method, scaling=scaling)
    keep = nonzero_columns(vectors)
    data = pd.DataFrame(vectors.matrix(scaling=scaling)[:, keep], index=pd.Index(vectors.units, name="unit"),
                        columns=np.asarray(vectors.column_names, dtype=object)[keep])
    options: dict[str, Any] = {"cmap": "vlag", "center": 0, "col_cluster": False, "figsize": (8, 8)}
    if n_clusters is not None:
        palette = sns.color_palette("tab10", n_colors=max(n_clusters, 1))
        options["row_colors"] = pd.Series([palette[(c - 1) % len(palette)] for c in clustering.clusters],
                                          index=data.index, name="cluster")
    options.update(clustermap_kwargs)
    grid = sns.clustermap(data, row_linkage=clustering.linkage, **options)
    if grid.ax_cbar is not None and "cbar_pos" not in clustermap_kwargs:
        _colorbar_above_the_dendrogram(grid)
    return grid


def _colorbar_above_the_dendrogram(grid: ClusterGrid) -> None:
    """Move the colour bar into the corner above the row dendrogram and left of the column dendrogram's row."""
    dendrogram, top = grid.ax_row_dendrogram.get_position(), grid.ax_col_dendrogram.get_position()
    corner = top.y1 - max(top.y0, dendrogram.y1)  # height of the free corner
    grid.ax_cbar.set_position([dendrogram.x0 + 0.05 * dendrogram.width, top.y1 - 0.9 * corner,
                               0.1 * dendrogram.width, 0.8 * corner])


def plot_label_sparsity(sparsity: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Histograms of label sparsity, one outline per metric (the rows of :func:`linkviz.quantify.label_sparsity`).

    Parameters
    ----------
    sparsity : DataFrame
        ``unit, metric, sparsity, index``; NaN rows (units that change no label) are left out and counted in
        the legend.
    ax : matplotlib Axes, optional
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 3.6))
    bins = np.linspace(0.0, 1.0, 21)
    for metric, group in sparsity.groupby("metric", sort=False):
        values = group["sparsity"].dropna().to_numpy()
        missing = len(group) - len(values)
        ax.hist(values, bins=bins, histtype="step", linewidth=1.5,
                label=f"{metric}" + (f" ({missing} unchanged)" if missing else ""))
    index = str(sparsity["index"].iloc[0]) if len(sparsity) else ""
    ax.set(xlabel=f"label sparsity ({index.replace('_', '-')}; 1 = one label)", ylabel="units", xlim=(0, 1))
    ax.set_title("how few labels each unit changes", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    _tight_layout(ax)
    return ax.figure


#: Colours of the method-agreement levels (:data:`linkviz.quantify.method_agreement.AGREEMENT_LEVELS`), from
#: agreement (green) to disagreement (red), missing labels grey.
AGREEMENT_COLOURS: dict[str, str] = {"all agree": "#1a9850", "two agree": "#fdae61", "all disagree": "#d73027",
                                     "not enough labels": "#bdbdbd"}


def plot_embedding(embedding: UnitEmbedding, *, ax: Axes | None = None, groups: np.ndarray | None = None,
                   colours: Mapping[str, str] | None = None, legend_title: str = "strongest change") -> Figure:
    """Scatter of a tSNE embedding, coloured by group (default: each unit's strongest label), legend outside.

    Parameters
    ----------
    embedding : UnitEmbedding
        U units.
    ax : matplotlib Axes, optional
        Leave room on its right for the legend (a constrained layout does).
    groups : ndarray of str, shape (U,), optional
        Each unit's group (e.g. its method-agreement level); default ``embedding.strongest_label``.
    colours : mapping of str to colour, optional
        Colour of each group, in legend order (e.g. :data:`AGREEMENT_COLOURS`); groups it lacks are not drawn.
        Default: tab10/tab20 in order of appearance. With it, the legend counts the units of each group.
    legend_title : str
    """
    from matplotlib import colormaps

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 4.0))
    groups = embedding.strongest_label if groups is None else np.asarray(groups, dtype=object)
    if len(groups) != len(embedding.units):
        raise ValueError(f"groups must have one entry per unit ({len(embedding.units)}); got {len(groups)}")
    if colours is None:
        names = list(pd.unique(groups))
        cycle = colormaps["tab20" if len(names) > 10 else "tab10"]
        colours, counted = {name: cycle(k % cycle.N) for k, name in enumerate(names)}, False
    else:
        counted = True
    for name, colour in colours.items():
        chosen = groups == name
        if not chosen.any():
            continue
        ax.scatter(*embedding.coordinates[chosen].T, s=8, color=colour,
                   label=f"{name} ({int(chosen.sum())})" if counted else str(name))
    ax.set(xlabel="tSNE 1", ylabel="tSNE 2", xticks=[], yticks=[])
    ax.legend(title=legend_title, fontsize=7, title_fontsize=7, frameon=False, markerscale=2,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    _tight_layout(ax)
    return ax.figure


def clustermap_figure(vectors: LabelVectors, clustering: LabelClustering, *, figure: Figure | SubFigure | None = None,
                      max_unit_labels: int = 60) -> Figure | SubFigure:
    """A cluster map drawn with matplotlib alone: row dendrogram, cluster strip, heat map of the label vectors.

    The pyplot-free counterpart of :func:`plot_clustermap` (no seaborn, no pyplot, so it is safe on any thread
    and never touches the backend): rows are units in dendrogram order, columns are (label x metric); columns
    that no unit changes are left out (:func:`nonzero_columns`) and counted in the title.

    Parameters
    ----------
    vectors : LabelVectors
    clustering : LabelClustering
        Of ``vectors`` (:func:`linkviz.quantify.cluster_label_vectors`); its ``scaling`` scales the heat map.
    figure : Figure or SubFigure, optional
        Where to draw (default: a new 7 x 6 inch :class:`~matplotlib.figure.Figure`).
    max_unit_labels : int
        Units are named on the rows only up to this many units.

    Returns
    -------
    Figure or SubFigure
        ``figure``; its axes are the dendrogram, the cluster strip, the heat map and the colour bar.
    """
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from scipy.cluster.hierarchy import dendrogram

    if figure is None:
        figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    n_units = len(vectors.units)
    tree = dendrogram(clustering.linkage, no_plot=True)
    order = np.asarray(tree["leaves"])
    keep = nonzero_columns(vectors)
    data = vectors.matrix(scaling=clustering.scaling)[order][:, keep]
    layout = figure.add_gridspec(1, 4, width_ratios=(1.4, 0.2, 6.0, 0.2))
    ax_tree, ax_strip, ax_heat, ax_bar = (figure.add_subplot(layout[0, k]) for k in range(4))
    segments = [np.column_stack([d, i]) for i, d in zip(tree["icoord"], tree["dcoord"])]
    ax_tree.add_collection(LineCollection(segments, colors="0.3", linewidths=0.8))
    height = max(float(np.max(tree["dcoord"])), 1e-12)
    ax_tree.set(xlim=(1.05 * height, 0.0), ylim=(10.0 * n_units, 0.0))
    ax_tree.axis("off")
    palette = colormaps["tab10"]
    strip = np.array([palette((cluster - 1) % palette.N)[:3] for cluster in clustering.clusters[order]])
    ax_strip.imshow(strip[:, None, :], aspect="auto", interpolation="nearest")
    ax_strip.set(xticks=[0], yticks=[])
    ax_strip.set_xticklabels(["cluster"], rotation=90, fontsize=7)
    limit = float(np.abs(data).max()) or 1.0
    image = ax_heat.imshow(data, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax_heat.set_xticks(np.arange(data.shape[1]), labels=np.asarray(vectors.column_names)[keep], rotation=90,
                       fontsize=7)
    ax_heat.yaxis.tick_right()
    if n_units <= max_unit_labels:
        ax_heat.set_yticks(np.arange(n_units), labels=[str(unit) for unit in vectors.units[order]], fontsize=6)
    else:
        ax_heat.set_yticks([])
    ax_heat.set_ylabel("unit")
    ax_heat.yaxis.set_label_position("right")
    figure.colorbar(image, cax=ax_bar, label=f"mean change ({clustering.scaling} scaling)")
    n_clusters = len(np.unique(clustering.clusters))
    figure.suptitle(f"label vectors of {count(n_units, 'unit')} in {count(n_clusters, 'cluster')} "
                    f"({clustering.method} linkage{_hidden_note(keep)})", fontsize=9)
    return figure


def plot_concept_effects(found: pd.DataFrame, *, ax: Axes) -> Axes:
    """Effect of each unit the concept finder found, with its confidence interval, strongest on top.

    Parameters
    ----------
    found : DataFrame
        Rows of :func:`linkviz.quantify.find_selective_units` (``unit, label, metric, effect, ci_low, ci_high``).
    ax : matplotlib Axes
    """
    if len(found) == 0:
        ax.text(0.5, 0.5, "no unit changes it significantly in this direction", ha="center", va="center",
                fontsize=8, transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    position = np.arange(len(found))
    effect = found["effect"].to_numpy(dtype=float)
    error = np.abs(np.vstack([effect - found["ci_low"].to_numpy(dtype=float),
                              found["ci_high"].to_numpy(dtype=float) - effect]))
    ax.barh(position, effect, xerr=error, color="#4c72b0", ecolor="0.2", capsize=2, height=0.7)
    ax.set_yticks(position, labels=[f"unit {unit}" for unit in found["unit"]], fontsize=7)
    ax.set_ylim(len(found) - 0.5, -0.5)
    ax.axvline(0.0, color="0.5", linewidth=0.8)
    ax.set_xlabel(f"effect on {found['metric'].iloc[0]} of {found['label'].iloc[0]} (with CI)")
    return ax


def draw_unit_ring(ax: Axes, xy: tuple[float, float] | None, unit: int | None) -> tuple:
    """A ring and a label around one tSNE point (hidden while ``xy`` is None); returns both artists."""
    x, y = (np.nan, np.nan) if xy is None else xy
    ring = ax.scatter([x], [y], s=140, facecolors="none", edgecolors="black", linewidths=1.5)
    label = ax.annotate("" if unit is None else f"unit {unit}", (0.0, 0.0) if xy is None else (x, y),
                        xytext=(6, 6), textcoords="offset points", fontsize=8)
    return ring, label
