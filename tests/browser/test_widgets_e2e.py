"""Every linkviz widget in a real front end: JupyterLab, headless Chromium, one user action each.

One notebook holds all nine widgets (built by e2e_widgets.py in the kernel); the module opens it once and runs it.
Each test checks that its widget rendered, does one thing a user does (pick, drag, click, type) and waits for the
view to change: the image's ``src`` (a new blob: URL) and its pixels. Screenshots of each widget before and after
go to the test's ``tmp_path``. Then: the export button writes a PDF, an inline matplotlib figure still renders
after ``import linkviz.widgets``, and the notebook saved from Lab exports to HTML that shows the widgets offline
in the state the user left them in.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from lab_session import (
    PATH_CELL,
    STEP_MS,
    cell_output,
    missing,
    open_notebook,
    open_offline,
    outputs_text,
    save_notebook,
)

if missing():
    pytest.skip(missing(), allow_module_level=True)
from playwright.sync_api import expect  # after the skip: playwright may be missing

NOTEBOOK = "widgets.ipynb"
CELLS = {
    "setup": PATH_CELL + "\n%matplotlib inline\nimport matplotlib.pyplot as plt\nimport e2e_widgets as e2e",
    "world_browser": "world_browser = e2e.world_browser()\nworld_browser",
    "unit_tuner": "tuner = e2e.unit_tuner()\ntuner",
    "link_explorer": "explorer = e2e.link_explorer()\nexplorer",
    "counterfactual_explorer": "counterfactual = e2e.counterfactual_explorer()\ncounterfactual",
    "population_dashboard": "dashboard = e2e.population_dashboard()\ndashboard",
    "tsne_target": "print(e2e.tsne_target(dashboard))",
    "label_painter": "painter = e2e.label_painter()\npainter",
    "dissection_browser": "dissection = e2e.dissection_browser()\ndissection",
    "filter_explainer": "explainer = e2e.filter_explainer()\nexplainer",
    "unit_card": "card = e2e.unit_card()\ncard",
    # after the import and after every widget (the dashboard's ipympl canvas included): inline figures still show
    "matplotlib": "plt.plot([0, 1, 4, 9], marker='o')\nplt.gcf()",
}
INDEX = {name: k for k, name in enumerate(CELLS)}
SNAPSHOT_IN_LAB = """([index, text]) => {
    const outputs = window.jupyterapp.shell.currentWidget.content.widgets[index].model.outputs;
    for (let k = 0; k < outputs.length; k++) {
        const snapshot = outputs.get(k).data['application/vnd.linkviz.snapshot+json'];
        if (snapshot && snapshot.html.includes(text)) return true;
    }
    return false;
}"""
WIDGETS = [name for name in CELLS if name not in ("setup", "tsne_target", "matplotlib")]


@pytest.fixture(scope="module")
def page(lab, browser):
    page = open_notebook(lab, browser, NOTEBOOK, list(CELLS.values()))
    yield page
    page.close()


def output(page, name: str):
    return cell_output(page, INDEX[name])


def rendered_image(page, name: str, *, nth: int = 0):
    """The widget's ``nth`` image, once visible (with the cell's outputs in the message if it never shows)."""
    image = output(page, name).locator("img.widget-image").nth(nth)
    try:
        expect(image).to_be_visible(timeout=STEP_MS)
    except AssertionError:
        raise AssertionError(f"{name} did not render; cell outputs: {outputs_text(page)}") from None
    image.scroll_into_view_if_needed()
    expect(image).to_have_js_property("complete", True)
    return image


def changed(image, src_before: str, pixels_before: bytes) -> None:
    """The image got a new URL (blob: URLs change on every update) and different pixels."""
    expect(image).not_to_have_attribute("src", src_before, timeout=STEP_MS)
    deadline = time.monotonic() + STEP_MS / 1000
    while image.screenshot() == pixels_before:  # the new blob may still be decoding
        assert time.monotonic() < deadline, "the image URL changed but its pixels did not"
        time.sleep(0.2)


def shoot(page, name: str, path) -> None:
    area = output(page, name)
    area.scroll_into_view_if_needed()
    area.screenshot(path=path)


def labelled(area, kind: str, label: str):
    """The control of an ipywidgets ``kind`` (dropdown, slider, text...) whose description is ``label``."""
    return area.locator(f".widget-{kind}").filter(has=area.page.locator(f"label:text-is('{label}')")).first


def test_world_browser_class_pick(page, tmp_path):
    area = output(page, "world_browser")
    image = rendered_image(page, "world_browser")
    summary = area.locator(".widget-html", has_text="generated")
    shown_class = summary.locator("i")  # "<b>k/n</b> generated <i>CLASS</i> samples classified as ..."
    expect(shown_class).to_have_text("mushroom")
    picker = labelled(area, "dropdown", "class").locator("select")
    assert picker.input_value() == "mushroom"
    select = picker.element_handle()  # this very element must survive the snapshot's updates
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "world_browser", tmp_path / "world_browser_before.png")
    picker.select_option("house")  # the kernel recomputes the samples
    expect(shown_class).to_have_text("house")
    changed(image, src, pixels)
    shoot(page, "world_browser", tmp_path / "world_browser_house.png")
    # The snapshot output beside the view follows in Lab's notebook model, renders nothing (no height), and its
    # updates leave the live view alone (the same <select> element, still on the page).
    page.wait_for_function(SNAPSHOT_IN_LAB, arg=[INDEX["world_browser"], "generated <i>house</i>"], timeout=STEP_MS)
    heights = area.evaluate("area => Array.from(area.children).filter(child => child.classList.contains("
                            "'jp-OutputArea-child') || !child.className.startsWith('jp-')).map("
                            "child => child.getBoundingClientRect().height)")
    assert len(heights) == 2 and heights[0] > 100 and heights[1] == 0, heights
    assert select.evaluate("select => select.isConnected && select.value === 'house'")


def press_slider(area, label: str, key: str) -> None:
    """Focus the handle of the slider ``label`` and press ``key`` (Home, End, arrows), as a keyboard user does."""
    handle = labelled(area, "slider", label).locator(".noUi-handle")
    handle.focus()
    handle.press(key)


def test_unit_tuner_value_slider(page, tmp_path):
    area = output(page, "unit_tuner")
    image = rendered_image(page, "unit_tuner")
    readout = labelled(area, "slider", "value").locator(".widget-readout")
    value_before = readout.inner_text()
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "unit_tuner", tmp_path / "unit_tuner_before.png")
    press_slider(area, "value", "End")  # the unit's largest observed value
    expect(readout).not_to_have_text(value_before)
    changed(image, src, pixels)
    shoot(page, "unit_tuner", tmp_path / "unit_tuner_max.png")


def test_link_explorer_example_slider(page, tmp_path):
    area = output(page, "link_explorer")
    image = rendered_image(page, "link_explorer")
    expect(area.locator(".widget-html table").first).to_contain_text("0")
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "link_explorer", tmp_path / "link_explorer_before.png")
    press_slider(area, "example", "End")  # the last test pair
    expect(labelled(area, "slider", "example").locator(".widget-readout")).to_have_text("9")
    changed(image, src, pixels)
    shoot(page, "link_explorer", tmp_path / "link_explorer_last.png")


def test_counterfactual_scrubber(page, tmp_path):
    area = output(page, "counterfactual_explorer")
    image = rendered_image(page, "counterfactual_explorer")
    expect(area).to_contain_text("alpha = 1.00")  # the search's end is shown first
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "counterfactual_explorer", tmp_path / "counterfactual_end.png")
    press_slider(area, "alpha step", "Home")  # back to the linked original
    expect(area).to_contain_text("alpha = 0.00")
    changed(image, src, pixels)
    shoot(page, "counterfactual_explorer", tmp_path / "counterfactual_start.png")
    area.get_by_role("button", name="smallest change").click()  # the closest realistic counterfactual
    expect(area).to_contain_text("Smallest-change search")
    expect(area.get_by_role("checkbox", name="keep realistic")).to_be_disabled()  # always realistic
    shoot(page, "counterfactual_explorer", tmp_path / "counterfactual_minimal.png")


def shows_colour(png: bytes, rgb: tuple[int, int, int], *, tolerance: int = 12, pixels: int = 6) -> bool:
    """Whether at least ``pixels`` pixels of the PNG screenshot are within ``tolerance`` of the colour ``rgb``."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int((np.abs(image - np.array(rgb)).max(axis=-1) <= tolerance).sum()) >= pixels


def test_population_dashboard_tsne_click_selects_a_unit(page, tmp_path):
    area = output(page, "population_dashboard")
    rendered_image(page, "population_dashboard")
    target = output(page, "tsne_target")
    expect(target).to_contain_text('"unit"')
    where = json.loads(target.inner_text().strip())
    canvas = area.locator(".jupyter-matplotlib-canvas-div canvas").last  # the top canvas gets the mouse
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    pixels = canvas.screenshot()
    shoot(page, "population_dashboard", tmp_path / "population_before.png")
    canvas.click(position={"x": where["left"] * box["width"], "y": where["top"] * box["height"]})
    expect(area.locator(".widget-html").filter(has_text=re.compile(rf"unit\s+{where['unit']}\b")).first
           ).to_be_visible()
    deadline = time.monotonic() + STEP_MS / 1000
    while canvas.screenshot() == pixels:  # the ring moves to the clicked point
        assert time.monotonic() < deadline, "the tSNE canvas did not redraw the selection ring"
        time.sleep(0.2)
    shoot(page, "population_dashboard", tmp_path / f"population_unit{where['unit']}.png")
    # colour the map by method agreement: the canvas redraws, and picking a flagged unit selects it
    area.locator(".widget-toggle-button", has_text="method agreement").click()
    deadline = time.monotonic() + STEP_MS / 1000
    while not shows_colour(canvas.screenshot(), (0xd7, 0x30, 0x27)):  # "all disagree" red of AGREEMENT_COLOURS
        assert time.monotonic() < deadline, "the tSNE canvas was not recoloured by agreement"
        time.sleep(0.2)
    expect(area.locator(".widget-html", has_text="all disagree").first).to_be_visible()
    area.locator(".widget-select select").last.select_option(
        label="unit 102: all disagree; dissection mouth, lavise ear, tuning nose")
    expect(area.locator(".widget-html").filter(has_text=re.compile(r"unit\s+102\b")).first).to_be_visible()
    shoot(page, "population_dashboard", tmp_path / "population_agreement.png")


def test_label_painter_brush_click(page, tmp_path):
    area = output(page, "label_painter")
    image = rendered_image(page, "label_painter")
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "label_painter", tmp_path / "label_painter_before.png")
    area.locator(".widget-gridbox").get_by_role("button", name="0", exact=True).click()  # superpixel 0 -> ear
    expect(area).to_contain_text("pixels changed")
    changed(image, src, pixels)
    shoot(page, "label_painter", tmp_path / "label_painter_painted.png")


def test_dissection_browser_search(page, tmp_path):
    area = output(page, "dissection_browser")
    rendered_image(page, "dissection_browser")  # the IoU bar graph
    cards = area.locator(".widget-html").filter(has=page.locator("img")).first  # the unit cards
    expect(area).to_contain_text("3 units match")
    pixels = cards.screenshot()
    shoot(page, "dissection_browser", tmp_path / "dissection_all.png")
    search = labelled(area, "text", "search").locator("input")
    search.fill("2")
    search.press("Enter")  # only unit 2's card
    expect(area).to_contain_text(re.compile(r"\b1 units? match"))
    deadline = time.monotonic() + STEP_MS / 1000
    while cards.screenshot() == pixels:
        assert time.monotonic() < deadline, "the cards did not change"
        time.sleep(0.2)
    shoot(page, "dissection_browser", tmp_path / "dissection_unit2.png")


def test_filter_explainer_unit_pick(page, tmp_path):
    area = output(page, "filter_explainer")
    image = rendered_image(page, "filter_explainer")
    expect(area).to_contain_text("red")
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "filter_explainer", tmp_path / "filter_explainer_unit0.png")
    labelled(area, "dropdown", "unit").locator("select").select_option(index=1)  # unit 2, the blue one
    expect(area.locator(".widget-html b", has_text="blue").first).to_be_visible()
    changed(image, src, pixels)
    shoot(page, "filter_explainer", tmp_path / "filter_explainer_unit2.png")


def test_unit_card_unit_typed(page, tmp_path):
    area = output(page, "unit_card")
    image = rendered_image(page, "unit_card")  # the card's top images (the tuner's image comes after)
    expect(area).to_contain_text("red")
    src, pixels = image.get_attribute("src"), image.screenshot()
    shoot(page, "unit_card", tmp_path / "unit_card_unit0.png")
    unit = labelled(area, "text", "unit").locator("input").first
    unit.fill("2")
    unit.press("Enter")
    expect(area.locator(".widget-html b", has_text="blue").first).to_be_visible()
    changed(image, src, pixels)
    shoot(page, "unit_card", tmp_path / "unit_card_unit2.png")


def test_export_button_writes_a_pdf(page, lab, tmp_path):
    area = output(page, "unit_tuner")
    rendered_image(page, "unit_tuner")
    name = labelled(area, "text", "file").locator("input")
    name.fill("tuner-e2e.pdf")
    name.press("Enter")
    area.get_by_role("button", name="export").click()
    expect(area).to_contain_text("tuner-e2e.pdf")
    expect(area).to_contain_text("wrote")
    pdf = lab.root / "tuner-e2e.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.with_suffix(".csv").exists()
    shoot(page, "unit_tuner", tmp_path / "unit_tuner_exported.png")


def test_matplotlib_inline_figure_renders_after_import(page, tmp_path):
    figure = output(page, "matplotlib").locator(".jp-RenderedImage img").first  # (shown twice: result + flush)
    expect(figure).to_be_visible()
    assert figure.evaluate("img => img.naturalWidth * img.naturalHeight") > 0
    shoot(page, "matplotlib", tmp_path / "matplotlib_inline.png")


def test_saved_notebook_exports_offline_as_the_user_left_it(page, lab, browser, tmp_path):
    """The user changes a widget, saves the notebook in Lab and exports it: offline, every widget shows, and the
    snapshot shows the state after the change, not the state at the cell's run."""
    from linkviz_nbconvert import LinkvizHTMLExporter  # what linkviz.widgets.export_html runs (without torch)

    area = output(page, "world_browser")
    rendered_image(page, "world_browser")
    labelled(area, "dropdown", "class").locator("select").select_option("flower")
    expect(area.locator(".widget-html i", has_text="flower").first).to_be_visible()
    saved = save_notebook(page, lab.root / NOTEBOOK, contains="generated <i>flower</i>")
    snapshots = [o for cell in saved["cells"] for o in cell.get("outputs", [])
                 if "application/vnd.linkviz.snapshot+json" in o.get("data", {})]
    assert len(snapshots) == len(WIDGETS)

    html = tmp_path / "widgets.html"
    html.write_text(LinkvizHTMLExporter().from_filename(str(lab.root / NOTEBOOK))[0], encoding="utf-8")
    offline = open_offline(browser, html)
    try:
        snapshots = offline.page.locator(".linkviz-snapshot")
        expect(snapshots).to_have_count(len(WIDGETS))
        for k in range(len(WIDGETS)):
            expect(snapshots.nth(k)).to_be_visible()
            assert offline.image_sizes(snapshots.nth(k)), f"snapshot {k} ({WIDGETS[k]}) shows no image"
        world = snapshots.nth(WIDGETS.index("world_browser"))
        expect(world).to_contain_text("generated flower samples")  # the state the user left
        figure = offline.page.locator(".jp-RenderedImage img").first  # the inline matplotlib figure
        assert figure.evaluate("img => img.naturalWidth") > 0
        assert offline.blocked, "the export asked for nothing outside the file (expected its CDN scripts)"
        offline.page.screenshot(path=tmp_path / "widgets_offline.png", full_page=True)
    finally:
        offline.page.close()
