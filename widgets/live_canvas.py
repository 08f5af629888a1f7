"""A live ipympl canvas for a matplotlib figure, made without switching the user's matplotlib backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as ipw

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["live_canvas"]


def _keep_backend(backend: str, *, force: bool = True) -> None:
    """Stands in for :func:`matplotlib.use` while ipympl is imported (its ``__init__`` calls it)."""


def live_canvas(figure: Figure) -> ipw.DOMWidget:
    """An ipympl canvas that shows ``figure`` live in the notebook, made without changing the matplotlib backend.

    Importing :mod:`ipympl` runs ``matplotlib.use("module://ipympl.backend_nbagg")`` when matplotlib is loaded,
    which would switch the user's backend (and, with pyplot loaded, close their figures), so that import runs
    with :func:`matplotlib.use` stubbed out. The canvas and its manager are made directly, not through pyplot,
    so the figure is not registered with pyplot either.
    """
    import matplotlib

    use = matplotlib.use
    matplotlib.use = _keep_backend
    try:
        from ipympl.backend_nbagg import Canvas, FigureManager
    finally:
        matplotlib.use = use
    canvas = Canvas(figure)
    FigureManager(canvas, 0)  # the manager connects the canvas to the browser
    canvas.header_visible = False
    canvas.toolbar_visible = False
    canvas.resizable = False
    return canvas
