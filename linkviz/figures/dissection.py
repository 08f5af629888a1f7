"""Network Dissection for papers: a layer's summary (detectors per concept, IoU of every unit) and one unit's card
(its top images masked where it fires, with what Network Dissection, LaViSE and Linking in Style say)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.dissection.dissect import DETECTOR_IOU, DissectionResult
from linkviz.dissection.report import UnitImages, display_label, summary_line
from linkviz.figures._common import GridLike, ImageGrid, draw_grid, grid_aspect, text_panel
from linkviz.plotting.dissection_figures import plot_detectors_per_concept
from linkviz.plotting.paper_style import DOUBLE_COLUMN, paper_figure, paper_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["dissection_summary_figure", "unit_card_figure"]


def _iou_panel(ax: Axes, result: DissectionResult) -> None:
    """Histogram of each unit's best IoU, stacked by the category of its best concept, and the threshold."""
    from matplotlib import colormaps

    frame = result.to_frame()
    categories = [c for c in (*result.categories, "none") if (frame["category"] == c).any()]
    top = max(float(frame["iou"].max()), result.detector_threshold) * 1.05 or 1.0
    bins = np.linspace(0.0, top, 21)
    palette = colormaps["tab10"]
    colours = [palette(i % 10) if c != "none" else (0.6, 0.6, 0.6, 1.0) for i, c in enumerate(categories)]
    ax.hist([frame.loc[frame["category"] == c, "iou"].to_numpy() for c in categories], bins=bins, stacked=True,
            color=colours, label=categories)
    ax.axvline(result.detector_threshold, color="black", linestyle="--", linewidth=0.8,
               label=f"detector (IoU > {result.detector_threshold:g})")
    ax.set(xlabel="IoU of the unit's best concept", ylabel="units")
    ax.legend(loc="best")
    ax.set_title("b  IoU of every unit", loc="left")


def dissection_summary_figure(result: DissectionResult, *, max_concepts: int | None = 40, title: str | None = None,
                              width: float = DOUBLE_COLUMN) -> Figure:
    """A layer's Network Dissection at a glance: detector units per concept, and the IoU of every unit.

    Parameters
    ----------
    result : DissectionResult
        :func:`linkviz.dissection.dissect` of one layer (U units).
    max_concepts : int, optional
        Bars shown (the concepts with most detectors, in category order); None shows all.
    title : str, optional
        Default: the layer and :func:`linkviz.dissection.report.summary_line`.
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: the bar graph (legend: categories) and the IoU histogram (legend: categories and the threshold).
    """
    with paper_style():
        figure = paper_figure(width, 2.6)
        bars, histogram = figure.subplots(1, 2, width_ratios=(2.0, 1.0))
        plot_detectors_per_concept(result, ax=bars, max_concepts=max_concepts)
        bars.set_ylim(0, bars.get_ylim()[1] * 1.2)  # room for the legend of categories
        bars.set_title("a  detector units per concept", loc="left")
        _iou_panel(histogram, result)
        figure.suptitle(f"{result.layer}: {summary_line(result)}" if title is None else title)
    return figure


def _card_grid(images: UnitImages | GridLike, unit: int) -> GridLike:
    if isinstance(images, UnitImages):
        return ImageGrid.from_stack(images.overlays()[None], row_labels=(f"unit {unit}",),
                                    column_labels=[f"image {i}" for i in images.indices])
    return images


def _words_panel(ax: Axes, words: pd.DataFrame | None) -> None:
    if words is None or not len(words):
        text_panel(ax, "LaViSE", ["no explanation given" if words is None else "no words for this unit"])
        return
    shown = words.sort_values("votes", ascending=False)
    positions = np.arange(len(shown))
    ax.barh(positions, shown["votes"].to_numpy(dtype=float), color="#8172b2", height=0.7, label="votes")
    ax.set_yticks(positions, labels=[str(word) for word in shown["word"]])
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlabel("votes")
    ax.legend(loc="lower right")
    ax.set_title("LaViSE words", loc="left", fontweight="bold")


def unit_card_figure(images: UnitImages | GridLike, *, unit: int, label: str, category: str = "",
                     iou: float = math.nan, is_detector: bool | None = None,
                     detector_threshold: float = DETECTOR_IOU, words: pd.DataFrame | None = None,
                     effect: float | None = None, effect_rank: int | None = None, n_units: int | None = None,
                     layer: str = "", title: str | None = None, width: float = DOUBLE_COLUMN) -> Figure:
    """One unit seen three ways: its top probe images masked where it fires, and what each method says.

    Parameters
    ----------
    images : UnitImages or GridLike
        :func:`linkviz.dissection.report.unit_images` of the unit (k images, drawn as their overlays), or an
        already tiled grid with its labels (e.g. a :class:`~linkviz.controllers.UnitCardView`).
    unit : int
    label, category : str
        The unit's Network Dissection label ("none" below every concept) and its category.
    iou : float
        Its IoU with that label.
    is_detector : bool, optional
        Default ``iou > detector_threshold``.
    detector_threshold : float
    words : DataFrame, optional
        LaViSE words of the unit: ``word, votes`` (e.g. ``rank, word, votes``); None if LaViSE was not run.
    effect, effect_rank, n_units : optional
        Linking in Style: effect size on the generator's latent (:func:`linkviz.tuning.effect_sizes`) and its
        rank (1 = strongest) among ``n_units``.
    layer : str
    title : str, optional
        Default ``"unit 3: sky"``.
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: the images (``axes[0]``; y tick label "unit n", x tick labels the probe images), the IoU bar
        (legend: the detector threshold), the LaViSE words (bars of votes with a legend, or a note) and the
        Linking in Style text.
    """
    grid = _card_grid(images, unit)
    detector = bool(iou > detector_threshold) if is_detector is None else bool(is_detector)
    image_height = min(grid_aspect(grid) * (width - 0.6), 2.5) + 0.35
    with paper_style():
        figure = paper_figure(width, image_height + 1.5)
        layout = figure.add_gridspec(2, 3, height_ratios=(image_height, 1.5))
        draw_grid(figure.add_subplot(layout[0, :]), grid)
        ax = figure.add_subplot(layout[1, 0])
        ax.barh([0], [0.0 if math.isnan(iou) else iou], color="#4c72b0" if detector else "0.6", height=0.4)
        ax.axvline(detector_threshold, color="black", linestyle="--", linewidth=0.8,
                   label=f"detector threshold {detector_threshold:g}")
        ax.set(yticks=[0], yticklabels=[display_label(label)], xlabel="IoU", ylim=(-0.4, 1.0),
               xlim=(0.0, max(0.0 if math.isnan(iou) else iou, detector_threshold) * 1.4))
        ax.legend(loc="upper right")
        where = f" ({layer})" if layer else ""
        verdict = "detector" if detector else "not a detector"
        ax.set_title(f"Network Dissection{where}\n{category or 'no category'}, {verdict}", loc="left",
                     fontweight="bold")
        _words_panel(figure.add_subplot(layout[1, 1]), words)
        lines = ["no link given"] if effect is None else [f"effect size {effect:.3g}"] + (
            [f"rank {effect_rank} of {n_units}" if n_units else f"rank {effect_rank}"] if effect_rank else [])
        text_panel(figure.add_subplot(layout[1, 2]), "Linking in Style", lines)
        figure.suptitle(f"unit {unit}: {display_label(label)}" if title is None else title)
    return figure
