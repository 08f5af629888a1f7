"""DissectionBrowser: unit cards of a Network Dissection (label, category, IoU, top images with masks), the bar graph,
sort / filter / search, and a layer switcher."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass

import ipywidgets as ipw
import numpy as np
import pandas as pd
from linkviz.widgets.snapshot import with_snapshot

from linkviz.dissection.broden import ProbeDataset
from linkviz.dissection.dissect import DissectionResult
from linkviz.dissection.report import display_label, summary_line, summary_table, unit_images
from linkviz.plotting.images import encode_image, tile_images

__all__ = ["DissectionBrowser", "filter_units"]

_TILE_PIXELS = 64
_ORDERS = (("by label (bar graph order)", "label"), ("by IoU", "iou"), ("by unit", "unit"))
_ALL, _DETECTORS = "all units", "detectors"
_CARD_STYLE = "border:1px solid #ccc;border-radius:4px;padding:4px 6px;margin:4px 0;"


@dataclass(frozen=True)
class _Page:
    layer: str
    units: tuple[int, ...]
    matching: int
    cards: str


def filter_units(table: pd.DataFrame, *, show: str = _ALL, search: str = "") -> pd.DataFrame:
    """Rows of a :func:`~linkviz.dissection.report.summary_table` that a browser shows.

    Parameters
    ----------
    table : DataFrame
        Columns ``unit, label, category, is_detector`` at least, in display order.
    show : str
        ``"all units"``, ``"detectors"``, or a category name (its detector units).
    search : str
        Keep units whose label contains this text (case-insensitive, Broden suffixes and underscores ignored),
        or, for a whole number, that unit; comma-separated alternatives are OR-ed.

    Returns
    -------
    DataFrame
        The kept rows, in the same order.
    """
    keep = np.ones(len(table), bool)
    if show == _DETECTORS:
        keep &= table["is_detector"].to_numpy(bool)
    elif show != _ALL:
        keep &= table["is_detector"].to_numpy(bool) & (table["category"] == show).to_numpy()
    terms = [term.strip().lower() for term in search.split(",") if term.strip()]
    if terms:
        labels = [display_label(str(name)).lower() for name in table["label"]]
        units = table["unit"].to_numpy()
        hit = np.zeros(len(table), bool)
        for term in terms:
            hit |= units == int(term) if term.isdigit() else np.array([term in label for label in labels])
        keep &= hit
    return table[keep]


class DissectionBrowser(ipw.VBox):
    """Browse the units of one or more dissected layers: a bar graph, a summary line and a page of unit cards.

    Each card shows a unit's label, category and IoU and its top probe images with the unit's mask
    (:func:`linkviz.dissection.report.unit_images`, dimmed outside the mask and outlined). Everything is
    computed from the results, without running a model: a page costs ``per_page`` small upsamplings, the bar
    graph one matplotlib figure per layer (cached).

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

    Raises
    ------
    ValueError
        For no results, a result without top images, or a bad ``k``, ``per_page`` or ``order``.
    """

    def __init__(self, results: DissectionResult | Mapping[str, DissectionResult], probe: ProbeDataset, *,
                 k: int = 5, per_page: int = 8, order: str = "label") -> None:
        results = {results.layer: results} if isinstance(results, DissectionResult) else dict(results)
        if not results:
            raise ValueError("pass at least one DissectionResult")
        if k < 1 or per_page < 1:
            raise ValueError(f"k and per_page must be positive, got {k} and {per_page}")
        if order not in dict(_ORDERS).values():
            raise ValueError(f"order must be 'label', 'iou' or 'unit', got {order!r}")
        for name, result in results.items():
            if result.top_images is None:
                raise ValueError(f"the dissection {name!r} kept no top images; run dissect(..., top_k=10)")
        self.results, self.probe, self.k, self.per_page = results, probe, int(k), int(per_page)
        self._bars: dict[str, bytes] = {}
        self._strips: dict[tuple[str, int], str] = {}
        self._holding = False

        first = next(iter(results))
        self.layer = ipw.Dropdown(options=list(results), value=first, description="layer")
        self.order = ipw.Dropdown(options=_ORDERS, value=order, description="sort")
        self.show = ipw.Dropdown(description="show")
        self.search = ipw.Text(placeholder="label or unit, e.g. sky, 12", description="search",
                               continuous_update=False)
        self.page = ipw.BoundedIntText(value=0, min=0, max=0, description="page")
        self.bars = ipw.Image(format="png")
        self.summary = ipw.HTML()
        self.cards = ipw.HTML()
        self._set_layer(first)
        for control in (self.order, self.show, self.search):
            control.observe(self._on_filter, names="value")
        self.page.observe(self._on_page, names="value")
        self.layer.observe(self._on_layer, names="value")
        super().__init__([ipw.HBox([self.layer, self.order, self.show]), ipw.HBox([self.search, self.page]),
                          self.summary, self.bars, self.cards])
        self._refresh()

    @property
    def result(self) -> DissectionResult:
        """The dissection of the selected layer."""
        return self.results[self.layer.value]

    # --- controls ---

    def _set_layer(self, name: str) -> None:
        categories = list(self.results[name].categories)
        self._quiet(self.show, "options", [_ALL, _DETECTORS, *categories])
        self._quiet(self.show, "value", _ALL)
        self.bars.value = self._bar_graph(name)

    def _quiet(self, control: ipw.Widget, trait: str, value) -> None:
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

    # --- state -> traits ---

    def matching(self) -> pd.DataFrame:
        """The summary table of the selected layer, sorted and filtered as the controls say."""
        table = summary_table(self.result, order=self.order.value)
        return filter_units(table, show=self.show.value or _ALL, search=self.search.value)

    def _refresh(self) -> None:
        """Filters changed: back to the first page."""
        self._matching = self.matching()
        pages = max(1, -(-len(self._matching) // self.per_page))
        self._quiet(self.page, "max", pages - 1)
        self._quiet(self.page, "value", 0)
        self._render_page()

    def _render_page(self) -> None:
        result, name = self.result, self.layer.value
        first = int(self.page.value) * self.per_page
        rows = self._matching.iloc[first:first + self.per_page]
        self.shown = _Page(name, tuple(int(u) for u in rows["unit"]), len(self._matching),
                           "".join(self._card(name, row) for row in rows.itertuples(index=False)))
        pages = self.page.max + 1
        self.summary.value = (f"<b>{html.escape(name)}</b>: {html.escape(summary_line(result))}. "
                              f"{len(self._matching)} units match; page {self.page.value + 1} of {pages}.")
        self.cards.value = self.shown.cards or "<i>no unit matches</i>"

    def _card(self, name: str, row) -> str:
        label = "none" if row.label == "none" else display_label(str(row.label))
        dim = "" if row.is_detector else "opacity:0.6;"
        dead = " &middot; <i>dead</i>" if row.dead else ""
        return (f'<div style="{_CARD_STYLE}{dim}" data-unit="{row.unit}">'
                f"<b>{html.escape(label)}</b> &middot; unit {row.unit} &middot; {html.escape(str(row.category))} "
                f"&middot; IoU {row.iou:.3f}{dead}<br>"
                f'<img alt="top images of unit {row.unit}" src="{self._strip(name, int(row.unit))}" '
                f'style="image-rendering:pixelated"></div>')

    def _strip(self, name: str, unit: int) -> str:
        key = (name, unit)
        if key not in self._strips:
            shown = unit_images(self.results[name], self.probe, unit, k=self.k).overlays()
            zoom = max(1, _TILE_PIXELS // shown.shape[1])
            png = encode_image(tile_images(shown, columns=len(shown), zoom=zoom, gap=1), format="png")
            self._strips[key] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        return self._strips[key]

    def _bar_graph(self, name: str) -> bytes:
        if name not in self._bars:
            self._bars[name] = _figure_png(self.results[name])
        return self._bars[name]

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot (bar graph, summary line and the shown cards)."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.bars, self.summary.value, self.cards.value)


def _figure_png(result: DissectionResult) -> bytes:
    """The bar graph of detectors per concept as PNG bytes (a pyplot-free figure: nothing shows twice)."""
    import io

    from matplotlib.figure import Figure

    from linkviz.plotting.dissection_figures import plot_detectors_per_concept

    bars = len(result.detectors_per_concept())
    figure = Figure(figsize=(max(3.0, 0.28 * bars + 1.2), 2.8))
    plot_detectors_per_concept(result, ax=figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
