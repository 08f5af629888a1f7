"""DissectionBrowsing without ipywidgets, on the colour world: unit c detects colour c (top images c, c+3, c+6)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from linkviz.controllers import DissectionBrowsing, DissectionPage, filter_units
from linkviz.dissection import dissect
from linkviz.dissection.report import unit_images

COLOURS = ("red", "green", "blue")


def test_a_page_shows_each_units_label_and_its_top_images(colour_world, axis_labels):
    result, probe = colour_world
    browsing = DissectionBrowsing(result, probe, k=2)
    assert browsing.layers == ("2",)
    page = browsing.compute("2", order="unit")
    assert isinstance(page, DissectionPage)
    assert page.units == (0, 1, 2) and page.matching == 3 and (page.page, page.pages) == (0, 1)
    assert page.table.label.tolist() == ["red-c", "green-c", "blue-c"]
    for unit in range(3):  # ground truth: the images holding the unit's colour
        assert set(page.images[unit]) <= {unit, unit + 3, unit + 6}
        np.testing.assert_array_equal(page.images[unit], unit_images(result, probe, unit, k=2).indices)
    zoom = 64 // 8
    assert page.grid.shape == ((3 * 9 - 1) * zoom, (2 * 9 - 1) * zoom, 3) and (page.rows, page.columns) == (3, 2)
    strip = unit_images(result, probe, 1, k=2).overlays()
    np.testing.assert_array_equal(page.grid[9 * zoom::zoom, ::zoom][:8, :8], strip[0])
    assert "3 units match; page 1 of 1" in page.caption and "<b>2</b>" in page.caption_html
    assert page.cards_html.count("data:image/png;base64,") == 3
    assert f"IoU {result.to_frame().iou[0]:.3f}" in page.cards_html

    frame = page.to_frame()
    assert len(frame) == 3 * 2 and frame.columns.tolist() == [
        "layer", "position", "unit", "label", "category", "iou", "is_detector", "dead", "causal_score",
        "causal_ci_low", "causal_ci_high", "rank", "image", "maximum"]
    assert frame.groupby("unit").label.first().tolist() == ["red-c", "green-c", "blue-c"]
    np.testing.assert_array_equal(frame.image, page.images.ravel())
    np.testing.assert_allclose(frame.maximum, result.image_max[page.images.ravel(), frame.unit])

    figure = page.figure()
    rows, columns = axis_labels(figure)
    assert isinstance(figure, Figure) and len(rows) == 3 and columns == ["top 1", "top 2"]
    assert rows[0].startswith("unit 0: red")


def test_sort_filter_search_and_pages(colour_world):
    result, probe = colour_world
    browsing = DissectionBrowsing({"a": result, "b": result}, probe, k=1, per_page=2)
    assert browsing.show_options("b") == ["all units", "detectors", "color"]
    by_iou = browsing.compute("a", order="iou")
    assert by_iou.units == tuple(result.to_frame().sort_values("iou", ascending=False, kind="stable").unit[:2])
    second = browsing.compute("a", order="unit", page=1)
    assert second.units == (2,) and (second.page, second.pages) == (1, 2) and "page 2 of 2" in second.caption
    assert browsing.compute("a", order="unit", page=7).page == 1  # clamped
    detectors = set(np.nonzero(result.is_detector)[0].tolist())
    assert set(browsing.compute("b", show="detectors").units) <= detectors
    assert browsing.compute("b", order="unit", search="GREEN").units == (1,)
    assert browsing.compute("b", order="unit", search="2, red").units == (0, 2)
    assert browsing.matching("b", order="unit", show="color").unit.tolist() == sorted(detectors)

    empty = browsing.compute("a", search="no such concept")
    assert empty.units == () and empty.matching == 0 and empty.cards_html == "" and empty.to_frame().empty
    assert "0 units match" in empty.caption and isinstance(empty.figure(), Figure)


def test_bar_graph_and_bad_input(colour_world, colour_model):
    result, probe = colour_world
    browsing = DissectionBrowsing(result, probe)
    figure = browsing.bar_figure("2")
    assert isinstance(figure, Figure)
    bars = figure.axes[0].patches
    assert sorted(round(bar.get_height()) for bar in bars) == sorted(result.detectors_per_concept().units)
    png = browsing.bar_png("2")
    assert browsing.bar_png("2") is png and Image.open(io.BytesIO(png)).format == "PNG"
    with pytest.raises(ValueError, match="at least one"):
        DissectionBrowsing({}, probe)
    with pytest.raises(ValueError, match="positive"):
        DissectionBrowsing(result, probe, per_page=0)
    with pytest.raises(ValueError, match="order"):
        browsing.compute("2", order="random")
    bare = dissect(colour_model, "2", probe, quantile=0.1, progress=False, top_k=0)
    with pytest.raises(ValueError, match="no top images"):
        DissectionBrowsing({"bare": bare}, probe)


def test_filter_units_by_category():
    frame = pd.DataFrame({"unit": [0, 1, 2], "label": ["sky-s", "red-c", "none"],
                          "category": ["scene", "color", "none"], "is_detector": [True, False, False]})
    assert filter_units(frame, show="scene").unit.tolist() == [0]
    assert filter_units(frame, show="color").unit.tolist() == []
    assert filter_units(frame, search="sky, 1").unit.tolist() == [0, 1]


def test_cards_embed_the_unit_strip_exactly(colour_world):
    result, probe = colour_world
    page = DissectionBrowsing(result, probe, k=3).compute("2", order="unit")
    first = page.cards_html.split("base64,")[1].split('"')[0]
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(first))).convert("RGB"))
    zoom = shown.shape[0] // 8
    np.testing.assert_array_equal(shown[::zoom, ::zoom][:8, :8], unit_images(result, probe, 0, k=3).overlays()[0])


def test_cards_show_the_causal_score_of_each_units_label(colour_world):
    result, probe = colour_world
    scores = pd.DataFrame({"unit": [0, 1], "label": ["red-c", "sky"], "score": [0.25, 0.5],
                           "ci_low": [0.2, 0.4], "ci_high": [0.3, 0.6]})
    page = DissectionBrowsing(result, probe, k=2, causal_scores=scores).compute(result.layer, order="unit")
    assert page.table.causal_score.tolist()[0] == 0.25 and np.isnan(page.table.causal_score.tolist()[1])
    assert "causal +0.25 [+0.2, +0.3]" in page.cards_html and "causal not scored" in page.cards_html
    assert page.to_frame().causal_ci_high.tolist()[:2] == [0.3, 0.3]
    assert "causal" not in DissectionBrowsing(result, probe, k=2).compute(result.layer).cards_html
    with pytest.raises(ValueError, match="not among the results"):
        DissectionBrowsing(result, probe, causal_scores={"other": scores})
