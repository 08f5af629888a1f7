"""Static snapshots of live widgets, so an exported notebook shows what the widget showed when it was left.

A widget's own output carries a ``text/html`` snapshot taken when it is displayed, for viewers without widget
JavaScript. A displayed :class:`~linkviz.widgets.base.ViewWidget` also publishes a companion output under
:data:`SNAPSHOT_MIME`, with a display id, and :class:`LiveSnapshot` re-publishes it (``update_display``) after
its state changed, once its workers are idle: at the end of every cell, and from a timer at most every
``delay`` seconds for changes made from the front end. The companion's only other data is an empty ``text/plain``,
so front ends show it as an empty output of no height; the saved or executed notebook keeps the last snapshot,
and :func:`linkviz.widgets.html_export.export_html` (or ``jupyter nbconvert --to linkviz_html``) shows it in place
of the widget. Updating the widget's own output instead would make JupyterLab re-create the live view (and drop
its focus) on every update.
"""

from __future__ import annotations

import base64
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as ipw

__all__ = ["SNAPSHOT_MIME", "LiveSnapshot", "descendants", "snapshot_html", "with_snapshot"]

SNAPSHOT_MIME = "application/vnd.linkviz.snapshot+json"
"""MIME type of the companion output: ``{"model_id": <the widget's model id>, "html": <its snapshot>}``
(also :data:`linkviz_nbconvert.SNAPSHOT_MIME`, which must not import linkviz)."""

_log = logging.getLogger(__name__)
_displayed: weakref.WeakSet[LiveSnapshot] = weakref.WeakSet()  # flushed at the end of every cell
_hooked_shells: set[int] = set()


def snapshot_html(image: ipw.Image, *parts: str) -> str:
    """The image's current bytes as an inline ``<img>``, then each HTML part in its own ``<div>``."""
    encoded = base64.b64encode(image.value).decode("ascii")
    return (f'<img src="data:image/{image.format};base64,{encoded}" alt="the widget\'s view"/>'
            + "".join(f"<div>{p}</div>" for p in parts))


def with_snapshot(bundle: dict | None, image: ipw.Image, *parts: str) -> dict:
    """Add a ``text/html`` snapshot (the current image, then each HTML part) to a widget's mimebundle.

    Parameters
    ----------
    bundle : dict or None
        The live widget's own mimebundle.
    image : ipywidgets.Image
        The image whose bytes are embedded.
    *parts : str
        HTML fragments shown below the image, each in its own ``<div>``.
    """
    return {**(bundle or {}), "text/html": snapshot_html(image, *parts)}


def descendants(widget: ipw.Widget) -> Iterator[ipw.Widget]:
    """The widget and every widget below it in its ``children``, depth first."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from descendants(child)


class LiveSnapshot:
    """The companion output of a displayed widget: its snapshot, re-published whenever its state changed.

    Every ``value`` (and ``children``) change of the widget or a widget below it marks the snapshot stale. A
    stale snapshot is published with ``IPython.display.update_display`` when nothing is computing (``busy()`` is
    False): at the end of each cell (so ``jupyter nbconvert --execute`` keeps the state the last cell left) and,
    for changes made in the front end, at most every ``delay`` seconds, on the kernel's main thread (rendering a
    snapshot may draw a figure that the front end's messages also draw, e.g. the dashboard's tSNE canvas).

    Parameters
    ----------
    widget : ipywidgets.Widget
        The displayed widget.
    render : callable
        The snapshot's HTML now.
    busy : callable
        Whether a worker of the widget still computes a view (the snapshot waits for it).
    delay : float
        Seconds between a change and its publication (and between two publications).
    """

    def __init__(self, widget: ipw.Widget, render: Callable[[], str], busy: Callable[[], bool], *,
                 delay: float = 0.5) -> None:
        self.widget, self.render, self.busy, self.delay = widget, render, busy, delay
        self.display_id = f"linkviz-snapshot-{widget.model_id}"
        self.n_published = 0
        self._lock = threading.RLock()
        self._displayed = self._stale = False
        self._timer: threading.Timer | None = None
        self._watched: set[str] = set()

    def bundle(self) -> dict[str, Any]:
        """The companion output's data: the widget's model id and its snapshot HTML now."""
        # the empty text/plain: front ends without a renderer for SNAPSHOT_MIME (VS Code) show an empty output
        return {SNAPSHOT_MIME: {"model_id": self.widget.model_id, "html": self.render()}, "text/plain": ""}

    def display(self) -> None:
        """Publish the companion output (call it right after displaying the widget) and follow the widget."""
        from IPython import get_ipython
        from IPython.display import display

        with self._lock:
            display(self.bundle(), raw=True, display_id=self.display_id)
            self._displayed, self._stale = True, False
            self.n_published += 1
        self._watch()
        _displayed.add(self)
        shell = get_ipython()
        if shell is not None and id(shell) not in _hooked_shells:
            shell.events.register("post_execute", flush_all)
            _hooked_shells.add(id(shell))

    def mark_stale(self, change: dict | None = None) -> None:
        """The widget's state changed: publish the snapshot soon (no-op until it is displayed)."""
        if change is not None and change.get("name") == "children":
            self._watch()
        with self._lock:
            if not self._displayed:
                return
            self._stale = True
            if self._timer is None:
                self._arm()

    def flush(self) -> bool:
        """Publish the snapshot now if it is stale and nothing computes; False if it is still waiting."""
        from IPython.display import update_display

        with self._lock:
            if not self._stale:
                return True
            if getattr(self.widget, "comm", None) is None:  # closed: nothing to show any more
                self._stale = False
                return True
            if self.busy():
                return False
            self._stale = False
            update_display(self.bundle(), raw=True, display_id=self.display_id)
            self.n_published += 1
            return True

    def _watch(self) -> None:
        for widget in descendants(self.widget):
            if widget.model_id in self._watched:
                continue
            self._watched.add(widget.model_id)
            names = [name for name in ("value", "children") if widget.has_trait(name)]
            if names:
                widget.observe(self.mark_stale, names=names)

    def _arm(self) -> None:
        self._timer = threading.Timer(self.delay, self._on_timer)
        self._timer.daemon = True
        self._timer.start()

    def _on_timer(self) -> None:
        """The delay passed: flush on the kernel's main thread (where the widget's figures are drawn), if any."""
        with self._lock:
            self._timer = None
        loop = _kernel_loop()
        if loop is None:
            self._flush_or_wait()
        else:
            loop.add_callback(self._flush_or_wait)

    def _flush_or_wait(self) -> None:
        try:
            done = self.flush()
        except Exception:  # noqa: BLE001  (a timer or loop callback has no caller to raise to)
            _log.exception("linkviz: could not publish a widget snapshot")
            return
        if not done:
            with self._lock:
                if self._timer is None:
                    self._arm()  # still computing: look again later


def _kernel_loop() -> Any:
    """The IPython kernel's main-thread event loop (its ``add_callback`` is thread-safe), or None outside a kernel."""
    from IPython import get_ipython

    return getattr(getattr(get_ipython(), "kernel", None), "io_loop", None)


def flush_all(*_: Any) -> None:
    """Publish every stale snapshot whose widget is idle (IPython's ``post_execute`` hook)."""
    for snapshot in list(_displayed):
        try:
            snapshot.flush()
        except Exception:  # noqa: BLE001  (a broken snapshot must not break every later cell)
            _log.exception("linkviz: could not publish a widget snapshot")
