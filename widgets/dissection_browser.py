"""DissectionBrowser: unit cards of a Network Dissection (label, category, IoU, top images with masks), the bar graph,
sort / filter / search, and a layer switcher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as ipw
import pandas as pd

from linkviz.controllers.dissection_browsing import (
    ALL_UNITS,
    ORDERS,
    DissectionBrowsing,
    DissectionPage,
)
from linkviz.dissection.dissect import DissectionResult
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.widgets.base import ViewWidget

__all__ = ["DissectionBrowser"]


class DissectionBrowser(ViewWidget):
    """Browse the units of one or more dissected layers: a bar graph, a summary line and a page of unit cards.

    A thin view over :class:`linkviz.controllers.DissectionBrowsing`: each card shows a unit's label, category
    and IoU and its top probe images with the unit's mask (:func:`linkviz.dissection.report.unit_images`, dimmed
    outside the mask and outlined). Everything is computed from the results, without running a model: a page
    costs ``per_page`` small upsamplings, the bar graph one matplotlib figure per layer (cached).
    :attr:`shown` is the :class:`~linkviz.controllers.DissectionPage` on screen (:meth:`export` writes its top
    images as a figure and its table as CSV).

    Parameters
    ----------
    results : DissectionResult or mapping of str to DissectionResult
        One dissection, or several (e.g. one per layer) keyed by the name the layer switcher shows. Each needs
        top images (``dissect(..., top_k > 0)``).
    probe : ProbeDataset
        The probe the results were computed on.
    k : int
        Top images per card.
    per_page : int
        Cards per page.
    order : {"label", "iou", "unit"}
        Initial card order.
    causal_scores : DataFrame or mapping of str to DataFrame, optional
        Causal scores of unit labels (:func:`linkviz.labels.causal_scores`), one table or one per result name;
        each card shows its unit's score with the interval over seeds.

    Raises
    ------
    ValueError
        For no results, a result without top images, or a bad ``k``, ``per_page`` or ``order``.
    """

    shown: DissectionPage

    def __init__(self, results: DissectionResult | Mapping[str, DissectionResult], probe: ProbeDataset, *,
                 k: int = 5, per_page: int = 8, order: str = "label",
                 causal_scores: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None) -> None:
        if order not in dict(ORDERS).values():
            raise ValueError(f"order must be 'label', 'iou' or 'unit', got {order!r}")
        self.controller = DissectionBrowsing(results, probe, k=k, per_page=per_page, causal_scores=causal_scores)
        self._holding = False
        first = self.controller.layers[0]
        self.layer = ipw.Dropdown(options=list(self.controller.layers), value=first, description="layer")
        self.order = ipw.Dropdown(options=ORDERS, value=order, description="sort")
        self.show = ipw.Dropdown(description="show")
        self.search = ipw.Text(placeholder="label or unit, e.g. sky, 12", description="search",
                               continuous_update=False)
        self.page = ipw.BoundedIntText(value=0, min=0, max=0, description="page")
        self._init_view(name="DissectionBrowser", image_format="png")
        self.bars, self.summary, self.cards = self.image, self.label, ipw.HTML()
        self._set_layer(first)
        for control in (self.order, self.show, self.search):
            control.observe(self._on_filter, names="value")
        self.page.observe(self._on_page, names="value")
        self.layer.observe(self._on_layer, names="value")
        super().__init__([ipw.HBox([self.layer, self.order, self.show]), ipw.HBox([self.search, self.page]),
                          self.summary, self.bars, self.cards, self.error, self._export_bar()])
        self._refresh()

    @property
    def results(self) -> dict[str, DissectionResult]:
        return self.controller.results

    @property
    def result(self) -> DissectionResult:
        """The dissection of the selected layer."""
        return self.controller.results[self.layer.value]

    def matching(self) -> pd.DataFrame:
        """The summary table of the selected layer, sorted and filtered as the controls say."""
        return self.controller.matching(self.layer.value, **self._filters())

    # --- controls ---

    def _filters(self) -> dict[str, str]:
        return {"order": self.order.value, "show": self.show.value or ALL_UNITS, "search": self.search.value}

    def _set_layer(self, name: str) -> None:
        self._quiet(self.show, "options", self.controller.show_options(name))
        self._quiet(self.show, "value", ALL_UNITS)
        self.bars.value = self.controller.bar_png(name)

    def _quiet(self, control: ipw.Widget, trait: str, value: Any) -> None:
        """Set a trait without triggering a refresh (the caller refreshes once)."""
        self._holding = True
        try:
            setattr(control, trait, value)
        finally:
            self._holding = False

    def _on_layer(self, change: dict) -> None:
        self._set_layer(change["new"])
        self._refresh()

    def _on_filter(self, change: dict) -> None:
        if not self._holding:
            self._refresh()

    def _on_page(self, change: dict) -> None:
        if not self._holding:
            self._render_page()

    def _refresh(self) -> None:
        """Filters changed: back to the first page."""
        self._quiet(self.page, "value", 0)
        self._render_page()

    def _render_page(self) -> None:
        self._show(self.controller.compute(self.layer.value, page=int(self.page.value), **self._filters()))

    # --- state -> traits ---

    def _show(self, view: DissectionPage) -> None:
        self.shown = view
        self._quiet(self.page, "max", view.pages - 1)
        self.summary.value = view.caption_html
        self.cards.value = view.cards_html or "<i>no unit matches</i>"
        self.error.value = ""

    def _snapshot_parts(self) -> Sequence[str]:
        """The summary line and the shown cards under the bar graph."""
        return (self.summary.value, self.cards.value, self.error.value)
