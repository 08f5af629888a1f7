"""Paper figures: one function per figure of the paper, each returning a :class:`matplotlib.figure.Figure`.

Every figure is made in the paper style (:mod:`linkviz.plotting.paper_style`: fixed font sizes, TrueType fonts,
raster images embedded unresampled in vector output), without pyplot, with labelled rows and columns, legends
and colour bars; :func:`save_figure` writes it as PDF, SVG or PNG with the same bytes for the same figure.
The controllers' results draw themselves with these (``view.figure()``), so a widget exports its paper figure.

This layer sits between :mod:`linkviz.plotting` (which it uses) and :mod:`linkviz.controllers` (which use it);
it reads core results and duck-typed views, never the controllers themselves.
"""

from linkviz.figures._common import GridLike, ImageGrid, direction_wheel
from linkviz.figures.counterfactual import counterfactual_figure
from linkviz.figures.dissection import dissection_summary_figure, unit_card_figure
from linkviz.figures.link_quality import link_quality_figure
from linkviz.figures.population import agreement_figure, population_figure
from linkviz.figures.tuning_strip import tuning_strip_figure
from linkviz.plotting.paper_style import DOUBLE_COLUMN, PAPER_RC, SINGLE_COLUMN, paper_style, save_figure

__all__ = [
    "DOUBLE_COLUMN",
    "PAPER_RC",
    "SINGLE_COLUMN",
    "GridLike",
    "ImageGrid",
    "agreement_figure",
    "counterfactual_figure",
    "direction_wheel",
    "dissection_summary_figure",
    "link_quality_figure",
    "paper_style",
    "population_figure",
    "save_figure",
    "tuning_strip_figure",
    "unit_card_figure",
]
