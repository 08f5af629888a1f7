"""The population of tuned units (the paper's Fig. 5): label sparsity, the tSNE map and the cluster map; and the
population view of method agreement (dissection, LaViSE, tuning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.plotting.paper_style import DOUBLE_COLUMN, paper_figure, paper_style
from linkviz.plotting.population import (
    AGREEMENT_COLOURS,
    clustermap_figure,
    draw_unit_ring,
    plot_concept_effects,
    plot_embedding,
    plot_label_sparsity,
)
from linkviz.quantify.method_agreement import MethodAgreement
from linkviz.quantify.population import LabelClustering, LabelVectors, UnitEmbedding

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["agreement_figure", "population_figure"]


def population_figure(vectors: LabelVectors, sparsity: pd.DataFrame, embedding: UnitEmbedding,
                      clustering: LabelClustering, *, selected: int | None = None,
                      concept: pd.DataFrame | None = None, concept_title: str = "",
                      width: float = DOUBLE_COLUMN) -> Figure:
    """Label sparsity histograms and the tSNE map above the cluster map of the units' label vectors.

    Parameters
    ----------
    vectors : LabelVectors
        The units' label vectors (:func:`linkviz.quantify.label_vectors`), U units.
    sparsity : DataFrame
        ``unit, metric, sparsity, index`` (:func:`linkviz.quantify.label_sparsity`).
    embedding : UnitEmbedding
        tSNE of the label vectors, coordinates of shape (U, 2).
    clustering : LabelClustering
        Of ``vectors`` (:func:`linkviz.quantify.cluster_label_vectors`).
    selected : int, optional
        A unit ringed in the tSNE map.
    concept : DataFrame, optional
        Rows of :func:`linkviz.quantify.find_selective_units` (``unit, effect, ci_low, ci_high, label,
        metric``): a panel of their effects beside the cluster map.
    concept_title : str
        Title of that panel.
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: sparsity histograms and tSNE (each with a legend), the cluster map's dendrogram, cluster strip,
        heat map and colour bar, then the concept's effects if given.
    """
    with paper_style():
        figure = paper_figure(width, width * 0.95)
        top, bottom = figure.subfigures(2, 1, height_ratios=(1.0, 1.5))
        sparsity_ax, embedding_ax = top.subplots(1, 2)
        plot_label_sparsity(sparsity, ax=sparsity_ax)
        sparsity_ax.set_title("")
        sparsity_ax.set_title("a  how few labels each unit changes", loc="left")
        plot_embedding(embedding, ax=embedding_ax)
        embedding_ax.set_title("b  tSNE of label vectors", loc="left")
        if selected is not None and selected in embedding.units:
            index = int(np.flatnonzero(embedding.units == selected)[0])
            draw_unit_ring(embedding_ax, tuple(embedding.coordinates[index]), selected)
        if concept is None:
            clustermap_figure(vectors, clustering, figure=bottom)
        else:
            left, right = bottom.subfigures(1, 2, width_ratios=(2.0, 1.0))
            clustermap_figure(vectors, clustering, figure=left)
            plot_concept_effects(concept, ax=right.add_subplot())
            right.suptitle(concept_title or "units selective for the concept")
    return figure


def agreement_figure(embedding: UnitEmbedding, agreement: MethodAgreement, *, selected: int | None = None,
                     max_named: int = 12, width: float = DOUBLE_COLUMN) -> Figure:
    """Do dissection, LaViSE and tuning agree? The tSNE map coloured by agreement level, flagged units ringed in
    red and named, beside the number of units at each level.

    Parameters
    ----------
    embedding : UnitEmbedding
        tSNE of the label vectors, coordinates of shape (U, 2).
    agreement : MethodAgreement
        :func:`linkviz.quantify.method_agreement.method_agreement`; units of the embedding it lacks count as "not
        enough labels".
    selected : int, optional
        A unit ringed in black.
    max_named : int
        Flagged units named beside their point, at most this many (all disagree first).
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the map (its legend counts units per level) and the bar chart of those counts.
    """
    levels = agreement.levels(embedding.units)
    flagged = set(agreement.flagged()["unit"].tolist())
    is_flagged = np.array([int(unit) in flagged for unit in embedding.units])
    with paper_style():
        figure = paper_figure(width, width * 0.42)
        map_ax, count_ax = figure.subplots(1, 2, width_ratios=(2.2, 1.0))
        plot_embedding(embedding, ax=map_ax, groups=levels, colours=AGREEMENT_COLOURS, legend_title="methods")
        map_ax.scatter(*embedding.coordinates[is_flagged].T, s=40, facecolors="none", edgecolors="#d73027",
                       linewidths=0.8)
        named = [int(u) for u in agreement.flagged()["unit"] if int(u) in set(embedding.units.tolist())][:max_named]
        for unit in named:
            xy = embedding.coordinates[int(np.flatnonzero(embedding.units == unit)[0])]
            map_ax.annotate(str(unit), xy, xytext=(3, 3), textcoords="offset points", fontsize=6, color="#d73027")
        map_ax.set_title(f"a  dissection, LaViSE and tuning ({len(flagged & set(embedding.units.tolist()))} "
                         "flagged)", loc="left")
        if selected is not None and selected in embedding.units:
            index = int(np.flatnonzero(embedding.units == selected)[0])
            draw_unit_ring(map_ax, tuple(embedding.coordinates[index]), selected)
        counts = pd.Series(levels).value_counts().reindex(list(AGREEMENT_COLOURS), fill_value=0)
        position = np.arange(len(counts))
        count_ax.barh(position, counts.to_numpy(), color=list(AGREEMENT_COLOURS.values()), height=0.7)
        count_ax.set_yticks(position, labels=list(counts.index))
        count_ax.set_ylim(len(counts) - 0.5, -0.5)
        count_ax.set_xlabel("units")
        count_ax.set_title("b  units per level", loc="left")
    return figure
