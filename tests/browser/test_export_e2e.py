"""``jupyter nbconvert --execute --to linkviz_html``: every widget shows offline, in the state the last cell left.

The notebook shows all nine widgets, then changes two of them in a later cell. nbconvert runs it (a kernel of its
own) and writes HTML with the ``linkviz_html`` exporter (an entry point of the package). Chromium opens the file
with every request that is not a file refused, so the widget manager the export asks a CDN for never loads; the
snapshots must show instead, each with its image, and show the changed state. The page's screenshot goes to the
test's ``tmp_path``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from lab_session import PATH_CELL, STEP_MS, missing, open_offline

if missing():
    pytest.skip(missing(), allow_module_level=True)
import nbformat  # after the skip
from playwright.sync_api import expect

WIDGETS = ("world_browser", "unit_tuner", "link_explorer", "counterfactual_explorer", "population_dashboard",
           "label_painter", "dissection_browser", "filter_explainer", "unit_card")
CHANGE = ("world_browser.class_picker.value = 'house'\n"
          "unit_tuner.value.value = unit_tuner.value.max\n"
          "assert unit_tuner.wait_idle(60)")


@pytest.mark.timeout(600)
def test_executed_export_shows_every_widget_offline_in_its_last_state(browser, tmp_path):
    cells = [PATH_CELL + "\nimport e2e_widgets as e2e"]
    cells += [f"{name} = e2e.{name}()\n{name}" for name in WIDGETS]
    cells.append(CHANGE)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "executed.ipynb")
    run = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "linkviz_html", "--execute",
                          "--ExecutePreprocessor.timeout=300", "executed.ipynb"],
                         check=False, cwd=tmp_path, capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, run.stderr[-3000:]
    html = tmp_path / "executed.html"
    text = html.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" in text  # the live path is there for online readers
    assert "application/vnd.linkviz.snapshot+json" not in text  # the snapshot outputs were merged

    offline = open_offline(browser, html)
    try:
        page = offline.page
        assert any("html-manager" in url for url in offline.blocked), offline.blocked  # the CDN was refused
        snapshots = page.locator(".jupyter-widgets .linkviz-snapshot")
        expect(snapshots).to_have_count(len(WIDGETS))
        for k, name in enumerate(WIDGETS):
            expect(snapshots.nth(k)).to_be_visible(timeout=STEP_MS)
            assert offline.image_sizes(snapshots.nth(k)), f"the {name} snapshot shows no image"
        world = snapshots.nth(WIDGETS.index("world_browser"))
        expect(world).to_contain_text("generated house samples")  # the last state, not the cell's first one
        tuner = snapshots.nth(WIDGETS.index("unit_tuner"))
        expect(tuner).to_contain_text("value 3.13")  # the slider's maximum, set by the last cell
        page.screenshot(path=tmp_path / "executed_offline.png", full_page=True)
        # Online, the widget manager puts a live view in a div.widget-subarea inside the widget's div (as
        # @jupyter-widgets/html-manager's renderWidgets does); the snapshot beside it then steps aside.
        page.evaluate("""() => {
            const area = document.createElement('div');
            area.className = 'widget-subarea';
            document.querySelector('.jupyter-widgets').appendChild(area);
            area.appendChild(document.createElement('div'));
        }""")
        expect(snapshots.nth(0)).to_be_hidden()
        expect(snapshots.nth(1)).to_be_visible()
    finally:
        offline.page.close()
