"""ExploreApp (``linkviz.explore``) driven from Python: lazy tabs, one selected unit and one class filter everywhere.

Most tests run on the fake world of :mod:`fake_world` (r has three units), with a planted change table and the
three-unit colour dissection of :mod:`fake_dissection` provided to :class:`ExploreData`, so every tab is made in
milliseconds to seconds; the toy world is used to time the app's construction (and, with ``--run-slow``, to make
every tab from scratch).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import dataclasses

import fake_dissection
import numpy as np
import pytest
import torch
from fake_population import planted_table
from fake_world import FakeWorld
from threadpoolctl import threadpool_limits

from linkviz.controllers import DissectionData, ExploreData, PopulationData, Selection
from linkviz.quantify.method_agreement import concept_vocabulary
from linkviz.widgets import (
    CounterfactualExplorer,
    DissectionBrowser,
    ExploreApp,
    LinkExplorer,
    PopulationDashboard,
    UnitCard,
    UnitTuner,
    WorldBrowser,
)
from linkviz.widgets.app import TABS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def single_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def dissected():
    torch.set_num_threads(1)
    return fake_dissection.colour_world()


@pytest.fixture
def data(fake_world, linked, dissected, tmp_path) -> ExploreData:
    """The fake world with its link, a planted change table of its three units and the colour dissection."""
    result, probe = dissected
    return ExploreData(fake_world, cache_dir=tmp_path, samples_per_class=8).provide(
        linked=linked, population=PopulationData(table=planted_table(np.arange(3))),
        dissection=DissectionData(result=result, probe=probe, layer="2"))


@pytest.fixture
def app(data) -> ExploreApp:
    return ExploreApp(data=data, background=False, n_samples=3)


def wait(app: ExploreApp) -> None:
    """Every made view has shown its latest request."""
    for view in app.views.values():
        if view is not None and hasattr(view, "wait_idle"):
            assert view.wait_idle(60)


# --- the shared state ---


def test_selection_tells_observers_once_per_change_and_checks_units_and_classes():
    selection = Selection(("a", "b", "c"))
    heard: list = []
    stop = selection.observe(heard.append)
    selection.observe(lambda classes: heard.append(("classes", classes)), "classes")
    assert selection.unit is None and selection.shown_classes == ("a", "b", "c") and selection.classes == ()
    assert selection.select_unit(np.int64(7)) and not selection.select_unit(7)  # no echo for the same unit
    assert selection.select_classes(["c", "a", "a"]) and selection.classes == ("a", "c")
    assert selection.class_indices == (0, 2) and not selection.select_classes(("a", "c"))
    assert heard == [7, ("classes", ("a", "c"))]
    selection.n_units = 10
    with pytest.raises(IndexError, match="unit 10 out of range"):
        selection.select_unit(10)
    with pytest.raises(ValueError, match="integers"):
        selection.select_unit(2.0)
    with pytest.raises(ValueError, match="unknown classes"):
        selection.select_classes(["d"])
    with pytest.raises(IndexError):
        selection.n_units = 5  # the selected unit 7 would be out of range
    stop()
    selection.select_unit(3)
    assert heard[-1] == ("classes", ("a", "c")) and selection.unit == 3


def test_an_observer_that_reselects_stops_the_stale_round():
    selection = Selection(("a", "b"))
    heard: list = []
    selection.observe(lambda unit: selection.select_unit(5) if unit == 4 else None)
    selection.observe(heard.append)
    selection.select_unit(4)
    assert selection.unit == 5 and heard == [5]  # the second observer never hears the stale 4


# --- lazy tabs ---


def test_only_the_world_samples_are_made_with_the_app(fake_world, linked, tmp_path):
    data = ExploreData(fake_world, cache_dir=tmp_path, samples_per_class=8)
    app = ExploreApp(fake_world, data=data, background=False, n_samples=3)
    assert app.built == ("world",) and data.made == ()
    assert isinstance(app.views["world"], WorldBrowser) and app.tabs.selected_index == 0
    assert [app.tabs.get_title(i) for i in range(len(TABS))] == [
        "world samples", "link quality", "unit tuning", "counterfactuals", "population", "dissection", "unit card"]
    assert "made when this tab is first selected" in app.tabs.children[2].children[0].value

    tuner = app.select_tab("tuning")
    assert isinstance(tuner, UnitTuner) and app.built == ("world", "tuning") and data.made == ("linked",)
    assert app.tabs.children[2].children == (tuner,)
    assert app.selection.n_units == 3 and app.selection.unit == data.strongest_unit() == tuner.unit.value
    assert isinstance(app.select_tab("link"), LinkExplorer) and data.made == ("linked", "test_pairs")


def test_a_tab_is_made_on_a_worker_thread_when_selected(data):
    app = ExploreApp(data=data, n_samples=3)  # background=True: selecting a tab returns at once
    app.tabs.selected_index = 3
    assert app.wait_built(120)
    assert isinstance(app.views["counterfactuals"], CounterfactualExplorer)
    assert app.tabs.children[3].children == (app.views["counterfactuals"],)
    app.tabs.selected_index = 0
    app.tabs.selected_index = 3  # made once
    assert app.wait_built(10) and app.built == ("world", "counterfactuals")
    wait(app)


def test_tabs_that_need_ground_truth_say_why_for_other_worlds(fake_world, tmp_path):
    data = ExploreData(fake_world, cache_dir=tmp_path, samples_per_class=8)
    app = ExploreApp(fake_world, data=data, background=False, n_samples=3)
    for name in ("population", "dissection", "card"):
        assert app.select_tab(name) is None
        text = app.tabs.children[ExploreApp._index(name)].children[0].value
        assert "not available for this world" in text and "FakeWorld" in text
    assert "part segmenter" in app.tabs.children[4].children[0].value
    assert "probe set" in app.tabs.children[5].children[0].value
    assert data.made == () and app.built == ("world",)


class GreenParts:
    """A segmenter of the fake world's latents: part 1 ("green") where the rendered green channel is bright,
    carrying its measured IoU as a world's segmenter does."""

    def __init__(self):
        self.part_iou = {"green": 0.875}

    def __call__(self, ws):
        green = torch.tanh(torch.as_tensor(ws)[:, 0, 1] / 4) > 0
        return np.broadcast_to(green.numpy()[:, None, None], (len(green), 8, 8)).astype(np.int64)


@dataclass(frozen=True)
class SegmentingFakeWorld:
    """The fake world with the part-segmenter capability (counts how often it is asked for one)."""

    classifier: object
    generator: object
    calls: list = field(default_factory=list)
    class_names: tuple = ("red", "green", "blue")
    part_names: tuple = ("background", "green")

    def part_segmenter(self, *, per_class, seed, cache_dir, device, **options):
        self.calls.append(per_class)
        return GreenParts()


def test_the_tuning_tab_overlays_the_worlds_part_segmenter_with_its_iou(fake_world, linked, tmp_path):
    world = SegmentingFakeWorld(fake_world.classifier, fake_world.generator)
    data = ExploreData(world, cache_dir=tmp_path, samples_per_class=8).provide(linked=linked)
    assert TABS[2].stages(data) == ("segmenter",)
    app = ExploreApp(world, data=data, background=False, n_samples=3)
    tuner = app.select_tab("tuning")
    assert world.calls == [data.segmenter_per_class] and "segmenter" in data.made
    assert not tuner.parts.disabled
    tuner.parts.value = True
    assert tuner.wait_idle(60) and "green (segmenter IoU 0.88)" in tuner.label.value


def test_without_a_segmenter_the_tuning_tab_says_why_parts_are_off(fake_world, linked, tmp_path):
    data = ExploreData(fake_world, cache_dir=tmp_path, samples_per_class=8).provide(linked=linked)
    assert TABS[2].stages(data) == ()
    tuner = ExploreApp(fake_world, data=data, background=False, n_samples=3).select_tab("tuning")
    assert tuner.parts.disabled and "segmenter" in tuner.parts.tooltip


@dataclasses.dataclass(frozen=True)
class WorldWithConcepts(FakeWorld):
    """The fake world with a vocabulary joining the colour dissection's labels to the planted table's parts:
    red is the ear, green the eye, blue the mouth (no unit's tuning changes a mouth)."""

    def concept_vocabulary(self):
        return concept_vocabulary(parts=("ear", "eye", "nose", "mouth"),
                                  aliases={"red-c": "ear", "green-c": "eye", "blue-c": "mouth"})


def test_the_population_tab_colours_units_by_whether_dissection_and_tuning_agree(fake_world, linked, dissected,
                                                                                   tmp_path):
    """Units 0 and 1 are dissected as the colour of the part their tuning changes; unit 2 as a part it leaves alone."""
    result, probe = dissected
    made = dict(linked=linked, population=PopulationData(table=planted_table(np.arange(3))),
                dissection=DissectionData(result=result, probe=probe, layer="2"))
    world = WorldWithConcepts(classifier=fake_world.classifier, generator=fake_world.generator)
    app = ExploreApp(data=ExploreData(world, cache_dir=tmp_path).provide(**made), background=False, n_samples=3)
    agreement = app.select_tab("population").controller.agreement
    assert list(agreement.levels([0, 1, 2])) == ["two agree", "two agree", "all disagree"]
    assert agreement.flagged()["unit"].tolist() == [2]
    assert ExploreData(fake_world, cache_dir=tmp_path).provide(**made).agreement() is None
    assert ExploreData(world, cache_dir=tmp_path).provide(linked=linked, population=made["population"]
                                                          ).agreement() is None


def test_a_failed_tab_shows_the_error_and_is_retried(fake_world, linked, tmp_path):
    class Failing(ExploreData):
        fail = True

        def test_pairs(self):
            if self.fail:
                raise RuntimeError("no held-out pairs today")
            return super().test_pairs()

    data = Failing(fake_world, cache_dir=tmp_path, samples_per_class=8).provide(linked=linked)
    app = ExploreApp(fake_world, data=data, background=False, n_samples=3)
    assert app.select_tab("link") is None
    assert "no held-out pairs today" in app.tabs.children[1].children[0].value
    assert isinstance(app.errors["link"], RuntimeError)
    data.fail = False
    app.select_tab("world")
    assert isinstance(app.select_tab("link"), LinkExplorer) and "link" not in app.errors


# --- one unit everywhere ---


def test_a_unit_chosen_in_any_tab_is_selected_in_every_tab(app):
    views = {name: app.select_tab(name) for name in ("tuning", "population", "dissection", "card")}
    tuner, dashboard, browser, card = views.values()
    assert isinstance(dashboard, PopulationDashboard) and isinstance(browser, DissectionBrowser)
    assert isinstance(card, UnitCard)

    def shown() -> tuple:
        return tuner.unit.value, dashboard.units.value, browser.search.value, card.unit.value, card.tuner.unit.value

    first = app.selection.unit
    assert shown() == (first, first, str(first), first, first)
    for unit, choose in [(2, lambda u: setattr(tuner.unit, "value", u)),
                         (0, lambda u: setattr(card.unit, "value", u)),
                         (1, dashboard.select_unit),
                         (2, lambda u: setattr(browser.search, "value", f" {u} ")),
                         (0, app.select_unit)]:
        choose(unit)
        assert app.selection.unit == unit
        assert shown() == (unit, unit, str(unit), unit, unit)
        assert f"unit <b>{unit}</b> selected in every tab" in app.status.value
    wait(app)
    assert tuner.shown.unit == 0 and card.shown_unit == 0 and dashboard.tuner.shown.unit == 0
    assert browser.shown.units == (0,)


def test_unit_choices_views_cannot_show_are_not_spread(app):
    tuner, browser = app.select_tab("tuning"), app.select_tab("dissection")
    before = app.selection.unit
    tuner.unit.value = 7  # out of range: the tuner shows its error, the selection stays
    assert app.selection.unit == before and "out of range" in tuner.error.value
    browser.search.value = "red"  # a label search selects no unit
    assert app.selection.unit == before
    tuner.unit.value = 1
    assert browser.search.value == "1"


def test_a_tab_made_later_opens_on_the_selected_unit_and_classes(app):
    app.select_tab("tuning").unit.value = 1
    app.select_classes(["blue"])
    card = app.select_tab("card")
    assert card.unit.value == 1 and card.shown_unit == 1
    predicted = app.data.linked().pairs.predicted
    assert {int(predicted[int(s)]) for s in card.tuner.seeds.value.split(",")} == {2}
    wait(app)


# --- classes everywhere ---


def test_choosing_classes_filters_the_world_samples_tuners_and_counterfactuals(app):
    tuner, explorer = app.select_tab("tuning"), app.select_tab("counterfactuals")
    dashboard = app.select_tab("population")
    browser = app.views["world"]
    wait(app)
    first_image = bytes(browser.image.value)
    assert browser.class_picker.value == "red" and list(browser.class_picker.options) == ["red", "green", "blue"]

    app.classes.value = ("green",)  # the user's choice in the filter
    assert app.selection.classes == ("green",) and "showing <b>green</b>" in app.status.value
    assert list(browser.class_picker.options) == ["green"] and browser.class_picker.value == "green"
    assert browser.samples.class_index == 1 and bytes(browser.image.value) != first_image
    predicted = app.data.linked().pairs.predicted
    for seeds in (tuner.seeds.value, dashboard.tuner.seeds.value):
        assert {int(predicted[int(s)]) for s in seeds.split(",")} == {1}
    assert [value for _, value in explorer.origin.options] == [1] and explorer.origin.value == 1
    wait(app)
    assert {int(predicted[s]) for s in tuner.shown.seeds} == {1}

    app.select_classes(["red", "blue"])
    assert tuple(app.classes.value) == ("red", "blue") and list(browser.class_picker.options) == ["red", "blue"]
    assert {int(predicted[int(s)]) for s in tuner.seeds.value.split(",")} == {0, 2}
    app.classes.value = ()
    assert list(browser.class_picker.options) == ["red", "green", "blue"] and "all classes" in app.status.value
    assert {int(predicted[int(s)]) for s in tuner.seeds.value.split(",")} == {0, 1, 2}
    assert tuner.classes.value == () and dashboard.tuner.classes.value == ()
    wait(app)


def test_classes_picked_in_a_tuner_filter_every_tab(app):
    tuner, card = app.select_tab("tuning"), app.select_tab("card")
    browser = app.views["world"]
    tuner.classes.value = (2,)  # the tuner's own class menu
    assert app.selection.classes == ("blue",) and app.classes.value == ("blue",)
    assert list(browser.class_picker.options) == ["blue"] and card.tuner.classes.value == (2,)
    predicted = app.data.linked().pairs.predicted
    assert {int(predicted[int(s)]) for s in card.tuner.seeds.value.split(",")} == {2}
    card.tuner.classes.value = ()
    assert app.selection.classes == () and tuner.classes.value == ()
    wait(app)


# --- the toy world and the package ---


def test_explore_the_toy_world_makes_the_app_in_seconds(tmp_path):
    import linkviz

    toy = linkviz.load_toy_world()
    start = time.perf_counter()
    app = linkviz.explore(toy, cache_dir=tmp_path)
    seconds = time.perf_counter() - start
    assert isinstance(app, ExploreApp) and app.built == ("world",) and app.data.made == ()
    assert seconds < 30, f"the app took {seconds:.1f} s to make"  # about 2 s on an idle laptop core
    assert app.data.unavailable("population") is None and app.data.unavailable("dissection") is None
    assert list(app.classes.options) == list(toy.class_names)


def test_import_linkviz_loads_no_widget_toolkit_until_explore_is_used():
    code = ("import sys, linkviz; assert 'ipywidgets' not in sys.modules; assert 'explore' in dir(linkviz); "
            "from linkviz.widgets.app import explore; assert linkviz.explore is explore; "
            "assert 'ipywidgets' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.slow
def test_every_toy_tab_is_made_from_scratch_and_cached(tmp_path):
    """The real thing: pairs, link, segmenter, sweep, change table, probe and dissection, then all read back."""
    import linkviz

    toy = linkviz.load_toy_world()
    app = ExploreApp(toy, cache_dir=tmp_path, background=False, samples_per_class=20)
    for tab in TABS:
        assert app.select_tab(tab.name) is not None, app.errors.get(tab.name)
    assert app.built == tuple(tab.name for tab in TABS)
    app.select_unit(int(app.views["population"].vectors.units[0]))
    wait(app)
    again = ExploreApp(toy, cache_dir=tmp_path, background=False, samples_per_class=20)
    start = time.perf_counter()
    again.select_tab("population")
    again.select_tab("card")
    assert time.perf_counter() - start < 120 and again.built == ("world", "population", "card")
    wait(again)
