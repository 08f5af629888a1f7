"""LabelPainter: paint part labels on a handful of generated images, superpixel by superpixel.

ipywidgets' ``Image`` reports no clicks, so the brush is a grid of buttons, one per SLIC superpixel, placed where
the superpixel lies in the image: a click paints that superpixel with the chosen label. Ids typed into a text box
paint many at once. The state (images, superpixels, label maps, undo stack) lives in
:class:`linkviz.controllers.LabelPainting`; every painting operation is a method of the painter
(:meth:`LabelPainter.paint`, :meth:`~LabelPainter.clear`, :meth:`~LabelPainter.undo`, :meth:`~LabelPainter.save`,
:meth:`~LabelPainter.load`) that calls it and redraws, so labelling is scriptable and testable without a browser.
The result is one integer mask per image, written in linkviz's plain label format
(:func:`linkviz.segmentation.save_labels`) for :func:`linkviz.segmentation.train_few_shot`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as ipw
import numpy as np

from linkviz.controllers.label_painting import LabelPainting, PaintingView, brush_layout, parse_ids
from linkviz.plotting.overlays import to_hex
from linkviz.segmentation.labels_io import LabelSetConflictError, PaintedLabels, load_labels
from linkviz.widgets.base import ViewWidget
from linkviz.widgets.latest_wins import error_html

__all__ = ["LabelPainter"]


class LabelPainter(ViewWidget):
    """Paint part labels on generated images by assigning labels to superpixels; save them for few-shot training.

    Every pixel starts as label 0 (listed first in ``label_names``, usually the background). The view shows the
    magnified image with the painted labels tinted and outlined, the superpixel boundaries and their ids; the
    ids typed into the text box are outlined in yellow before they are painted.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, 3)
        uint8 RGB, or generator output in [-1, 1] (converted with :func:`linkviz.images.to_uint8`).
    label_names : sequence of str
        Distinct names of the label ids, 2 to 256 of them; id 0 first.
    names : sequence of str, optional
        Name of each image (its file stem on disk); default ``"000"``, ``"001"``, ...
    masks : ndarray of int, shape (N, H, W), optional
        Labels to start from; default all 0.
    n_segments : int
        Approximate number of superpixels per image (the brush size).
    compactness : float
        SLIC's balance of colour and space: higher gives more regular, grid-like superpixels.
    directory : str or PathLike, optional
        Default folder of :meth:`save` and :meth:`load`.

    Raises
    ------
    ValueError
        For images that are not ``(N, H, W, 3)``, bad label names or image names, or masks of another shape or
        with ids outside the label set.
    """

    shown: PaintingView

    def __init__(self, images: np.ndarray, *, label_names: Sequence[str], names: Sequence[str] | None = None,
                 masks: np.ndarray | None = None, n_segments: int = 48, compactness: float = 10.0,
                 directory: str | os.PathLike[str] | None = None) -> None:
        self.controller = LabelPainting(images, label_names=label_names, names=names, masks=masks,
                                        n_segments=n_segments, compactness=compactness)
        self._buttons: list[ipw.Button] = []
        self._button_segment: list[int] = []
        label_names = self.label_names
        self.picker = ipw.Dropdown(options=[(name, i) for i, name in enumerate(self.names)], value=0,
                                   description="image")
        self.current_label = ipw.ToggleButtons(options=[(name, k) for k, name in enumerate(label_names)],
                                               value=1 if len(label_names) > 1 else 0, description="label")
        self.n_segments = ipw.IntSlider(value=int(n_segments), min=4, max=max(400, int(n_segments)), step=1,
                                        description="superpixels", continuous_update=False)
        self.ids = ipw.Text(placeholder="ids, e.g. 3, 7, 12-15", description="superpixels",
                            continuous_update=False)
        self.paint_button = ipw.Button(description="paint ids", tooltip="paint the listed superpixels")
        self.undo_button = ipw.Button(description="undo", icon="undo")
        self.clear_button = ipw.Button(description="clear image", tooltip="set every pixel of this image to "
                                       f"{label_names[0]!r}")
        self.directory = ipw.Text(value="" if directory is None else str(directory), description="folder")
        self.save_button = ipw.Button(description="save", icon="save")
        self.overwrite = ipw.Checkbox(value=False, description="overwrite", indent=False,
                                      tooltip="replace a folder that holds another label set (its maps are removed)")
        self.load_button = ipw.Button(description="load", icon="folder-open")
        self._init_view(name="LabelPainter", image_format="png")
        self.status = self.label
        self.brush = ipw.GridBox(layout=ipw.Layout(grid_gap="1px"))

        self.picker.observe(self._on_view_change, names="value")
        self.n_segments.observe(self._on_segments_change, names="value")
        self.ids.observe(self._on_view_change, names="value")
        self.paint_button.on_click(self._on_paint_ids)
        self.undo_button.on_click(lambda _: self._run(self.undo))
        self.clear_button.on_click(lambda _: self._run(self.clear, self.picker.value))
        self.save_button.on_click(self._on_save)
        self.load_button.on_click(lambda _: self._run(self.load))
        super().__init__([
            ipw.HBox([self.picker, self.n_segments]),
            ipw.HBox([self.current_label, ipw.HTML(self.controller.legend_html())]),
            ipw.HBox([self.image, self.brush]),
            ipw.HBox([self.ids, self.paint_button, self.undo_button, self.clear_button]),
            ipw.HBox([self.directory, self.save_button, self.overwrite, self.load_button]), self.status, self.error,
            self._export_bar()])
        self._rebuild_brush()
        self._refresh()

    # --- the controller's state ---

    @property
    def images(self) -> np.ndarray:
        """The painted images, uint8 of shape (N, H, W, 3)."""
        return self.controller.images

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.controller.label_names

    @property
    def names(self) -> tuple[str, ...]:
        return self.controller.names

    @property
    def masks(self) -> np.ndarray:
        """The painted label maps, int64 of shape (N, H, W) (a copy)."""
        return self.controller.masks

    def superpixels(self, image_index: int) -> np.ndarray:
        """SLIC superpixel ids (0..K-1, int64, shape (H, W)) of an image at the current brush settings."""
        return self.controller.superpixels(image_index)

    # --- painting (public, scriptable) ---

    def paint(self, image_index: int, superpixel_ids: Iterable[int], label: int | str) -> int:
        """Give every pixel of the listed superpixels of one image the label; return how many pixels changed.

        See :meth:`linkviz.controllers.LabelPainting.paint`.
        """
        changed = self.controller.paint(image_index, superpixel_ids, label)
        self._refresh(action=f"{changed} pixels changed")
        return changed

    def clear(self, image_index: int, label: int | str = 0) -> int:
        """Set every pixel of one image to ``label`` (default 0); return how many pixels changed."""
        changed = self.controller.clear(image_index, label)
        self._refresh(action=f"{changed} pixels changed")
        return changed

    def undo(self) -> bool:
        """Revert the last paint, clear or load; False if there is nothing to undo."""
        if not self.controller.undo():
            self.status.value = "nothing to undo"
            return False
        self._refresh(action="undone")
        return True

    def save(self, directory: str | os.PathLike[str] | None = None, *, overwrite: bool = False) -> list[Path]:
        """Write all masks (one PNG per image + labels.json) to ``directory`` (default: the folder box).

        A folder that holds another label set is refused unless ``overwrite`` is True (the save button passes the
        ``overwrite`` box); see :meth:`linkviz.controllers.LabelPainting.save`.

        Returns
        -------
        list of Path
            The PNG files written.
        """
        directory = self._directory(directory)
        paths = self.controller.save(directory, overwrite=overwrite)
        self.status.value = f"saved {len(paths)} label maps to {html.escape(str(directory))}"
        return paths

    def load(self, directory: str | os.PathLike[str] | None = None) -> PaintedLabels:
        """Restore masks saved by :meth:`save` (default folder: the folder box); one undo step reverts it.

        See :meth:`linkviz.controllers.LabelPainting.load` for the errors.
        """
        directory = self._directory(directory)
        labels = self.controller.load(directory)
        self._refresh(action=f"loaded {len(labels)} label maps from {directory}")
        return labels

    @classmethod
    def from_directory(cls, images: np.ndarray, directory: str | os.PathLike[str], **kwargs) -> LabelPainter:
        """A painter with the label names and masks saved in ``directory`` (images in the saved order)."""
        labels = load_labels(directory)
        kwargs.setdefault("names", labels.names)
        painter = cls(images, label_names=labels.label_names, directory=directory, **kwargs)
        painter.load(directory)
        painter.controller.forget_history()
        return painter

    # --- controls ---

    def _directory(self, directory: str | os.PathLike[str] | None) -> Path:
        directory = self.directory.value.strip() if directory is None else directory
        if not str(directory):
            raise ValueError("name a folder (the folder box is empty)")
        return Path(directory)

    def _run(self, method: Callable[..., Any], *args: Any) -> None:
        """Call a painting method for a button; show its error instead of raising into the front end."""
        try:
            method(*args)
        except (ValueError, IndexError, OSError) as error:
            self._show_error(error)

    def _on_save(self, _button: ipw.Button) -> None:
        """Save; a folder with another label set shows the conflict and how to replace it (tick overwrite)."""
        try:
            self.save(overwrite=self.overwrite.value)
        except LabelSetConflictError as error:
            self.error.value = error_html(error) + " Tick <b>overwrite</b> and save again to replace its maps."
            return
        except (ValueError, OSError) as error:
            self._show_error(error)
            return
        self.overwrite.value = False  # one overwrite per tick
        self.error.value = ""

    def _on_paint_ids(self, _button: ipw.Button) -> None:
        try:
            ids = parse_ids(self.ids.value)
        except ValueError as error:
            self._show_error(error)
            return
        self._run(self.paint, self.picker.value, ids, self.current_label.value)

    def _on_brush(self, button: ipw.Button) -> None:
        segment = self._button_segment[self._buttons.index(button)]
        self._run(self.paint, self.picker.value, [segment], self.current_label.value)

    def _on_view_change(self, change: dict) -> None:
        if change["owner"] is self.picker:
            self._rebuild_brush()
        self._refresh()

    def _on_segments_change(self, change: dict) -> None:
        self.controller.n_segments = int(change["new"])
        self._rebuild_brush()
        self._refresh(action=f"{int(self.superpixels(self.picker.value).max()) + 1} superpixels")

    # --- state -> traits ---

    def _rebuild_brush(self) -> None:
        """One button per superpixel of the shown image, at the cell of a grid nearest to its centroid."""
        rows, cols, positions = brush_layout(self.superpixels(self.picker.value))
        for button in self._buttons:
            button.close()
        self._buttons, self._button_segment = [], []
        for segment, (row, col) in positions.items():
            button = ipw.Button(description=str(segment), tooltip=f"paint superpixel {segment}",
                                layout=ipw.Layout(width="auto", height="22px", padding="0", grid_row=str(row + 1),
                                                  grid_column=str(col + 1)))
            button.on_click(self._on_brush)
            self._buttons.append(button)
            self._button_segment.append(segment)
        self.brush.layout.grid_template_columns = f"repeat({cols}, 28px)"
        self.brush.layout.grid_template_rows = f"repeat({rows}, 22px)"
        self.brush.children = tuple(self._buttons)

    def _refresh(self, *, action: str = "") -> None:
        """Redraw the shown image and its status (milliseconds for generator-sized images)."""
        try:
            selected = parse_ids(self.ids.value)
        except ValueError:
            selected = []
        self._show(self.controller.view(self.picker.value, selected=selected, action=action))

    def _show(self, view: PaintingView) -> None:
        super()._show(view)
        colors = self.controller.colors
        for button, segment in zip(self._buttons, self._button_segment):
            button.style.button_color = to_hex(colors[view.majority[segment]])
