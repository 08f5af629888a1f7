"""Export a notebook with linkviz widgets to one HTML file that shows every widget offline, as it was left.

Each widget output shows the last snapshot its widget published (the image and captions on screen when the
notebook was saved, or when its last cell had run with ``execute=True``), and keeps JupyterLab's live widget view
for readers who are online. The exporter itself is :class:`linkviz_nbconvert.LinkvizHTMLExporter`, also reachable
as ``jupyter nbconvert --to linkviz_html`` and from JupyterLab's *File > Save and Export Notebook As* menu.

From a shell::

    python -m linkviz.widgets.html_export notebook.ipynb [notebook.html] [--execute] [--timeout S]
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from linkviz_nbconvert import LinkvizHTMLExporter, SnapshotPreprocessor, latest_snapshots, merge_snapshots

__all__ = ["LinkvizHTMLExporter", "SnapshotPreprocessor", "export_html", "latest_snapshots", "main",
           "merge_snapshots"]


def export_html(notebook: str | os.PathLike[str], html: str | os.PathLike[str] | None = None, *,
                execute: bool = False, timeout: int = 600, kernel_name: str | None = None) -> Path:
    """Write a notebook as one HTML file in which every linkviz widget shows its last state, also offline.

    Parameters
    ----------
    notebook : str or PathLike
        The ``.ipynb`` file (saved after using the widgets, or to be executed).
    html : str or PathLike, optional
        The HTML file; default the notebook's path with the suffix ``.html``.
    execute : bool
        Run the notebook first (in its folder), as ``jupyter nbconvert --execute`` does; the widgets then show
        the state the last cell left them in. The ``.ipynb`` file is not changed.
    timeout : int
        Seconds a cell may run when executing.
    kernel_name : str, optional
        Kernel to execute with; default the notebook's own.

    Returns
    -------
    Path
        The HTML file written.
    """
    notebook = Path(notebook)
    html = notebook.with_suffix(".html") if html is None else Path(html)
    node = nbformat.read(notebook, as_version=4)
    if execute:
        from nbclient import NotebookClient

        options: dict[str, Any] = {"timeout": timeout, "resources": {"metadata": {"path": str(notebook.parent)}}}
        if kernel_name is not None:
            options["kernel_name"] = kernel_name
        NotebookClient(node, **options).execute()  # keeps the widget state, as nbconvert --execute does
    body, _ = LinkvizHTMLExporter().from_notebook_node(copy.deepcopy(node),
                                                       resources={"metadata": {"name": notebook.stem}})
    html.write_text(body, encoding="utf-8")
    return html


def main(argv: Sequence[str] | None = None) -> Path:
    """``python -m linkviz.widgets.html_export NOTEBOOK [HTML] [--execute] [--timeout S]``."""
    parser = argparse.ArgumentParser(prog="python -m linkviz.widgets.html_export",
                                     description="Export a notebook to HTML that shows every linkviz widget "
                                                 "offline, in the state it was left in.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("html", type=Path, nargs="?", help="default: the notebook's name with .html")
    parser.add_argument("--execute", action="store_true", help="run the notebook first (it is not changed)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell when executing")
    args = parser.parse_args(argv)
    written = export_html(args.notebook, args.html, execute=args.execute, timeout=args.timeout)
    print(written)
    return written


if __name__ == "__main__":
    main()
