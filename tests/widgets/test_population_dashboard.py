"""PopulationDashboard driven from Python, on change tables with planted structure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ipywidgets as ipw
import numpy as np
import pandas as pd
import pytest
from fake_population import planted_table
from matplotlib.backend_bases import LocationEvent, MouseButton, MouseEvent
from threadpoolctl import threadpool_limits

from linkviz.widgets import PopulationDashboard, UnitTuner

PNG = b"\x89PNG"


@pytest.fixture(autouse=True)
def single_thread():
    with threadpool_limits(limits=1):
        yield


def test_figures_ranking_and_concept_finder_without_a_model():
    units = np.arange(100, 112)
    dashboard = PopulationDashboard(planted_table(units), n_clusters=3, perplexity=3, max_iter=250)
    for image in (dashboard.sparsity_image, dashboard.clustermap_image):
        assert bytes(image.value).startswith(PNG)
    listed = [value for _, value in dashboard.units.options]
    assert sorted(listed) == units.tolist() and dashboard.units.value == listed[0]
    assert dashboard.tuner is None and "(sparsity " in dashboard.units.options[0][0]
    assert f"unit <b>{listed[0]}</b>" in dashboard.unit_info.value

    clustermap = bytes(dashboard.clustermap_image.value)
    dashboard.n_clusters.value = 2
    assert dashboard.wait_idle(60) and dashboard.clustermap_image.value != clustermap

    dashboard.concept_label.value, dashboard.concept_metric.value = "eye", "luminance"
    dashboard.concept_sign.value = -1
    dashboard.find_button.click()
    assert dashboard.wait_idle(60) and dashboard.error.value == ""
    assert dashboard.rank_by.value == "concept"
    found = dashboard.concept
    assert set(found["unit"].iloc[:4]) == set(units[1::3]) and (found["effect"].iloc[:4] > 0.3).all()  # eye darkens
    assert [value for _, value in dashboard.units.options] == found["unit"].tolist()
    assert dashboard.units.value == found["unit"].iloc[0]  # the strongest unit is opened
    assert f"<b>luminance</b> of <b>eye</b> decreases: {len(found)} units" in dashboard.concept_table.value
    assert "effect [CI]" in dashboard.concept_table.value and "selectivity" in dashboard.units.options[0][0]

    outside = next(int(unit) for unit in units if unit not in set(found["unit"]))
    dashboard.select_unit(outside)  # not in the concept list: back to the full ranking
    assert dashboard.wait_idle(60)
    assert dashboard.rank_by.value == "sparsity" and dashboard.units.value == outside
    ring = dashboard.embedding.coordinates[dashboard.embedding.units.tolist().index(outside)]
    np.testing.assert_allclose(dashboard._ring.get_offsets()[0], ring)  # the ring moved
    with pytest.raises(ValueError, match="not in the table"):
        dashboard.select_unit(7)

    bundle = dashboard._repr_mimebundle_()
    assert bundle["text/html"].count("data:image/png;base64,") == 3


def click(canvas, x: float, y: float, button: MouseButton = MouseButton.LEFT) -> None:
    """What ipympl does when the browser reports a click at display position (x, y)."""
    MouseEvent("button_press_event", canvas, x, y, button=button)._process()


def test_clicking_a_tsne_point_selects_its_unit():
    units = np.arange(100, 112)
    dashboard = PopulationDashboard(planted_table(units), n_clusters=3, perplexity=3, max_iter=250)
    canvas = dashboard.embedding_canvas
    assert isinstance(canvas, ipw.DOMWidget) and canvas in dashboard.children[0].children
    canvas.draw()
    to_display = dashboard._embedding_axes.transData.transform
    for index in (3, 7, 10):
        unit = int(dashboard.embedding.units[index])
        x, y = to_display(dashboard.embedding.coordinates[index])
        click(canvas, x + 2.0, y - 2.0)  # a little off the point's centre
        assert dashboard.units.value == unit
        np.testing.assert_allclose(dashboard._ring.get_offsets()[0], dashboard.embedding.coordinates[index])
        assert f"unit <b>{unit}</b>" in dashboard.unit_info.value
    chosen = dashboard.units.value
    points = to_display(dashboard.embedding.coordinates)
    empty = np.array([points[:, 0].min() - 40.0, points[:, 1].min() - 40.0])
    assert dashboard.unit_near(*empty) is None
    click(canvas, *empty)  # no point there: nothing changes
    x, y = points[0]
    click(canvas, x, y, button=MouseButton.RIGHT)  # only the left button selects
    assert dashboard.units.value == chosen


def test_selected_unit_opens_in_a_tuner_with_arrows_and_parts(linked):
    def segmenter(images):
        return (images[..., 0] > 127).astype(np.int64)

    dashboard = PopulationDashboard(planted_table(np.array([0, 1, 2, 5])), linked=linked, segmenter=segmenter,
                                    part_labels=("background", "red"), seeds=(0, 1, 99), n_clusters=2)
    tuner = dashboard.tuner
    assert isinstance(tuner, UnitTuner) and tuner.arrows.value and tuner.parts.value
    assert tuner.shown.arrows and tuner.shown.parts and tuner.shown.seeds == (0, 1)  # seed 99 is not a base pair
    first = dashboard.units.value
    assert tuner.shown.unit == (first if first < 3 else 0)
    other = next(unit for unit in (0, 1, 2) if unit != tuner.shown.unit)
    dashboard.units.value = other
    assert dashboard.wait_idle(60)
    assert tuner.unit.value == tuner.shown.unit == other and tuner.shown.arrows and tuner.shown.parts
    dashboard.select_unit(5)  # in the table but not a unit of the 3-unit model
    assert "out of range" in dashboard.error.value and tuner.shown.unit == other
    bundle = dashboard._repr_mimebundle_()
    assert "data:image/jpeg;base64," in bundle["text/html"] and "effect size" in bundle["text/html"]


_BACKEND_CHECK = """
import sys
import matplotlib
matplotlib.use(sys.argv[1])
if sys.argv[1] == "agg":
    import matplotlib.pyplot as plt
    plt.figure()  # the user's own figure: switching the backend would close it
before = matplotlib.get_backend()
import linkviz.widgets
after_import = matplotlib.get_backend()
assert "ipympl" not in sys.modules, "importing linkviz.widgets loaded ipympl"
import numpy as np
import pandas as pd
rng = np.random.default_rng(0)
unit, seed, step, label, metric = (a.ravel() for a in np.meshgrid(np.arange(6), np.arange(3), np.arange(2),
                                                                     np.arange(3), np.arange(2), indexing="ij"))
table = pd.DataFrame({"unit": unit, "seed": seed, "step": step, "label": np.array(["a", "b", "c"])[label],
                      "metric": np.array(["area", "luminance"])[metric], "change": rng.normal(size=unit.size) * step})
dashboard = linkviz.widgets.PopulationDashboard(table, n_clusters=2, perplexity=2, max_iter=250)
assert "ipympl" in sys.modules and dashboard.embedding_canvas is not None
figures = __import__("matplotlib.pyplot").pyplot.get_fignums() if sys.argv[1] == "agg" else [1]
print(before, after_import, matplotlib.get_backend(), figures)
"""


@pytest.mark.parametrize("backend", ["agg", "module://matplotlib_inline.backend_inline"])
def test_importing_the_widgets_and_making_a_dashboard_keep_the_matplotlib_backend(backend):
    """ipympl is imported only for the tSNE canvas, and without switching the backend (inline plots keep showing)."""
    env = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    result = subprocess.run([sys.executable, "-c", _BACKEND_CHECK, backend], capture_output=True, text=True,
                            env=env, cwd=Path(__file__).resolve().parents[2], timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    before, after_import, after_dashboard, figures = result.stdout.split(maxsplit=3)
    assert before == after_import == after_dashboard == backend
    assert figures.strip() == "[1]"  # pyplot's figures survive


def test_export_writes_the_population_figure_and_its_per_unit_table(tmp_path):
    units = np.arange(100, 106)
    dashboard = PopulationDashboard(planted_table(units), n_clusters=3, perplexity=2, max_iter=250)
    dashboard.select_unit(103)
    figure, table = dashboard.export(tmp_path / "population.png")
    assert figure.read_bytes().startswith(PNG) and table.suffix == ".csv"
    frame = pd.read_csv(table)
    assert frame["unit"].tolist() == units.tolist() and frame.loc[frame["selected"], "unit"].tolist() == [103]
    assert frame["cluster"].nunique() == 3 and dashboard.shown.selected == 103


def move(canvas, x: float, y: float) -> None:
    """What ipympl does when the browser reports the mouse at display position (x, y)."""
    MouseEvent("motion_notify_event", canvas, x, y)._process()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_the_tsne_canvas_is_large_with_its_legend_outside_and_its_title_inside():
    dashboard = PopulationDashboard(planted_table(np.arange(100, 112)), n_clusters=3, perplexity=3, max_iter=250)
    figure = dashboard.embedding_canvas.figure
    width, height = figure.get_size_inches() * figure.dpi
    assert width >= 480 and height >= 360  # was 360 x 288
    dashboard.embedding_canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = dashboard._embedding_axes
    legend, title = ax.get_legend().get_window_extent(renderer), ax.title.get_window_extent(renderer)
    assert not _overlap(legend, ax.get_window_extent(renderer))  # the legend covers no point
    for box in (legend, title):  # nothing clipped at the canvas's edges
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1


def test_hovering_over_a_tsne_point_names_its_unit():
    units = np.arange(100, 112)
    dashboard = PopulationDashboard(planted_table(units), n_clusters=3, perplexity=3, max_iter=250)
    canvas = dashboard.embedding_canvas
    canvas.draw()
    to_display = dashboard._embedding_axes.transData.transform
    label = dashboard._hover_label
    assert not label.get_visible()
    for index in (2, 9):
        unit = int(dashboard.embedding.units[index])
        x, y = to_display(dashboard.embedding.coordinates[index])
        move(canvas, x + 1.0, y + 1.0)
        assert dashboard.hovered == unit and label.get_visible()
        assert label.get_text() == f"unit {unit}: {dashboard.embedding.strongest_label[index]}"
        np.testing.assert_allclose(label.xy, dashboard.embedding.coordinates[index])
    selected = dashboard.units.value
    points = to_display(dashboard.embedding.coordinates)
    move(canvas, points[:, 0].min() - 40.0, points[:, 1].min() - 40.0)  # away from every point
    assert dashboard.hovered is None and not label.get_visible()
    assert dashboard.units.value == selected  # hovering selects nothing
    move(canvas, x + 1.0, y + 1.0)
    assert label.get_visible()
    canvas.callbacks.process("figure_leave_event", LocationEvent("figure_leave_event", canvas, x + 1.0, y + 1.0))
    assert dashboard.hovered is None and not label.get_visible()  # the mouse left the page's canvas on a point


def test_the_concept_finder_wraps_instead_of_scrolling_and_counts_units_in_the_singular():
    dashboard = PopulationDashboard(planted_table(np.arange(100, 112)), n_clusters=3, perplexity=3, max_iter=250,
                                    top=1)
    row = next(child for child in dashboard.children if dashboard.concept_box in getattr(child, "children", ()))
    assert row.layout.flex_flow == "row wrap" and dashboard.children[0].layout.flex_flow == "row wrap"
    assert dashboard.concept_box.layout.min_width == "0" and dashboard.unit_info.layout.width == "360px"
    assert dashboard.concept_table.layout.overflow == "auto"
    dashboard.concept_label.value, dashboard.concept_metric.value = "ear", "area"
    dashboard.find_button.click()
    assert dashboard.wait_idle(60) and len(dashboard.concept) == 1
    html = dashboard.concept_table.value
    assert "<b>area</b> of <b>ear</b> increases: 1 unit<" in html and "1 units" not in html
    assert html.count("<th>") == 6 and "effect [CI]" in html  # compact: rank, unit, effect [CI], n, d, selectivity


def test_points_are_found_where_they_are_drawn_before_the_first_draw():
    """The constrained layout is done at construction, so display positions do not move at the first draw."""
    dashboard = PopulationDashboard(planted_table(np.arange(100, 112)), n_clusters=3, perplexity=3, max_iter=250)
    before = dashboard._embedding_axes.transData.transform(dashboard.embedding.coordinates)
    dashboard.embedding_canvas.draw()
    np.testing.assert_allclose(dashboard._embedding_axes.transData.transform(dashboard.embedding.coordinates),
                               before, atol=0.5)


def _agreement(units: np.ndarray):
    """Dissection and LaViSE agree with the planted tuning (ear, eye, nose, ...) except: the second unit's
    dissection says nose (LaViSE and tuning say eye: two agree, flagged), the third's LaViSE says ear and its
    dissection eye (all disagree, flagged)."""
    from linkviz.quantify.method_agreement import concept_vocabulary, method_agreement
    from linkviz.quantify.population import label_vectors

    planted = np.array(["ear", "eye", "nose"] * (len(units) // 3), dtype=object)
    dissection = pd.DataFrame({"unit": units, "label": planted, "iou": 0.2})
    dissection.loc[1, "label"], dissection.loc[2, "label"] = "nose", "eye"
    lavise = pd.DataFrame({"unit": units, "rank": 0, "word": planted})
    lavise.loc[2, "word"] = "ear"
    return method_agreement(vocabulary=concept_vocabulary(parts=("ear", "eye", "nose")), dissection=dissection,
                            lavise=lavise, tuning=label_vectors(planted_table(units)))


def test_the_tsne_is_coloured_by_method_agreement_and_flagged_units_open_on_selection(tmp_path):
    units = np.arange(100, 112)
    plain = PopulationDashboard(planted_table(units), n_clusters=3, perplexity=3, max_iter=250)
    assert plain.colour_by.disabled and plain.agreement_box.layout.display == "none"
    assert plain.flagged_units.options == ()

    dashboard = PopulationDashboard(planted_table(units), n_clusters=3, perplexity=3, max_iter=250,
                                    agreement=_agreement(units))
    assert not dashboard.colour_by.disabled and dashboard.colour_by.value == "strongest_label"
    assert "all agree: 10, two agree: 1, all disagree: 1, not enough labels: 0" in dashboard.agreement_box.info.value
    assert [unit for _, unit in dashboard.flagged_units.options] == [102, 101]  # all disagree first
    canvas, ax = dashboard.embedding_canvas, dashboard._embedding_axes

    dashboard.colour_by.value = "agreement"
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "methods"
    assert [text.get_text() for text in legend.get_texts()] == ["all agree (10)", "two agree (1)",
                                                              "all disagree (1)"]
    positions = ax.transData.transform(dashboard.embedding.coordinates)  # laid out with the new legend before a draw
    canvas.draw()
    np.testing.assert_allclose(ax.transData.transform(dashboard.embedding.coordinates), positions, atol=0.5)
    assert len(ax.collections) == 3 + 1  # the three levels present, and the ring
    index = dashboard.embedding.units.tolist().index(102)
    move(canvas, *ax.transData.transform(dashboard.embedding.coordinates[index]))
    assert dashboard._hover_label.get_text() == "unit 102: all disagree"

    dashboard.flagged_units.value = 101  # choosing a flagged unit selects it
    assert dashboard.wait_idle(60) and dashboard.units.value == 101
    np.testing.assert_allclose(dashboard._ring.get_offsets()[0],
                               dashboard.embedding.coordinates[dashboard.embedding.units.tolist().index(101)])
    assert "methods: <b>two agree</b>" in dashboard.unit_info.value
    assert dashboard.shown.colour_by == "agreement" and dashboard.shown.selected == 101
    figure, table = dashboard.export(tmp_path / "agreement.png")
    frame = pd.read_csv(table)
    assert frame.loc[frame["flagged"], "unit"].tolist() == [101, 102] and "dissenter" in frame
    assert figure.read_bytes().startswith(PNG)

    dashboard.colour_by.value = "strongest_label"  # back: the strongest labels' legend
    assert ax.get_legend().get_title().get_text() == "strongest change" and len(ax.collections) == 3 + 1
