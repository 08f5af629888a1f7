"""The shared shell of linkviz widgets: an image, its caption and an error line over a controller's results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import ipywidgets as ipw

from linkviz.controllers.view import GridView
from linkviz.images import encode_image
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import snapshot_html

__all__ = ["ViewWidget"]


class ViewWidget(ipw.VBox):
    """Base class of the widgets that show a controller's :class:`~linkviz.controllers.GridView`.

    Subclasses create their controls, call :meth:`_init_view` to get :attr:`image`, :attr:`label`,
    :attr:`error` and a :class:`LatestWinsWorker`, lay out their children with ``ipw.VBox.__init__`` and submit
    controller calls with :meth:`_request`. The base shows results and errors, embeds a static snapshot of the
    last state for exported notebooks, and exports the current view.

    Attributes
    ----------
    shown : GridView or None
        The result on screen.
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

    def _show_error(self, error: Exception) -> None:
        self.error.value = error_html(error)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the requested view is shown; False if ``timeout`` seconds passed first."""
        return self.worker.wait_idle(timeout)

    def _snapshot_parts(self) -> Sequence[str]:
        """HTML fragments shown under the image in the static snapshot."""
        return (self.label.value, self.error.value)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The live widget plus a static snapshot of the current view, for executed, exported notebooks."""
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        return {**bundle, "text/html": snapshot_html(self.image, *self._snapshot_parts())}

    def export(self, path: str | Path, *, table: bool = True) -> tuple[Path, ...]:
        """Write the current view as a figure (format from the suffix: .pdf, .svg, .png) and its data as CSV.

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
        figure = self.shown.figure()
        figure.savefig(path)
        written = [path]
        if table:
            csv = path.with_suffix(".csv")
            self.shown.to_frame().to_csv(csv, index=False)
            written.append(csv)
        return tuple(written)
