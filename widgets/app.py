"""ExploreApp and :func:`explore`: every linkviz view of one world in tabs, with one selected unit and one class filter.

Tabs: world samples (:class:`WorldBrowser`), link quality (:class:`LinkExplorer`), unit tuning
(:class:`UnitTuner`), counterfactuals (:class:`CounterfactualExplorer`), population
(:class:`PopulationDashboard`), dissection (:class:`DissectionBrowser`) and unit card (:class:`UnitCard`). Only the
world samples are made with the app; every other tab is made the first time it is selected, with a progress bar,
from :class:`linkviz.controllers.ExploreData` (which caches the expensive parts on disk).

The tabs share a :class:`linkviz.controllers.Selection`: a unit chosen in the tuner, the population list, the
dissection search (a unit number) or the unit card is selected in all of them, and the classes chosen at the top
filter the world samples, the base examples of every tuner and the counterfactuals' origin classes.
"""

from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as ipw
import torch

from linkviz.controllers.exploring import ExploreData, Unavailable
from linkviz.controllers.selection import Selection
from linkviz.widgets.app_tabs import (
    STAGE_TEXT,
    TABS,
    Tab,
    bind_unit_choices,
    make_view,
    natural_image_sizes,
    push_classes,
    push_unit,
    tuner_of,
)
from linkviz.widgets.latest_wins import error_html
from linkviz.world import World

__all__ = ["TABS", "ExploreApp", "explore"]


class ExploreApp(ipw.VBox):
    """One world in one app: its views in tabs, one selected unit and one class filter shared by all of them.

    Parameters
    ----------
    world : World, optional
        The models to explore (default: :func:`linkviz.load_toy_world`).
    cache_dir : path, optional
        Where the expensive parts are cached (default :func:`linkviz.default_cache_root`).
    device : str or torch.device, optional
        Where latents are made and the link, sweeps and dissection run; default the world's generator's device.
    samples_per_class : int
        Pairs per class the link is fitted on.
    seed : int
        Seed of the pairs and the world samples.
    data : ExploreData, optional
        What the tabs are made from (default: one made from the arguments above, which it then ignores).
    background : bool
        Make a tab on a worker thread when it is selected (the app stays responsive); False makes it on the
        thread that selected it.
    n_samples : int
        Samples of the world browser.

    Attributes
    ----------
    selection : Selection
        The shared unit and classes.
    data : ExploreData
    tabs : ipywidgets.Tab
    classes : ipywidgets.SelectMultiple
        The class filter (none chosen: all classes).
    status : ipywidgets.HTML
        The selected unit and the shown classes.
    views : dict of str to widget or None
        Each tab's view by name (see :data:`TABS`), None until it is made.
    errors : dict of str to Exception
        Why a tab could not be made (selecting it again retries).
    """

    def __init__(self, world: World | None = None, *, cache_dir: str | os.PathLike[str] | None = None,
                 device: str | torch.device | None = None, samples_per_class: int = 32, seed: int = 0,
                 data: ExploreData | None = None, background: bool = True, n_samples: int = 6) -> None:
        if world is None:
            world = data.world if data is not None else _toy_world()
        self.world = world
        self.data = data if data is not None else ExploreData(world, cache_dir=cache_dir, device=device,
                                                              samples_per_class=samples_per_class, seed=seed)
        self.background, self.seed, self.n_samples = background, int(seed), int(n_samples)
        names = tuple(world.class_names)
        self.selection = Selection(names)
        self.views: dict[str, Any] = {tab.name: None for tab in TABS}
        self.errors: dict[str, Exception] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._pushing = 0  # > 0 while the app moves views' class menus (their echoes are not user choices)

        self.classes = ipw.SelectMultiple(options=list(names), value=(), rows=min(len(names), 6),
                                          description="classes", layout=ipw.Layout(width="260px", margin="0 16px 0 0"),
                                          tooltip="filter every tab by class (none chosen: all classes)")
        self.status = ipw.HTML()
        self._pages = {tab.name: ipw.VBox([ipw.HTML(self._not_built_yet(tab))]) for tab in TABS}
        for name, page in self._pages.items():
            page.add_class(f"linkviz-tab-{name}")  # a handle for styles and browser tests
        self.tabs = ipw.Tab(children=[self._pages[tab.name] for tab in TABS], titles=[tab.title for tab in TABS])
        self.tabs.selected_index = 0
        title = ipw.HTML(f"<b>linkviz</b> · {html.escape(type(world).__name__)} · {len(names)} classes: "
                         f"{html.escape(', '.join(names))}")
        hint = ipw.HTML("<small>choose classes to filter every tab (ctrl/shift-click for several, none: all); "
                        "a unit chosen in one tab is selected in all of them</small>")
        header = ipw.HBox([self.classes, ipw.VBox([title, self.status, hint])],
                          layout=ipw.Layout(align_items="flex-start"))
        self._update_status()

        self.selection.observe(self._on_unit, "unit")
        self.selection.observe(self._on_classes, "classes")
        self.classes.observe(self._on_class_filter, names="value")
        self.tabs.observe(self._on_tab, names="selected_index")
        super().__init__([header, self.tabs])
        self.add_class("linkviz-explore")
        self._build("world")  # cheap: one generator pass

    # --- public actions ---

    def select_tab(self, name: str, *, wait: bool = False, timeout: float | None = None) -> Any:
        """Select the tab ``name`` (making its view if needed); with ``wait``, block until it is made.

        Returns the tab's view (None while it is being made, or if it could not be made).
        """
        self.tabs.selected_index = self._index(name)
        if wait:
            self.wait_built(timeout)
        return self.views[name]

    def wait_built(self, timeout: float | None = None) -> bool:
        """Block until every tab being made is made; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return not any(thread.is_alive() for thread in self._threads.values())

    def select_unit(self, unit: int) -> None:
        """Select ``unit`` in every tab."""
        self.selection.select_unit(unit)

    def select_classes(self, classes: Sequence[str]) -> None:
        """Show only these classes in every tab (none: all)."""
        self.classes.value = tuple(self.selection.check_classes(classes))

    @property
    def built(self) -> tuple[str, ...]:
        """Names of the tabs whose views are made."""
        return tuple(name for name, view in self.views.items() if view is not None)

    # --- making tabs ---

    @staticmethod
    def _index(name: str) -> int:
        for index, tab in enumerate(TABS):
            if tab.name == name:
                return index
        raise KeyError(f"no tab {name!r}; tabs: {[tab.name for tab in TABS]}")

    def _not_built_yet(self, tab: Tab) -> str:
        reason = self.data.unavailable(tab.needs) if tab.needs else None
        if reason is not None:
            return f"<p><b>{html.escape(tab.title)}</b> is not available for this world.</p><p>{html.escape(reason)}</p>"
        return f"<i>{html.escape(tab.title)}: made when this tab is first selected</i>"

    def _on_tab(self, change: dict) -> None:
        if change["new"] is None:
            return
        tab = TABS[int(change["new"])]
        with self._lock:
            running = tab.name in self._threads and self._threads[tab.name].is_alive()
            if self.views[tab.name] is not None or running:
                return
            if tab.needs and self.data.unavailable(tab.needs) is not None:
                return
            if not self.background:
                thread = None
            else:
                thread = threading.Thread(target=self._build, args=(tab.name,), name=f"ExploreApp-{tab.name}",
                                          daemon=True)
                self._threads[tab.name] = thread
        if thread is None:
            self._build(tab.name)
        else:
            thread.start()

    def _build(self, name: str) -> Any:
        """Make the tab's view: its stages with a progress bar, then the widget; bind it to the selection."""
        tab = TABS[self._index(name)]
        page = self._pages[name]
        stages = tab.stages(self.data)
        bar = None if name == "world" else _progress_bar(len(stages) + 1, tab.title)
        if bar is not None:
            note = ipw.HTML(f"<i>making <b>{html.escape(tab.title)}</b> (slow parts are made once and cached in "
                            f"{html.escape(str(self.data.cache_dir))})</i>")
            page.children = (note, bar.container)
        try:
            for stage in stages:
                if bar is not None:
                    bar.set_description(STAGE_TEXT[stage])
                getattr(self.data, stage)()
                if bar is not None:
                    bar.update(1)
            for stage in tab.needs_made:
                self._adopt(stage)
            if bar is not None:
                bar.set_description("drawing")
            view = make_view(name, world=self.world, data=self.data, selection=self.selection, seed=self.seed,
                             n_samples=self.n_samples)
            if bar is not None:
                bar.update(1)
                bar.close()
        except Exception as error:  # noqa: BLE001 (any failure is shown in the tab; selecting it again retries)
            self.errors[name] = error
            retry = "" if isinstance(error, Unavailable) else "<br><i>select another tab and this one to retry</i>"
            page.children = (ipw.HTML(f"<p>{html.escape(tab.title)} could not be made:</p>{error_html(error)}"
                                      f"{retry}"),)
            return None
        self.errors.pop(name, None)
        natural_image_sizes(view)
        self.views[name] = view
        self._bind(name, view)
        page.children = (view,)
        return view

    def _adopt(self, stage: str) -> None:
        """Once the link (or the dissection of the same units) is known, units are checked against its number of
        units; once the link is known, its strongest unit is selected if none is yet."""
        if stage == "linked":
            n_units = self.data.linked().stats.n_units
        elif stage == "dissection":
            n_units = len(self.data.dissection().result.thresholds)
        else:
            return
        if self.selection.n_units is None:
            self.selection.n_units = n_units
        if stage == "linked" and self.selection.unit is None:
            self.selection.select_unit(self.data.strongest_unit())

    # --- the shared selection ---

    def _bind(self, name: str, view: Any) -> None:
        """Push the current selection into a new view, then let its unit controls select units everywhere."""
        self._push_classes(name, view)
        if self.selection.unit is not None:
            push_unit(name, view, self.selection.unit)
        tuner = tuner_of(name, view)
        if tuner is not None:
            tuner.classes.observe(self._on_tuner_classes, names="value")
        bind_unit_choices(name, view, self._pick)

    def _pick(self, unit: Any) -> None:
        """A view chose ``unit``: select it everywhere (units a view cannot show are left to its error line)."""
        if unit is None:
            return
        try:
            self.selection.select_unit(unit)
        except (ValueError, IndexError):
            return

    def _on_unit(self, unit: int) -> None:
        for name, view in list(self.views.items()):
            if view is not None:
                push_unit(name, view, unit)
        self._update_status()

    def _on_class_filter(self, change: dict) -> None:
        self.selection.select_classes(change["new"])

    def _on_classes(self, classes: tuple[str, ...]) -> None:
        if tuple(self.classes.value) != classes:
            self.classes.value = classes
        for name, view in list(self.views.items()):
            if view is not None:
                self._push_classes(name, view)
        self._update_status()

    def _push_classes(self, name: str, view: Any) -> None:
        self._pushing += 1
        try:
            push_classes(name, view, self.selection)
        finally:
            self._pushing -= 1

    def _on_tuner_classes(self, change: dict) -> None:
        """Classes picked in a tuner's own menu filter every tab."""
        if not self._pushing:
            self.selection.select_classes([self.selection.class_names[k] for k in change["new"]])

    def _update_status(self) -> None:
        unit = self.selection.unit
        unit_text = (f"unit <b>{unit}</b> selected in every tab" if unit is not None
                     else "no unit selected yet (choose one in unit tuning, population, dissection or unit card)")
        chosen = self.selection.classes
        class_text = ("showing <b>all classes</b>" if not chosen
                      else "showing <b>" + html.escape(", ".join(chosen)) + "</b>")
        self.status.value = f"{unit_text} · {class_text}"

    # --- static output ---

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The live app, plus a static snapshot (header and the made views' snapshots) for exported notebooks."""
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        parts = [f"<p>{self.status.value}</p>"]
        for tab in TABS:
            view = self.views[tab.name]
            snapshot = getattr(view, "_repr_mimebundle_", None)
            if view is not None and snapshot is not None:
                html_part = (snapshot() or {}).get("text/html")
                if html_part:
                    parts.append(f"<h4>{html.escape(tab.title)}</h4>{html_part}")
        return {**bundle, "text/html": "<div>" + "".join(parts) + "</div>"}


def _toy_world() -> World:
    import linkviz

    return linkviz.load_toy_world()


def _progress_bar(total: int, title: str) -> Any:
    """A tqdm notebook bar that is not displayed on its own: the app puts its widget in the tab."""
    from tqdm.notebook import tqdm

    return tqdm(total=total, desc=title, display=False, leave=True)


def explore(world: World | None = None, *, cache_dir: str | os.PathLike[str] | None = None,
            device: str | torch.device | None = None, samples_per_class: int = 32, seed: int = 0) -> ExploreApp:
    """Open every linkviz view of ``world`` in one app with a shared unit selection and class filter.

    Only the world samples are made now (a few seconds); each other tab is made the first time it is selected,
    with a progress bar, and its expensive parts (pairs, sweep, change table, segmenter, dissection) are cached
    under ``cache_dir``. In JupyterLab, leave the app as the last expression of a cell; ``voila
    notebooks/explore.ipynb`` serves it as a standalone page.

    Parameters
    ----------
    world : World, optional
        Any :class:`linkviz.World` (default: :func:`linkviz.load_toy_world`). The population, dissection and
        unit-card tabs need the toy world's ground truth and probe set; for other worlds they say why not.
    cache_dir : path, optional
        Cache root (default :func:`linkviz.default_cache_root`, i.e. ``$LINKVIZ_CACHE`` or ``~/.cache/linkviz``).
    device : str or torch.device, optional
        Where latents are made and the link, sweeps and dissection run; default the world's generator's device.
    samples_per_class : int
        Pairs per class the link is fitted on.
    seed : int
        Seed of the pairs and the world samples.

    Returns
    -------
    ExploreApp
    """
    return ExploreApp(world, cache_dir=cache_dir, device=device, samples_per_class=samples_per_class, seed=seed)

