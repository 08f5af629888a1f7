"""PopulationDashboard: label sparsity, tSNE and cluster map of the units' label vectors, a concept finder, and
the selected unit opened in a UnitTuner with flow arrows and part overlays.

The tSNE scatter is a live matplotlib canvas (ipympl, imported only when a dashboard is made, and without
switching the user's matplotlib backend): hovering over a point names its unit, clicking it selects that unit.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import ipywidgets as ipw
import numpy as np
import pandas as pd

from linkviz.controllers.population import ConceptRanking, PopulationAnalysis, PopulationView
from linkviz.linking.linked_model import LinkedModel
from linkviz.plotting.population import draw_unit_ring
from linkviz.quantify.changes import ChangeTable
from linkviz.quantify.method_agreement import MethodAgreement
from linkviz.widgets.agreement_panel import AgreementPanel, draw_points
from linkviz.widgets.base import ViewWidget
from linkviz.widgets.latest_wins import LatestWinsWorker
from linkviz.widgets.live_canvas import live_canvas
from linkviz.widgets.unit_tuner import PartsFunction, UnitTuner

if TYPE_CHECKING:
    from matplotlib.backend_bases import MouseEvent
    from matplotlib.figure import Figure

__all__ = ["PopulationDashboard"]

_DPI = 80
_MAX_CLUSTERS = 12
_CLICK_RADIUS = 10.0  # display pixels around a tSNE point that select it
_EMBEDDING_INCHES = (6.4, 4.6)  # the tSNE canvas: 512 x 368 pixels at _DPI, legend outside the axes
_WRAP = {"flex_flow": "row wrap", "align_items": "flex-start"}  # rows that wrap instead of scrolling sideways


class PopulationDashboard(ViewWidget):
    """The population of tuned units at a glance, and any one unit up close.

    A view over :class:`linkviz.controllers.PopulationAnalysis`, which does the math, on a table of part-metric
    changes (:class:`linkviz.quantify.ChangeTable`). Shows:

    - the label sparsity of every unit per metric (:func:`~linkviz.quantify.label_sparsity`), as histograms;
    - the tSNE of the label vectors coloured by each unit's strongest label
      (:func:`~linkviz.quantify.tsne_embedding`, :func:`~linkviz.plotting.plot_embedding`) on a live ipympl
      canvas: hovering over a point names its unit and label, clicking it selects that unit, and the selected
      unit is ringed;
    - the cluster map of the label vectors (:func:`linkviz.plotting.population.clustermap_figure`) with a
      cluster count;
    - a list of units, ranked by label sparsity or by the concept finder
      (:func:`~linkviz.quantify.find_selective_units`: label + metric + sign -> units with effect size and CI);
    - the selected unit in a :class:`UnitTuner` (given ``linked``) with flow arrows and, given a segmenter, part
      overlays switched on;
    - given ``agreement`` (:func:`linkviz.quantify.method_agreement.method_agreement`), whether dissection, LaViSE
      and tuning agree on each unit: the tSNE can be coloured by agreement level (``colour_by``, legend with
      counts), and the units whose methods disagree are listed (``flagged_units``; choosing one selects it).

    The cluster map's redraws and concept searches run in :class:`LatestWinsWorker` threads, as does the tuner.
    A selection only moves the tSNE ring (a cheap canvas redraw on the kernel thread). :attr:`shown` is the
    current :class:`~linkviz.controllers.PopulationView` (what :meth:`export` writes).

    Parameters
    ----------
    table : ChangeTable or DataFrame
        Columns ``unit, seed, step, label, metric, change`` (:func:`linkviz.quantify.unit_changes`).
    linked : LinkedModel, optional
        The models whose units the table describes; without it no tuner is shown.
    segmenter, segment_from, part_labels, part_iou, part_background
        Part segmentation for the tuner's overlay; see :class:`UnitTuner` (``part_background=None`` when every
        part id is a part, e.g. k-means clusters, so that part 0 is tinted like the others).
    seeds : sequence of int, optional
        Base examples shown by the tuner (clipped to the base pairs; default: spread over the classes).
    step : int, optional
        Tuning step of the label vectors; default each unit's last step.
    sparsity_index : {"hoyer", "treves_rolls"}
    scaling : {"metric", "column", "none"}
        Scaling of the label vectors for tSNE and clustering (see :mod:`linkviz.quantify.population`).
    n_clusters : int
        Initial number of flat clusters in the cluster map.
    seed : int
        tSNE seed.
    perplexity : float
    max_iter : int
        tSNE iterations.
    ci_method : {"t", "bootstrap"}
        Confidence intervals of the concept finder.
    top : int
        Units listed by the concept finder.
    agreement : MethodAgreement, optional
        Per-unit agreement of the three methods; without it the map is coloured by strongest label only.
    """

    def __init__(self, table: ChangeTable | pd.DataFrame, *, linked: LinkedModel | None = None,
                 segmenter: PartsFunction | None = None, segment_from: Literal["images", "ws"] = "images",
                 part_labels: Sequence[str] | None = None, part_iou: Mapping[str, float] | None = None,
                 part_background: int | None = 0,
                 seeds: Sequence[int] | None = None,
                 step: int | None = None, sparsity_index: Literal["hoyer", "treves_rolls"] = "hoyer",
                 scaling: Literal["metric", "column", "none"] = "metric", n_clusters: int = 4, seed: int = 0,
                 perplexity: float = 30.0, max_iter: int = 1000, ci_method: Literal["t", "bootstrap"] = "t",
                 top: int = 20, agreement: MethodAgreement | None = None) -> None:
        self.controller = PopulationAnalysis(table, step=step, sparsity_index=sparsity_index, scaling=scaling,
                                             seed=seed, perplexity=perplexity, max_iter=max_iter,
                                             ci_method=ci_method, top=top, agreement=agreement)
        self.table, self.linked, self.scaling = table, linked, scaling
        self.concept: pd.DataFrame | None = None
        self.concept_ranking: ConceptRanking | None = None
        n_units = len(self.vectors.units)

        self._init_view(name="PopulationDashboard-clustermap", image_format="png")
        self.sparsity_image, self.unit_info = self.image, self.label
        self.n_clusters = ipw.IntSlider(value=min(max(n_clusters, 1), n_units), min=1,
                                        max=min(_MAX_CLUSTERS, n_units), description="clusters",
                                        continuous_update=False)
        self._view = self.controller.compute(self.n_clusters.value)
        self.sparsity_image.value = _png(self._view.sparsity_figure(dpi=_DPI))
        self.embedding_canvas = self._embedding_canvas()
        self.clustermap_image = ipw.Image(format="png")
        self._show(self._view)
        self.rank_by = ipw.ToggleButtons(options=[("label sparsity", "sparsity"), ("concept", "concept")],
                                         value="sparsity", description="rank by")
        self.units = ipw.Select(options=self.controller.sparsity_options(), rows=12, description="units",
                                layout=ipw.Layout(width="360px"))
        self.unit_info.layout = ipw.Layout(width="360px")  # wraps instead of widening the column
        self.concept_label = ipw.Dropdown(options=list(self.vectors.labels), description="label")
        self.concept_metric = ipw.Dropdown(options=list(self.vectors.metrics), description="metric")
        self.concept_sign = ipw.ToggleButtons(options=[("increase", 1), ("decrease", -1)], value=1,
                                              description="sign", style={"button_width": "auto"})
        self.find_button = ipw.Button(description="find units", icon="search")
        self.concept_table = ipw.HTML(layout=ipw.Layout(max_width="100%", overflow="auto"))
        self.tuner = self._make_tuner(segmenter, segment_from, part_labels, part_iou, part_background, seeds)
        self.agreement_box = AgreementPanel(self.controller)
        self.colour_by, self.flagged_units = self.agreement_box.colour_by, self.agreement_box.flagged_units
        self._concept_worker = LatestWinsWorker(self._show_concept, self._show_error,
                                                name="PopulationDashboard-concept")
        self._highlight(self.units.value)
        self._describe(self.units.value)

        self.n_clusters.observe(self._on_clusters, names="value")
        self.rank_by.observe(self._on_rank_by, names="value")
        self.units.observe(self._on_unit, names="value")
        self.find_button.on_click(lambda _: self.request_concept())
        self.embedding_canvas.mpl_connect("button_press_event", self._on_embedding_click)
        self.embedding_canvas.mpl_connect("motion_notify_event", self._on_embedding_hover)
        self.embedding_canvas.mpl_connect("figure_leave_event", self._on_embedding_leave)
        self.colour_by.observe(self._on_colour_by, names="value")
        self.flagged_units.observe(lambda change: change["new"] is not None and self.select_unit(change["new"]),
                                   names="value")
        self.concept_box = ipw.VBox([ipw.HTML("<b>concept finder</b>"), self.concept_label, self.concept_metric,
                                     self.concept_sign, self.find_button, self.concept_table],
                                    layout=ipw.Layout(flex="1 1 380px", min_width="0"))
        super().__init__([
            ipw.HBox([self.sparsity_image, self.embedding_canvas], layout=ipw.Layout(**_WRAP)),
            ipw.VBox([self.n_clusters, self.clustermap_image]),
            ipw.HBox([ipw.VBox([self.rank_by, self.units, self.unit_info], layout=ipw.Layout(flex="0 0 auto")),
                      self.concept_box, self.agreement_box], layout=ipw.Layout(**_WRAP, width="100%")),
            self.tuner if self.tuner is not None else ipw.HTML("<i>pass linked=... to tune the selected unit</i>"),
            self.error, self._export_bar()])

    # --- the controller's state ---

    @property
    def vectors(self):
        """The units' label vectors (:class:`linkviz.quantify.LabelVectors`)."""
        return self.controller.vectors

    @property
    def sparsity(self) -> pd.DataFrame:
        return self.controller.sparsity

    @property
    def embedding(self):
        """The tSNE of the label vectors (:class:`linkviz.quantify.UnitEmbedding`)."""
        return self.controller.embedding

    @property
    def shown(self) -> PopulationView:
        """The population as shown: clusters, the selected unit and the last concept search."""
        selected = self.units.value if hasattr(self, "units") else None
        colour_by = self.colour_by.value if hasattr(self, "colour_by") else "strongest_label"
        return dataclasses.replace(self._view, selected=selected, concept=self.concept_ranking, colour_by=colour_by)

    # --- public actions ---

    def select_unit(self, unit: int) -> None:
        """Select ``unit`` in the list (switching to the sparsity ranking, which lists all units, if needed)."""
        unit = self.controller.check_unit(unit)
        if unit not in [value for _, value in self.units.options]:
            self.rank_by.value = "sparsity"
        self.units.value = unit

    def unit_near(self, x: float, y: float, *, radius: float = _CLICK_RADIUS) -> int | None:
        """The unit whose tSNE point is nearest to display position (x, y) of the canvas, if within ``radius``."""
        points = self._embedding_axes.transData.transform(self.embedding.coordinates)
        distance = np.hypot(points[:, 0] - x, points[:, 1] - y)
        nearest = int(np.argmin(distance))
        return int(self.embedding.units[nearest]) if distance[nearest] <= radius else None

    def find_concept(self, label: str, metric: str, sign: int | str) -> pd.DataFrame:
        """Units selective for a concept, strongest first (:func:`linkviz.quantify.find_selective_units`)."""
        return self.controller.find_concept(label, metric, sign).table

    def request_concept(self) -> int:
        """Run the concept finder for the chosen label, metric and sign in the worker; its request number."""
        label, metric, sign = self.concept_label.value, self.concept_metric.value, self.concept_sign.value
        return self._concept_worker.submit(lambda: self.controller.find_concept(label, metric, sign))

    def wait_idle(self, timeout: float | None = 30.0) -> bool:
        """Block until every redraw, concept search and tuner update has been shown; False on timeout."""
        workers = [self.worker, self._concept_worker] + ([self.tuner.worker] if self.tuner is not None else [])
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # one worker's result can queue work for another (a found concept opens its top unit)
            for worker in workers:
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                if not worker.wait_idle(left):
                    return False
            if not any(worker.busy for worker in workers):
                return True

    # --- controls -> requests (main thread) ---

    def _on_clusters(self, change: dict) -> None:
        self._request(self.controller.compute, int(change["new"]))

    def _on_rank_by(self, change: dict) -> None:
        if change["new"] == "concept" and self.concept_ranking is None:
            self.units.options = []
            self.unit_info.value = "<i>run the concept finder to rank units by a concept</i>"
            return
        self.units.options = (self.controller.sparsity_options() if change["new"] == "sparsity"
                              else self.concept_ranking.options())

    def _on_unit(self, change: dict) -> None:
        unit = change["new"]
        if unit is None:
            return
        self._describe(unit)
        self._highlight(unit, push=True)
        if self.tuner is None:
            return
        try:
            self.linked.stats.check_unit(unit)
        except IndexError as error:
            self._show_error(error)
            return
        self.error.value = ""
        self.tuner.unit.value = unit

    def _on_colour_by(self, change: dict) -> None:
        self._points, self._groups = draw_points(self._embedding_axes, self.controller, change["new"], self._points)
        self.embedding_canvas.figure.draw_without_rendering()  # lay out the new legend: clicks find the points
        self.embedding_canvas.draw()  # now, not draw_idle: the page's draw request can be lost behind hover redraws

    def _on_embedding_hover(self, event: MouseEvent) -> None:
        """Name the unit under the mouse (hidden away from every point); redraws only when that unit changes."""
        unit = self.unit_near(event.x, event.y) if event.inaxes is self._embedding_axes else None
        if unit == self.hovered:
            return
        self.hovered = unit
        if unit is None:
            self._hover_label.set_visible(False)
        else:
            index = int(np.flatnonzero(self.embedding.units == unit)[0])
            self._hover_label.xy = tuple(self.embedding.coordinates[index])
            self._hover_label.set_text(f"unit {unit}: {self._groups[index]}")
            self._hover_label.set_visible(True)
        self.embedding_canvas.draw_idle()

    def _on_embedding_leave(self, event: object) -> None:
        """The mouse left the map: no unit is under it any more."""
        if self.hovered is not None:
            self.hovered = None
            self._hover_label.set_visible(False)
            self.embedding_canvas.draw_idle()

    def _on_embedding_click(self, event: MouseEvent) -> None:
        if event.inaxes is not self._embedding_axes or event.button != 1:
            return
        unit = self.unit_near(event.x, event.y)
        if unit is not None:
            self.select_unit(unit)

    # --- results -> traits (worker threads) ---

    def _show(self, view: PopulationView) -> None:
        """A new clustering: redraw the cluster map."""
        self._view = view
        self.clustermap_image.value = _png(view.clustermap_figure(dpi=_DPI))
        self.error.value = ""

    def _show_concept(self, ranking: ConceptRanking) -> None:
        self.concept_ranking, self.concept = ranking, ranking.table
        self.concept_table.value = ranking.html
        if self.rank_by.value == "concept":
            self.units.options = ranking.options()
        else:
            self.rank_by.value = "concept"
        if len(ranking.table):
            self.units.value = ranking.units[0]  # open the strongest unit
        self.error.value = ""

    # --- display ---

    def _describe(self, unit: int | None) -> None:
        """The selected unit's largest changes."""
        self.unit_info.value = "" if unit is None else self.controller.describe(unit)

    def _embedding_canvas(self) -> ipw.DOMWidget:
        """The tSNE scatter on a live ipympl canvas (legend outside the axes, title inside the figure), with a
        ring (hidden until a unit is selected) and a label naming the unit under the mouse."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=_EMBEDDING_INCHES, dpi=_DPI, layout="constrained")
        canvas = live_canvas(figure)
        ax = figure.add_subplot()
        self._embedding_axes = ax
        self._points, self._groups = draw_points(ax, self.controller, "strongest_label", [])
        ax.set_title("tSNE of label vectors (hover: unit id; click: select)", fontsize=9)
        self._ring, self._ring_label = draw_unit_ring(ax, None, None)
        self._ring.set_zorder(3)  # above points redrawn in another colouring
        self.hovered: int | None = None
        self._hover_label = ax.annotate("", (0.0, 0.0), xytext=(8, -14), textcoords="offset points", fontsize=8,
                                        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.9},
                                        visible=False)
        figure.draw_without_rendering()  # lay out now, so positions (unit_near) hold before the first draw
        return canvas

    def _highlight(self, unit: int | None, *, push: bool = False) -> None:
        """Ring the selected unit's tSNE point (main thread); ``push`` sends the image now (once the page shows the
        canvas: a draw request from the page can be lost behind hover redraws)."""
        if unit is None:
            self._ring.set_offsets(np.full((1, 2), np.nan))
            self._ring_label.set_text("")
        else:
            x, y = self.embedding.coordinates[int(np.flatnonzero(self.embedding.units == unit)[0])]
            self._ring.set_offsets([[x, y]])
            self._ring_label.xy = (x, y)
            self._ring_label.set_text(f"unit {unit}")
        if push:
            self.embedding_canvas.draw()
        else:
            self.embedding_canvas.draw_idle()

    def _make_tuner(self, segmenter: PartsFunction | None, segment_from: str, part_labels: Sequence[str] | None,
                    part_iou: Mapping[str, float] | None, part_background: int | None,
                    seeds: Sequence[int] | None) -> UnitTuner | None:
        if self.linked is None:
            return None
        unit = self.units.value
        if unit is None or not 0 <= unit < self.linked.stats.n_units:
            unit = 0
        if seeds is not None:
            seeds = [seed for seed in seeds if 0 <= seed < len(self.linked.pairs)] or None
        return UnitTuner(self.linked, seeds=seeds, unit=unit, segmenter=segmenter, segment_from=segment_from,
                         part_labels=part_labels, part_iou=part_iou, part_background=part_background, arrows=True,
                         parts=segmenter is not None)

    def _snapshot_parts(self) -> Sequence[str]:
        """The tSNE and the cluster map, the unit and concept tables, the tuner's view and the error line."""
        parts = [_img_tag("png", _png(self.embedding_canvas.figure)), _img_tag("png", self.clustermap_image.value),
                 self.unit_info.value, self.concept_table.value]
        if self.tuner is not None:
            parts += [_img_tag(self.tuner.image.format, self.tuner.image.value), self.tuner.label.value]
        return (*parts, self.error.value)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _img_tag(image_format: str, value: bytes) -> str:
    return f'<img src="data:image/{image_format};base64,{base64.b64encode(value).decode("ascii")}"/>'
