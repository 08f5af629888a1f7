"""The tabs of :class:`linkviz.widgets.ExploreApp`: what each needs, how its view is made, and how the shared
selection reaches it.

Each tab's view is an existing widget; the app talks to it only through public attributes:

==================  ================================  =========================================================
tab                 unit                              classes
==================  ================================  =========================================================
world samples       --                                ``class_picker`` offers the shown classes
link quality        --                                --
unit tuning         ``unit`` (both ways)              ``classes`` menu (both ways), hence the seeds
counterfactuals     --                                ``origin`` offers the shown classes
population          ``select_unit`` / ``units``       the embedded ``tuner``'s ``classes``
dissection          ``search`` holds the unit number  --
unit card           ``unit`` (both ways)              the embedded ``tuner``'s ``classes``
==================  ================================  =========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as ipw
import numpy as np

from linkviz.controllers.exploring import ExploreData, segmenter_part_iou
from linkviz.controllers.selection import Selection
from linkviz.widgets.counterfactual_explorer import CounterfactualExplorer
from linkviz.widgets.dissection_browser import DissectionBrowser
from linkviz.widgets.link_explorer import LinkExplorer
from linkviz.widgets.population_dashboard import PopulationDashboard
from linkviz.widgets.unit_card import UnitCard
from linkviz.widgets.unit_tuner import UnitTuner
from linkviz.widgets.world_browser import WorldBrowser
from linkviz.world import World

__all__ = ["STAGE_TEXT", "TABS", "Tab", "bind_unit_choices", "make_view", "natural_image_sizes", "push_classes",
           "push_unit", "tuner_of"]

SEEDS = 4  # base examples per embedded tuner


@dataclass(frozen=True)
class Tab:
    """One tab: its name, its title, what its view is made from (ExploreData getters), what it needs that
    not every world has ("population" or "dissection", see :meth:`ExploreData.unavailable`) and what it uses
    when the world can make it (``wants_made``: getters, e.g. the tuner's part segmenter)."""

    name: str
    title: str
    needs_made: tuple[str, ...]
    needs: str | None = None
    wants_made: tuple[str, ...] = ()

    def stages(self, data: ExploreData) -> tuple[str, ...]:
        """The getters to call before the view can be made: what it needs, and what it wants that ``data``'s world
        can make (nothing that is made already)."""
        return data.steps(*self.needs_made, *(name for name in self.wants_made if data.can_make(name)))


TABS: tuple[Tab, ...] = (
    Tab("world", "world samples", ()),
    Tab("link", "link quality", ("linked", "test_pairs")),
    Tab("tuning", "unit tuning", ("linked",), wants_made=("segmenter",)),
    Tab("counterfactuals", "counterfactuals", ("linked",)),
    Tab("population", "population", ("linked", "population"), needs="population", wants_made=("dissection",)),
    Tab("dissection", "dissection", ("dissection",), needs="dissection"),
    Tab("card", "unit card", ("linked", "dissection"), needs="dissection"),
)
"""The app's tabs, in order."""

STAGE_TEXT = {
    "linked": "sampling pairs, fitting the link",
    "test_pairs": "sampling held-out pairs",
    "segmenter": "training the part segmenter",
    "sweep": "sweeping the strongest units",
    "population": "measuring part changes",
    "probe": "rendering the probe set",
    "dissection": "dissecting the last conv stage",
}
"""What the progress bar says while each ExploreData getter runs."""


# --- making views ---


def _seeds(data: ExploreData, selection: Selection, n: int = SEEDS) -> tuple[int, ...]:
    """Base examples round-robin over the shown classes (all classes if the shown ones have none)."""
    linked = data.linked()
    try:
        return linked.example_seeds(n, selection.class_indices)
    except ValueError:
        return linked.example_seeds(n)


def make_view(name: str, *, world: World, data: ExploreData, selection: Selection, seed: int = 0,
              n_samples: int = 6) -> ipw.Widget:
    """The view of tab ``name``, opened on the selected unit and classes (what it needs must be made already)."""
    chosen = selection.class_indices if selection.classes else ()
    if name == "world":
        return WorldBrowser(world, n_samples=n_samples, seed=seed)
    linked = data.linked() if "linked" in next(tab for tab in TABS if tab.name == name).needs_made else None
    if name == "link":
        return LinkExplorer(linked, data.test_pairs(), per_page=5)
    if name == "tuning":
        listed = set(np.flatnonzero(np.bincount(linked.pairs.predicted, minlength=len(linked.class_names))).tolist())
        segmenter = data.segmenter() if "segmenter" in data.made else None
        return UnitTuner(linked, unit=selection.unit, classes=[k for k in chosen if k in listed] or None,
                         segmenter=segmenter, segment_from="ws",
                         part_labels=tuple(world.part_names) if segmenter is not None else None,
                         part_iou=segmenter_part_iou(segmenter))
    if name == "counterfactuals":
        return CounterfactualExplorer(linked, max_steps=150, n_alphas=7, origin=chosen[0] if chosen else None)
    if name == "population":
        population = data.population()
        n_units = int(population.table.frame["unit"].nunique())
        return PopulationDashboard(population.table, linked=linked, segmenter=population.segmenter,
                                   segment_from=population.segment_from, part_labels=population.part_labels,
                                   part_iou=population.part_iou,
                                   seeds=_seeds(data, selection), n_clusters=min(3, n_units),
                                   perplexity=max(1.0, min(5.0, (n_units - 1) / 3)), max_iter=500,
                                   agreement=data.agreement())
    if name == "dissection":
        dissection = data.dissection()
        return DissectionBrowser(dissection.result, dissection.probe, k=5, per_page=6)
    if name == "card":
        dissection = data.dissection()
        return UnitCard(dissection.result, dissection.probe, linked, unit=selection.unit,
                        seeds=_seeds(data, selection))
    raise KeyError(f"no tab {name!r}; tabs: {[tab.name for tab in TABS]}")


def natural_image_sizes(widget: ipw.Widget) -> None:
    """Show a view's images at their own size (at most the tab's width) rather than stretched across the tab."""
    if isinstance(widget, ipw.Image):
        widget.layout.align_self = "flex-start"
        widget.layout.max_width = "100%"
    for child in getattr(widget, "children", ()):
        if isinstance(child, ipw.Widget):
            natural_image_sizes(child)


# --- the shared selection ---


def tuner_of(name: str, view: Any) -> UnitTuner | None:
    """The tab's unit tuner: the view itself, or the one the population dashboard or unit card embeds."""
    tuner = view if name == "tuning" else getattr(view, "tuner", None) if name in ("population", "card") else None
    return tuner if isinstance(tuner, UnitTuner) else None


def push_unit(name: str, view: Any, unit: int) -> None:
    """Show ``unit`` in the view, if it can show it (otherwise it keeps its own)."""
    try:
        if name in ("tuning", "card"):
            view.unit.value = unit
        elif name == "population":
            if unit in {int(u) for u in view.vectors.units}:
                view.select_unit(unit)
        elif name == "dissection":
            view.search.value = str(unit)
    except (ValueError, IndexError):
        pass


def push_classes(name: str, view: Any, selection: Selection) -> None:
    """Let the view offer (or draw its examples from) the shown classes only."""
    if name == "world":
        view.class_picker.options = list(selection.shown_classes)  # keeps the class if it is still shown
    elif name == "counterfactuals":
        view.origin.options = [(selection.class_names[k], k) for k in selection.class_indices]
    tuner = tuner_of(name, view)
    if tuner is not None:  # its class menu, hence its seeds: the chosen classes it has examples of
        listed = {value for _, value in tuner.classes.options}
        chosen = tuple(k for k in selection.class_indices if k in listed) if selection.classes else ()
        if tuple(tuner.classes.value) != chosen:
            tuner.classes.value = chosen


def bind_unit_choices(name: str, view: Any, pick: Callable[[Any], None]) -> None:
    """Call ``pick(unit)`` whenever the user chooses a unit in the view (a number typed in the dissection search
    counts; a label search does not)."""
    if name in ("tuning", "card"):
        view.unit.observe(lambda change: pick(change["new"]), names="value")
    elif name == "population":
        view.units.observe(lambda change: pick(change["new"]), names="value")
    elif name == "dissection":
        def on_search(change: dict) -> None:
            text = str(change["new"]).strip()
            if text.isdigit():
                pick(int(text))

        view.search.observe(on_search, names="value")
