"""AgreementPanel: the PopulationDashboard's controls for the agreement of dissection, LaViSE and tuning."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as ipw
import numpy as np

from linkviz.controllers.population import PopulationAnalysis
from linkviz.plotting.population import AGREEMENT_COLOURS, plot_embedding

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

__all__ = ["AgreementPanel", "draw_points"]


def draw_points(ax: Axes, controller: PopulationAnalysis, colour_by: str,
                previous: list[Artist]) -> tuple[list[Artist], np.ndarray]:
    """(Re)draw the tSNE points on ``ax`` coloured by ``colour_by`` ("strongest_label" or "agreement"), with their
    legend, removing the ``previous`` points; the axes' title, limits and other artists stay.

    Returns
    -------
    points : list of Artist
        The new point collections (pass them as ``previous`` next time).
    groups : ndarray of str, shape (U,)
        Each unit's colour group, in ``controller.embedding.units`` order.
    """
    for artist in previous:
        artist.remove()
    before = set(ax.collections)
    groups = controller.groups(colour_by)
    if colour_by == "agreement":
        plot_embedding(controller.embedding, ax=ax, groups=groups, colours=AGREEMENT_COLOURS, legend_title="methods")
    else:
        plot_embedding(controller.embedding, ax=ax)
    return [c for c in ax.collections if c not in before], groups


class AgreementPanel(ipw.VBox):
    """The map's colouring toggle, the units per agreement level and the list of flagged units.

    A thin view of :class:`linkviz.controllers.PopulationAnalysis` (its ``agreement``, ``flagged_options``); the
    dashboard observes :attr:`colour_by` (redraw the map) and :attr:`flagged_units` (select the unit). Without an
    agreement the panel is hidden.

    Parameters
    ----------
    controller : PopulationAnalysis
    """

    def __init__(self, controller: PopulationAnalysis) -> None:
        agreement = controller.agreement
        self.colour_by = ipw.ToggleButtons(options=[("strongest change", "strongest_label"),
                                                    ("method agreement", "agreement")], value="strongest_label",
                                           description="colour by", disabled=agreement is None,
                                           style={"button_width": "auto"})
        self.flagged_units = ipw.Select(options=controller.flagged_options(), value=None, rows=8,
                                        description="flagged", layout=ipw.Layout(width="380px"))
        counts = "" if agreement is None else ", ".join(f"{html.escape(level)}: {n}"
                                                        for level, n in agreement.counts().items())
        self.info = ipw.HTML("<b>dissection, LaViSE and tuning</b> (flagged: the methods disagree)<br>" + counts)
        super().__init__([self.colour_by, self.info, self.flagged_units],
                         layout=ipw.Layout(flex="0 1 400px", min_width="0"))
        if agreement is None:
            self.layout.display = "none"
