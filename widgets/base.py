"""The shared shell of linkviz widgets: an image, its caption and an error line over a controller's results, and
an export bar that writes the paper figure and its table."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import ipywidgets as ipw

from linkviz.controllers.view import GridView
from linkviz.images import encode_image
from linkviz.plotting.paper_style import FORMATS, save_figure
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import LiveSnapshot, descendants, snapshot_html

__all__ = ["ViewWidget"]


class ViewWidget(ipw.VBox):
    """Base class of the widgets that show a controller's :class:`~linkviz.controllers.GridView`.

    Subclasses create their controls, call :meth:`_init_view` to get :attr:`image`, :attr:`label`,
    :attr:`error` and a :class:`LatestWinsWorker`, lay out their children with ``ipw.VBox.__init__`` and submit
    controller calls with :meth:`_request`. The base shows results and errors, embeds a static snapshot of the
    last state for exported notebooks, and exports the current view: :meth:`export` from Python, or the bar of
    :meth:`_export_bar` (format, file name, export button, status line) that a subclass adds to its children.

    Attributes
    ----------
    shown : GridView or None
        The result on screen.
    export_format, export_name, export_button, export_status : ipywidgets
        The export bar (once :meth:`_export_bar` made it): format (pdf, svg, png), file name, button and the
        files written or the error.
    """

    shown: GridView | None = None

    def _init_view(self, *, name: str, image_format: str = "jpeg") -> None:
        """Create the image, caption and error widgets and the worker that delivers results to them."""
        self.image = ipw.Image(format=image_format)
        self.label = ipw.HTML()
        self.error = ipw.HTML()
        self.worker = LatestWinsWorker(self._show, self._show_error, name=name)

    def _request(self, compute: Callable[..., GridView], *args: Any, **kwargs: Any) -> int:
        """Compute a view on the worker thread (the newest request wins)."""
        return self.worker.submit(partial(compute, *args, **kwargs))

    def _show(self, view: GridView) -> None:
        self.shown = view
        self.image.value = encode_image(view.grid, format=self.image.format)
        self.label.value = view.caption_html
        self.error.value = ""
        self._follow_export_name()

    def _show_error(self, error: Exception) -> None:
        self.error.value = error_html(error)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the requested view is shown; False if ``timeout`` seconds passed first."""
        return self.worker.wait_idle(timeout)

    def _snapshot_parts(self) -> Sequence[str]:
        """HTML fragments shown under the image in the static snapshot."""
        return (self.label.value, self.error.value)

    def _snapshot_html(self) -> str:
        """The static snapshot: the image, then the parts of :meth:`_snapshot_parts`."""
        return snapshot_html(self.image, *self._snapshot_parts())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The live widget plus a static snapshot of the current view, for executed, exported notebooks."""
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        return {**bundle, "text/html": self._snapshot_html()}

    def _ipython_display_(self) -> None:
        """Display the live widget, then its snapshot output, which follows the widget's state.

        The snapshot output (:class:`~linkviz.widgets.snapshot.LiveSnapshot`) is re-published after every change
        once the workers are idle, so a saved or executed notebook keeps the state the widget was left in, and
        :func:`linkviz.widgets.html_export.export_html` shows it offline.
        """
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        if getattr(self, "_live_snapshot", None) is None:
            self._live_snapshot = LiveSnapshot(self, self._snapshot_html, self._computing)
        self._live_snapshot.display()

    def _computing(self) -> bool:
        """Whether a worker of this widget or of a widget inside it is computing a view."""
        return any(worker.busy for widget in descendants(self) for worker in vars(widget).values()
                   if isinstance(worker, LatestWinsWorker))

    def export(self, path: str | Path, *, table: bool = True) -> tuple[Path, ...]:
        """Write the current view as a figure (format from the suffix: .pdf, .svg, .png) and its data as CSV.

        The figure is the view's paper figure (``shown.figure()``) written by
        :func:`linkviz.plotting.paper_style.save_figure`: the same view gives the same bytes.

        Parameters
        ----------
        path : str or Path
            The figure file; the table goes beside it with the suffix ``.csv``.
        table : bool
            Also write the table.

        Returns
        -------
        tuple of Path
            The files written.
        """
        if self.shown is None:
            raise RuntimeError("nothing to export yet: the widget has not shown a view")
        path = Path(path)
        save_figure(self.shown.figure(), path)
        written = [path]
        if table:
            csv = path.with_suffix(".csv")
            self.shown.to_frame().to_csv(csv, index=False)
            written.append(csv)
        return tuple(written)

    # --- the export bar ---

    def _export_bar(self) -> ipw.HBox:
        """The export controls, for a subclass to add to its children: a format, a file name, a button, a status.

        The file name defaults to :meth:`_export_stem` in the current folder with the chosen suffix, and follows
        the shown view until the user types another; clicking the button writes the figure and its table (CSV)
        with :meth:`export` and lists the files written (or the error) in :attr:`export_status`.

        Returns
        -------
        ipywidgets.HBox
            :attr:`export_format`, :attr:`export_name`, :attr:`export_button` and :attr:`export_status`.
        """
        self.export_format = ipw.Dropdown(options=list(FORMATS), value=FORMATS[0], description="export",
                                          layout=ipw.Layout(width="140px"))
        self.export_name = ipw.Text(description="file", layout=ipw.Layout(width="320px"),
                                    tooltip="figure file, in the current folder unless a folder is named")
        self.export_button = ipw.Button(description="export", icon="download",
                                        tooltip="write the figure and its data (CSV beside it)")
        self.export_status = ipw.HTML()
        self._export_default = ""
        self._follow_export_name()
        self.export_format.observe(self._on_export_format, names="value")
        self.export_button.on_click(lambda _: self.export_clicked())
        return ipw.HBox([self.export_format, self.export_name, self.export_button, self.export_status])

    def _export_stem(self) -> str:
        """The default file name without suffix: the widget's name and the shown unit, e.g. ``unittuner-unit3``."""
        unit = getattr(self.shown, "unit", None)
        return type(self).__name__.lower() + ("" if unit is None else f"-unit{unit}")

    def _follow_export_name(self) -> None:
        """Put the default file name in the box unless the user typed their own."""
        if not hasattr(self, "export_name"):
            return
        default = f"{self._export_stem()}.{self.export_format.value}"
        if self.export_name.value in ("", self._export_default):
            self.export_name.value = default
        self._export_default = default

    def _on_export_format(self, change: dict) -> None:
        name = self.export_name.value.strip()
        if name and name != self._export_default:
            self.export_name.value = str(Path(name).with_suffix(f".{change['new']}"))
        self._follow_export_name()

    def export_clicked(self) -> tuple[Path, ...]:
        """What the export button does: :meth:`export` to the named file, and the outcome in the status line.

        Returns
        -------
        tuple of Path
            The files written (empty after an error, which the status line shows).
        """
        self._follow_export_name()
        path = Path(self.export_name.value.strip() or self._export_default)
        if path.suffix.lstrip(".").lower() not in FORMATS:
            path = path.with_name(f"{path.name}.{self.export_format.value}")
        try:
            written = self.export(path)
        except Exception as error:  # noqa: BLE001  (shown, not raised: a click has no caller to raise to)
            self.export_status.value = error_html(error)
            return ()
        self.export_status.value = "wrote " + ", ".join(f"<code>{html.escape(str(p.resolve()))}</code>"
                                                        for p in written)
        return written
