"""DissectionBrowser driven through its traits on a tiny dissected model (red squares on noise)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
import torch
from fake_dissection import red_model, square_probe
from PIL import Image

from linkviz.controllers.dissection_browsing import filter_units
from linkviz.dissection import dissect
from linkviz.dissection.report import summary_table, unit_images
from linkviz.widgets import DissectionBrowser


def decoded(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"))


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(1)
    probe, model = square_probe(), red_model()
    results = {name: dissect(model, name, probe, quantile=0.1, progress=False, top_k=4) for name in ("0", "1")}
    return probe, results


def test_cards_show_labels_iou_and_masked_top_images(world):
    probe, results = world
    browser = DissectionBrowser(results["1"], probe, k=3, order="unit")
    assert browser.layer.options == ("1",)
    assert browser.shown.units == (0, 1, 2) and browser.shown.matching == 3
    frame = results["1"].to_frame()
    assert frame.label[0] in ("square", "red-c")  # the red unit detects the red square
    assert f"IoU {frame.iou[0]:.3f}" in browser.cards.value
    assert "3 units match" in browser.summary.value and "page 1 of 1" in browser.summary.value
    assert browser.cards.value.count("data:image/png;base64,") == 3
    strip = unit_images(results["1"], probe, 0, k=3).overlays()
    first_card = browser.cards.value.split("base64,")[1].split('"')[0]
    shown = decoded(base64.b64decode(first_card))
    zoom = shown.shape[0] // 16
    assert np.array_equal(shown[::zoom, ::zoom][:16, :16], strip[0])
    assert decoded(browser.bars.value).ndim == 3  # the bar graph


def test_sort_filter_search_and_pages(world):
    probe, results = world
    browser = DissectionBrowser(results, probe, k=2, per_page=2)
    browser.order.value = "iou"
    expected = tuple(summary_table(results["0"], order="iou").unit[:2])
    assert browser.shown.units == expected
    browser.page.value = 1
    assert len(browser.shown.units) == 1 and "page 2 of 2" in browser.summary.value
    browser.show.value = "detectors"
    assert browser.page.value == 0  # a new filter starts at the first page
    detectors = set(np.nonzero(results["0"].is_detector)[0].tolist())
    assert set(browser.shown.units) <= detectors
    browser.show.value = "all units"
    browser.search.value = "2"
    assert browser.shown.units == (2,)
    label = results["0"].to_frame().label[0]
    browser.search.value = label.upper()[:3]
    assert 0 in browser.shown.units
    browser.search.value = "no such concept"
    assert browser.shown.units == () and "no unit matches" in browser.cards.value


def test_layer_switcher_changes_result_bars_and_categories(world):
    probe, results = world
    browser = DissectionBrowser(results, probe)
    assert browser.layer.options == ("0", "1")
    browser.show.value = "object"
    browser.layer.value = "1"
    assert browser.result is results["1"] and browser.show.value == "all units"
    assert "<b>1</b>" in browser.summary.value
    assert set(browser.show.options) == {"all units", "detectors", "object", "color", "scene"}


def test_filter_units_by_category():
    frame = pd.DataFrame({"unit": [0, 1, 2], "label": ["sky-s", "red-c", "none"],
                                            "category": ["scene", "color", "none"],
                                            "is_detector": [True, False, False]})
    assert filter_units(frame, show="scene").unit.tolist() == [0]
    assert filter_units(frame, show="color").unit.tolist() == []
    assert filter_units(frame, search="sky, 1").unit.tolist() == [0, 1]


def test_snapshot_and_bad_input(world):
    probe, results = world
    browser = DissectionBrowser(results["0"], probe)
    bundle = browser._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith('<img src="data:image/png;base64,')
    assert browser.cards.value in bundle["text/html"]
    with pytest.raises(ValueError, match="at least one"):
        DissectionBrowser({}, probe)
    with pytest.raises(ValueError, match="order"):
        DissectionBrowser(results["0"], probe, order="random")
    bare = dissect(red_model(), "0", probe, progress=False, top_k=0)
    with pytest.raises(ValueError, match="no top images"):
        DissectionBrowser(bare, probe)
