"""DissectionBrowsing: pages of unit cards of one or more Network Dissections, sorted, filtered and searched."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.controllers.view import GridView
from linkviz.dissection.dissect import DissectionResult
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.controllers.unit_describing import causal_text
from linkviz.dissection.report import (
    CAUSAL_COLUMNS,
    UnitImages,
    display_label,
    summary_line,
    summary_table,
    unit_images,
    with_causal_scores,
)
from linkviz.images import encode_image, tile_images
from linkviz.plotting.dissection_figures import plot_detectors_per_concept

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ALL_UNITS", "DETECTORS", "ORDERS", "DissectionBrowsing", "DissectionPage", "filter_units"]

TILE_PIXELS = 64
ORDERS = (("by label (bar graph order)", "label"), ("by IoU", "iou"), ("by unit", "unit"))
ALL_UNITS, DETECTORS = "all units", "detectors"
_CARD_STYLE = "border:1px solid #ccc;border-radius:4px;padding:4px 6px;margin:4px 0;"
_UNIT_COLUMNS = ["unit", "label", "category", "iou", "is_detector", "dead", *CAUSAL_COLUMNS]


def filter_units(table: pd.DataFrame, *, show: str = ALL_UNITS, search: str = "") -> pd.DataFrame:
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
    if show == DETECTORS:
        keep &= table["is_detector"].to_numpy(bool)
    elif show != ALL_UNITS:
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


@dataclass(frozen=True, eq=False, kw_only=True)
class DissectionPage(GridView):
    """One page of unit cards: each unit's top probe images (masked where it fires) in a row of :attr:`grid`.

    Attributes
    ----------
    layer : str
        Name of the dissection shown.
    units : tuple of int
        The units on the page, in card order (one grid row each).
    matching : int
        How many units pass the filters.
    page, pages : int
        This page (from 0) and the number of pages.
    table : DataFrame
        The page's rows of :func:`~linkviz.dissection.report.summary_table`, with the causal score of each unit's
        label (``causal_score, causal_ci_low, causal_ci_high``, NaN where not scored).
    images : ndarray of int64, shape (len(units), k)
        Probe index of each top image.
    maxima : ndarray of float32, shape (len(units), k)
        The unit's spatial maximum on each.
    cards_html : str
        One HTML card per unit (label, category, IoU and the top images inline).
    """

    layer: str
    units: tuple[int, ...]
    matching: int
    page: int
    pages: int
    table: pd.DataFrame
    images: np.ndarray
    maxima: np.ndarray
    cards_html: str

    def to_frame(self) -> pd.DataFrame:
        """One row per unit and top image: ``layer, position, unit, label, category, iou, is_detector, dead,
        causal_score, causal_ci_low, causal_ci_high, rank, image, maximum`` (``position`` is the card's place on
        the page, ``rank`` the image's among the unit's)."""
        columns = ["layer", "position", *_UNIT_COLUMNS, "rank", "image", "maximum"]
        rows = [{"layer": self.layer, "position": position, **{name: getattr(row, name) for name in _UNIT_COLUMNS},
                 "rank": rank, "image": int(image), "maximum": float(maximum)}
                for position, row in enumerate(self.table.itertuples(index=False))
                for rank, (image, maximum) in enumerate(zip(self.images[position], self.maxima[position]))]
        return pd.DataFrame(rows, columns=columns)


class DissectionBrowsing:
    """The state behind :class:`linkviz.widgets.DissectionBrowser`: pages of unit cards of dissected layers.

    Everything is computed from the results, without running a model: a page costs ``per_page`` small
    upsamplings (cached per unit), the bar graph one matplotlib figure per layer (cached as PNG).

    Parameters
    ----------
    results : DissectionResult or mapping of str to DissectionResult
        One dissection, or several (e.g. one per layer) keyed by name. Each needs top images
        (``dissect(..., top_k > 0)``).
    probe : ProbeDataset
        The probe the results were computed on.
    k : int
        Top images per card.
    per_page : int
        Cards per page.
    causal_scores : DataFrame or mapping of str to DataFrame, optional
        Causal scores of unit labels (:func:`linkviz.labels.causal_scores`: ``unit, label, score, ci_low,
        ci_high``), one table for a single result or one per result name; each card shows its unit's score with
        the interval over seeds.

    Raises
    ------
    ValueError
        For no results, a result without top images, a bad ``k`` or ``per_page``, or causal scores of a layer
        that is not among the results.
    """

    def __init__(self, results: DissectionResult | Mapping[str, DissectionResult], probe: ProbeDataset, *,
                 k: int = 5, per_page: int = 8,
                 causal_scores: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None) -> None:
        results = {results.layer: results} if isinstance(results, DissectionResult) else dict(results)
        if not results:
            raise ValueError("pass at least one DissectionResult")
        if k < 1 or per_page < 1:
            raise ValueError(f"k and per_page must be positive, got {k} and {per_page}")
        for name, result in results.items():
            if result.top_images is None:
                raise ValueError(f"the dissection {name!r} kept no top images; run dissect(..., top_k=10)")
        self.results, self.probe, self.k, self.per_page = results, probe, int(k), int(per_page)
        self.causal_scores = _scores_by_layer(causal_scores, tuple(results))
        self._bars: dict[str, bytes] = {}
        self._unit_images: dict[tuple[str, int], UnitImages] = {}
        self._strips: dict[tuple[str, int], str] = {}
        self._matching_key: tuple[str, str, str, str] | None = None
        self._matching = pd.DataFrame()

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.results)

    def show_options(self, layer: str) -> list[str]:
        """What the ``show`` filter offers for a layer: all units, detectors, or each category's detectors."""
        return [ALL_UNITS, DETECTORS, *self.results[layer].categories]

    def matching(self, layer: str, *, order: str = "label", show: str = ALL_UNITS, search: str = "") -> pd.DataFrame:
        """The summary table of ``layer``, sorted by ``order`` and filtered by ``show`` and ``search``."""
        if order not in dict(ORDERS).values():
            raise ValueError(f"order must be 'label', 'iou' or 'unit', got {order!r}")
        key = (layer, order, show, search)
        if key != self._matching_key:
            table = with_causal_scores(summary_table(self.results[layer], order=order),
                                       self.causal_scores.get(layer))
            self._matching = filter_units(table, show=show, search=search)
            self._matching_key = key
        return self._matching

    def compute(self, layer: str, *, order: str = "label", show: str = ALL_UNITS, search: str = "",
                page: int = 0) -> DissectionPage:
        """A page of cards of the units of ``layer`` that pass the filters (``page`` is clamped to the pages)."""
        matching = self.matching(layer, order=order, show=show, search=search)
        pages = max(1, -(-len(matching) // self.per_page))
        page = min(max(int(page), 0), pages - 1)
        rows = matching.iloc[page * self.per_page:(page + 1) * self.per_page]
        units = tuple(int(u) for u in rows["unit"])
        shown = [self._images(layer, unit) for unit in units]
        kept = min(self.k, self.results[layer].top_images.shape[1])
        size = self.probe.images.shape[1:3]
        zoom = max(1, TILE_PIXELS // size[0])
        overlays = np.concatenate([s.overlays() for s in shown]) if shown else np.zeros((0, *size, 3), np.uint8)
        grid = tile_images(overlays, columns=max(kept, 1), zoom=zoom, gap=1)
        summary = (f"<b>{html.escape(layer)}</b>: {html.escape(summary_line(self.results[layer]))}. "
                   f"{len(matching)} units match; page {page + 1} of {pages}.")
        cards = "".join(self._card(layer, row) for row in rows.itertuples(index=False))
        return DissectionPage(
            grid=grid, rows=max(len(units), 1), columns=max(kept, 1), title=f"Network Dissection: {layer}",
            row_labels=tuple(f"unit {row.unit}: {display_label(str(row.label))} (IoU {row.iou:.3f})"
                             for row in rows.itertuples(index=False)) or ("no unit matches",),
            column_labels=tuple(f"top {rank + 1}" for rank in range(max(kept, 1))),
            caption_html=summary, layer=layer, units=units, matching=len(matching), page=page, pages=pages,
            table=rows.reset_index(drop=True), cards_html=cards,
            images=np.array([s.indices for s in shown], np.int64).reshape(len(units), kept),
            maxima=np.array([s.maxima for s in shown], np.float32).reshape(len(units), kept))

    def bar_figure(self, layer: str) -> Figure:
        """The bar graph of detectors per concept of ``layer`` (a pyplot-free figure: nothing shows twice)."""
        from matplotlib.figure import Figure

        result = self.results[layer]
        figure = Figure(figsize=(max(3.0, 0.28 * len(result.detectors_per_concept()) + 1.2), 2.8))
        plot_detectors_per_concept(result, ax=figure.subplots())
        return figure

    def bar_png(self, layer: str) -> bytes:
        """:meth:`bar_figure` as PNG bytes (cached per layer)."""
        if layer not in self._bars:
            buffer = io.BytesIO()
            self.bar_figure(layer).savefig(buffer, format="png", dpi=80)
            self._bars[layer] = buffer.getvalue()
        return self._bars[layer]

    def _images(self, layer: str, unit: int) -> UnitImages:
        key = (layer, unit)
        if key not in self._unit_images:
            self._unit_images[key] = unit_images(self.results[layer], self.probe, unit, k=self.k)
        return self._unit_images[key]

    def _strip(self, layer: str, unit: int) -> str:
        """The unit's top images as a PNG data URI."""
        key = (layer, unit)
        if key not in self._strips:
            shown = self._images(layer, unit).overlays()
            zoom = max(1, TILE_PIXELS // shown.shape[1])
            png = encode_image(tile_images(shown, columns=len(shown), zoom=zoom, gap=1), format="png")
            self._strips[key] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        return self._strips[key]

    def _card(self, layer: str, row) -> str:
        dim = "" if row.is_detector else "opacity:0.6;"
        notes = " &middot; <i>dead</i>" if row.dead else ""
        if self.causal_scores.get(layer) is not None:
            notes += f" &middot; causal {causal_text(row.causal_score, row.causal_ci_low, row.causal_ci_high)}"
        return (f'<div style="{_CARD_STYLE}{dim}" data-unit="{row.unit}">'
                f"<b>{html.escape(display_label(str(row.label)))}</b> &middot; unit {row.unit} &middot; "
                f"{html.escape(str(row.category))} &middot; IoU {row.iou:.3f}{notes}<br>"
                f'<img alt="top images of unit {row.unit}" src="{self._strip(layer, int(row.unit))}" '
                f'style="image-rendering:pixelated"></div>')


def _scores_by_layer(scores: pd.DataFrame | Mapping[str, pd.DataFrame] | None,
                     layers: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """Causal scores per result name: one table for a single result, or a mapping whose keys are result names."""
    if scores is None:
        return {}
    if isinstance(scores, pd.DataFrame):
        if len(layers) != 1:
            raise ValueError(f"one causal-score table for {len(layers)} results {list(layers)}; pass a mapping of "
                             "result name to table")
        return {layers[0]: scores}
    unknown = sorted(set(scores) - set(layers))
    if unknown:
        raise ValueError(f"causal scores of {unknown}, which are not among the results {list(layers)}")
    return dict(scores)
