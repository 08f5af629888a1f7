"""Snapshots that follow the widget's state, and the HTML export that shows them offline (no browser, no kernel).

A displayed widget publishes its live view, then a snapshot output with a display id; every change re-publishes
the snapshot (``update_display``) once the widget's workers are idle: at the end of the cell, or from a timer for
changes made in the front end. IPython's ``capture_output`` records what an ``InteractiveShell`` publishes. The
export merges the last snapshot into each widget output's ``text/html`` and renders it inside the widget's div.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import ipywidgets as ipw
import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import linkviz_nbconvert
from linkviz.widgets import LinkExplorer, WorldBrowser
from linkviz.widgets.html_export import export_html, main, merge_snapshots
from linkviz.widgets.snapshot import SNAPSHOT_MIME, LiveSnapshot

VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def shell():
    shell = InteractiveShell.instance()
    yield shell
    shell.user_ns.clear()


def snapshots(outputs) -> list:
    return [output for output in outputs if SNAPSHOT_MIME in output.data]


def image_of(widget) -> str:
    return base64.b64encode(widget.image.value).decode("ascii")


def test_a_displayed_widget_publishes_its_view_then_a_snapshot_that_follows_a_cells_change(shell, fake_world):
    shell.user_ns["browser"] = browser = WorldBrowser(fake_world, n_samples=3)
    with capture_output() as captured:
        shell.run_cell("browser")
        first_image = image_of(browser)
        shell.run_cell("browser.class_picker.value = 'blue'")
    view, companion, *updates = captured.outputs
    assert VIEW in view.data and "text/html" in view.data and first_image in view.data["text/html"]
    display_id = companion.transient["display_id"]
    assert display_id and companion.data[SNAPSHOT_MIME]["model_id"] == browser.model_id and not companion.update
    assert updates and all(update.update and update.transient["display_id"] == display_id for update in updates)
    last = updates[-1].data[SNAPSHOT_MIME]["html"]
    assert image_of(browser) != first_image and image_of(browser) in last and first_image not in last
    assert "generated <i>blue</i>" in last and last == browser._snapshot_html()
    assert len(updates) == 1  # the class, the image and the caption changed in one cell: one update


def test_changes_from_the_front_end_publish_once_the_worker_is_idle(shell, linked):
    from linkviz.pairs import sample_pairs

    pairs = sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=6, seed=1,
                         truncation_psi=1.0, progress=False)
    shell.user_ns["explorer"] = explorer = LinkExplorer(linked, pairs, per_page=2)
    with capture_output() as captured:
        shell.run_cell("explorer")
        first_image = image_of(explorer)
        explorer.example.value = 4  # as a slider moved in the browser: outside any cell, computed by the worker
        assert explorer.wait_idle(30)
        deadline = time.monotonic() + 30
        while explorer._live_snapshot.n_published < 2:  # the timer publishes within its delay
            assert time.monotonic() < deadline, "no snapshot was published after the change"
            time.sleep(0.05)
    last = snapshots(captured.outputs)[-1]
    assert last.update and image_of(explorer) != first_image
    assert image_of(explorer) in last.data[SNAPSHOT_MIME]["html"]


def test_the_snapshot_waits_while_a_worker_computes_and_stops_when_closed(shell):
    html = ipw.HTML("first")
    box = ipw.VBox([ipw.HBox([html])])
    busy = [True]
    live = LiveSnapshot(box, lambda: html.value, lambda: busy[0], delay=0.05)
    html.value = "before display"  # not displayed yet: nothing to publish
    with capture_output() as captured:
        live.display()
        html.value = "second"  # a change deep inside the widget
        assert not live.flush()  # still computing
        time.sleep(0.2)
        assert len(captured.outputs) == 1  # the timer keeps waiting
        busy[0] = False
        wait_for(lambda: len(captured.outputs) == 2)
        assert captured.outputs[-1].data[SNAPSHOT_MIME]["html"] == "second"
        published = len(captured.outputs)
        box.children = (*box.children, extra := ipw.Text())  # a new child is followed too
        wait_for(lambda: len(captured.outputs) > published)
        published = len(captured.outputs)
        extra.value = "typed"
        wait_for(lambda: len(captured.outputs) > published)
        box.close()
        html.value = "after close"
        time.sleep(0.3)
        assert live.flush() and captured.outputs[-1].data[SNAPSHOT_MIME]["html"] == "second"


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def widget_notebook(*, with_state: bool) -> nbformat.NotebookNode:
    """A saved notebook: a widget output whose snapshot was taken at display, then its companion, updated later."""
    output = nbformat.v4.new_output("display_data", data={
        VIEW: {"version_major": 2, "version_minor": 0, "model_id": "m1"}, "text/plain": "WorldBrowser(...)",
        "text/html": "<b>first state</b>"})
    companion = nbformat.v4.new_output("display_data", data={
        SNAPSHOT_MIME: {"model_id": "m1", "html": '<img src="data:image/png;base64,iVBORw0KGgo="/><b>last</b>'}})
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("b", outputs=[output, companion])])
    if with_state:
        notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
            "version_major": 2, "version_minor": 0, "state": {"m1": {
                "model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
                "model_module_version": "2.0.0", "state": {}}}}}
    return notebook


def test_merge_puts_the_last_snapshot_in_the_widget_output():
    notebook = merge_snapshots(widget_notebook(with_state=False))
    (output,) = notebook.cells[0].outputs
    assert "<b>last</b>" in output.data["text/html"] and VIEW in output.data


@pytest.mark.parametrize("with_state", [True, False])
def test_export_shows_the_last_snapshot_in_the_widget_output(tmp_path, with_state):
    path = tmp_path / "saved.ipynb"
    nbformat.write(widget_notebook(with_state=with_state), path)
    html = export_html(path).read_text(encoding="utf-8")
    assert "<b>last</b>" in html and "first state" not in html and SNAPSHOT_MIME not in html
    assert html.count('class="linkviz-snapshot') == 1
    if with_state:  # the widget's div keeps the view for a widget manager, the snapshot inside it
        div = html[html.index('class="jupyter-widgets'):]
        assert div.index("<b>last</b>") < div.index(VIEW)
        assert "@jupyter-widgets/html-manager" in html  # online readers still get the live view
    main([str(path), str(tmp_path / "cli.html")])
    assert "<b>last</b>" in (tmp_path / "cli.html").read_text(encoding="utf-8")


def test_the_nbconvert_entry_point_is_the_exporter_and_loads_no_torch(tmp_path):
    assert linkviz_nbconvert.SNAPSHOT_MIME == SNAPSHOT_MIME
    code = ("import sys; from nbconvert.exporters import get_exporter; exporter = get_exporter('linkviz_html'); "
            "print(exporter.__module__, exporter.__name__, 'torch' in sys.modules, 'linkviz' in sys.modules)")
    # run outside the repository root, where a stale linkviz.egg-info would shadow the installed entry points
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["linkviz_nbconvert", "LinkvizHTMLExporter", "False", "False"]
