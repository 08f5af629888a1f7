"""The nbconvert plug-in of linkviz: the ``linkviz_html`` exporter, which shows every widget offline as it was left.

JupyterLab's own HTML export (``jupyter nbconvert --to html``) writes only a reference to each widget and loads the
widget manager from a CDN, so offline every widget is blank. ``linkviz_html`` keeps that live path for readers who
are online and puts a static fallback in each widget output: the last snapshot the widget published (see
:mod:`linkviz.widgets.snapshot`), i.e. the image and captions it showed when the notebook was saved or, with
``--execute``, when its last cell had run. A small script hides the fallback once a live view is rendered.

This module is the ``nbconvert.exporters`` entry point. nbconvert loads every registered exporter whenever it
starts (and the Jupyter server does when JupyterLab lists its export formats), so it imports nothing but nbconvert:
not linkviz, whose import loads torch. The user-facing function and command line are in
:mod:`linkviz.widgets.html_export`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import default

__all__ = ["SNAPSHOT_MIME", "TEMPLATES", "WIDGET_VIEW_MIME", "LinkvizHTMLExporter", "SnapshotPreprocessor",
           "latest_snapshots", "merge_snapshots"]

SNAPSHOT_MIME = "application/vnd.linkviz.snapshot+json"
"""MIME type of a widget's snapshot output (the same as :data:`linkviz.widgets.snapshot.SNAPSHOT_MIME`)."""
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def _templates() -> Path:
    """The ``templates`` folder of ``linkviz.widgets``, found without importing linkviz."""
    spec = importlib.util.find_spec("linkviz")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("linkviz is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "widgets" / "templates"


TEMPLATES = _templates()
"""The folder of the ``linkviz_html`` nbconvert template (JupyterLab's ``lab`` template plus the fallbacks)."""


def _outputs(notebook) -> Iterator[dict]:
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            yield from cell.get("outputs", [])


def latest_snapshots(notebook) -> dict[str, str]:
    """The last snapshot HTML of each widget in the notebook's outputs, by the widget's model id."""
    latest = {}
    for output in _outputs(notebook):
        snapshot = output.get("data", {}).get(SNAPSHOT_MIME)
        if isinstance(snapshot, dict) and "model_id" in snapshot and "html" in snapshot:
            latest[snapshot["model_id"]] = snapshot["html"]
    return latest


def merge_snapshots(notebook):
    """Give each widget output its widget's last snapshot as ``text/html`` and drop the snapshot outputs (in place).

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        A notebook whose linkviz widgets published snapshot outputs (:data:`SNAPSHOT_MIME`).

    Returns
    -------
    nbformat.NotebookNode
        The same notebook.
    """
    latest = latest_snapshots(notebook)
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        cell.outputs = [output for output in cell.get("outputs", []) if SNAPSHOT_MIME not in output.get("data", {})]
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW_MIME)
            if isinstance(view, dict) and view.get("model_id") in latest:
                output.data["text/html"] = latest[view["model_id"]]
    return notebook


class SnapshotPreprocessor(Preprocessor):
    """:func:`merge_snapshots` as an nbconvert preprocessor (the template's ``conf.json`` runs it after
    ``--execute``)."""

    def preprocess(self, nb, resources: dict) -> tuple:
        return merge_snapshots(nb), resources


class LinkvizHTMLExporter(HTMLExporter):
    """JupyterLab's HTML export in which every widget output also shows its last snapshot, offline.

    ``jupyter nbconvert --to linkviz_html [--execute] NOTEBOOK``, or in JupyterLab *File > Save and Export Notebook
    As > HTML (linkviz widgets)*. The ``linkviz_html`` template (in :data:`TEMPLATES`) extends ``lab``; its
    ``conf.json`` adds :class:`SnapshotPreprocessor`.
    """

    export_from_notebook = "HTML (linkviz widgets)"

    @default("template_name")
    def _template_name_default(self) -> str:
        return "linkviz_html"

    @default("extra_template_basedirs")
    def _default_extra_template_basedirs(self) -> list[str]:
        return [str(TEMPLATES), os.getcwd()]
