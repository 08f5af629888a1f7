"""LabelPainter: paint part labels on a handful of generated images, superpixel by superpixel.

ipywidgets' ``Image`` reports no clicks, so the brush is a grid of buttons, one per SLIC superpixel
(:func:`skimage.segmentation.slic`), placed where the superpixel lies in the image: a click paints that superpixel
with the chosen label. Ids typed into a text box paint many at once. Every painting operation is a method
(:meth:`LabelPainter.paint`, :meth:`~LabelPainter.clear`, :meth:`~LabelPainter.undo`, :meth:`~LabelPainter.save`,
:meth:`~LabelPainter.load`) that the buttons call, so labelling is scriptable and testable without a browser.
The result is one integer mask per image, written in linkviz's plain label format
(:func:`linkviz.segmentation.save_labels`) for :func:`linkviz.segmentation.train_few_shot`.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import ipywidgets as ipw
import numpy as np
from linkviz.widgets.latest_wins import error_html
from linkviz.widgets.snapshot import with_snapshot
from skimage.segmentation import slic

from linkviz.plotting.images import encode_image, to_uint8
from linkviz.plotting.overlays import draw_superpixels, label_colors, overlay_parts, to_hex
from linkviz.segmentation.labels_io import PaintedLabels, load_labels, save_labels

__all__ = ["LabelPainter", "parse_ids"]

_VIEW_PIXELS = 320  # the painted image is magnified to about this width
_UNDO_DEPTH = 100
_MAX_LABELS = 256  # uint8 label maps on disk


def parse_ids(text: str) -> list[int]:
    """``"3, 7 12-14"`` -> ``[3, 7, 12, 13, 14]``; ValueError for anything else."""
    ids: list[int] = []
    for part in text.replace(",", " ").split():
        low, dash, high = part.partition("-")
        try:
            ids.extend(range(int(low), int(high) + 1) if dash else [int(low)])
        except ValueError:
            raise ValueError(f"superpixel ids must be numbers or ranges like 12-15, got {part!r}") from None
    return ids


class LabelPainter(ipw.VBox):
    """Paint part labels on generated images by assigning labels to superpixels; save them for few-shot training.

    Every pixel starts as label 0 (listed first in ``label_names``, usually the background). The view shows the
    magnified image with the painted labels tinted and outlined, the superpixel boundaries and their ids; the
    ids typed into the text box are outlined in yellow before they are painted.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, 3)
        uint8 RGB, or generator output in [-1, 1] (converted with :func:`linkviz.plotting.to_uint8`).
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

    def __init__(self, images: np.ndarray, *, label_names: Sequence[str], names: Sequence[str] | None = None,
                 masks: np.ndarray | None = None, n_segments: int = 48, compactness: float = 10.0,
                 directory: str | os.PathLike[str] | None = None) -> None:
        self.images = _check_images(images)
        self.label_names = _check_label_names(label_names)
        n_images, height, width, _ = self.images.shape
        self.names = tuple(f"{i:03d}" for i in range(n_images)) if names is None else tuple(map(str, names))
        if len(self.names) != n_images or len(set(self.names)) != n_images:
            raise ValueError(f"need {n_images} distinct image names, got {list(self.names)}")
        self._masks = self._initial_masks(masks)
        self.compactness = float(compactness)
        self.colors = label_colors(len(self.label_names))
        self.zoom = max(1, _VIEW_PIXELS // max(height, width))
        self._segments: dict[int, np.ndarray] = {}
        self._undo: list[list[tuple[int, np.ndarray]]] = []
        self._buttons: list[ipw.Button] = []
        self._button_segment: list[int] = []

        self.picker = ipw.Dropdown(options=[(name, i) for i, name in enumerate(self.names)], value=0,
                                   description="image")
        self.current_label = ipw.ToggleButtons(options=[(name, k) for k, name in enumerate(self.label_names)],
                                               value=1 if len(self.label_names) > 1 else 0, description="label")
        self.n_segments = ipw.IntSlider(value=int(n_segments), min=4, max=max(400, int(n_segments)), step=1,
                                        description="superpixels", continuous_update=False)
        self.ids = ipw.Text(placeholder="ids, e.g. 3, 7, 12-15", description="superpixels",
                            continuous_update=False)
        self.paint_button = ipw.Button(description="paint ids", tooltip="paint the listed superpixels")
        self.undo_button = ipw.Button(description="undo", icon="undo")
        self.clear_button = ipw.Button(description="clear image", tooltip="set every pixel of this image to "
                                       f"{self.label_names[0]!r}")
        self.directory = ipw.Text(value="" if directory is None else str(directory), description="folder")
        self.save_button = ipw.Button(description="save", icon="save")
        self.load_button = ipw.Button(description="load", icon="folder-open")
        self.image = ipw.Image(format="png")
        self.brush = ipw.GridBox(layout=ipw.Layout(grid_gap="1px"))
        self.status = ipw.HTML()
        self.error = ipw.HTML()

        self.picker.observe(self._on_view_change, names="value")
        self.n_segments.observe(self._on_segments_change, names="value")
        self.ids.observe(self._on_view_change, names="value")
        self.paint_button.on_click(self._on_paint_ids)
        self.undo_button.on_click(lambda _: self._run(self.undo))
        self.clear_button.on_click(lambda _: self._run(self.clear, self.picker.value))
        self.save_button.on_click(lambda _: self._run(self.save))
        self.load_button.on_click(lambda _: self._run(self.load))
        legend = ipw.HTML(" ".join(f'<span style="color:{to_hex(self.colors[k])}">&#9632;</span> '
                                   f"{html.escape(name)}" for k, name in enumerate(self.label_names)))
        super().__init__([
            ipw.HBox([self.picker, self.n_segments]), ipw.HBox([self.current_label, legend]),
            ipw.HBox([self.image, self.brush]),
            ipw.HBox([self.ids, self.paint_button, self.undo_button, self.clear_button]),
            ipw.HBox([self.directory, self.save_button, self.load_button]), self.status, self.error])
        self._rebuild_brush()
        self._refresh()

    # --- painting (public, scriptable) ---

    @property
    def masks(self) -> np.ndarray:
        """The painted label maps, int64 of shape (N, H, W) (a copy)."""
        return np.stack(self._masks).astype(np.int64)

    def superpixels(self, image_index: int) -> np.ndarray:
        """SLIC superpixel ids (0..K-1, int64, shape (H, W)) of an image at the current brush settings."""
        image_index = self._check_index(image_index)
        if image_index not in self._segments:
            segments = slic(self.images[image_index], n_segments=int(self.n_segments.value),
                            compactness=self.compactness, start_label=0, channel_axis=-1)
            self._segments[image_index] = np.unique(segments, return_inverse=True)[1].reshape(segments.shape)
        return self._segments[image_index]

    def paint(self, image_index: int, superpixel_ids: Iterable[int], label: int | str) -> int:
        """Give every pixel of the listed superpixels of one image the label; return how many pixels changed.

        Parameters
        ----------
        image_index : int
            Which image (row of ``images``).
        superpixel_ids : iterable of int
            Ids in :meth:`superpixels` of that image.
        label : int or str
            Label id or name.

        Raises
        ------
        IndexError
            For an image index or superpixel id out of range.
        ValueError
            For an unknown label.
        """
        image_index, label = self._check_index(image_index), self._label_id(label)
        segments = self.superpixels(image_index)
        ids = np.asarray(sorted({int(i) for i in superpixel_ids}), dtype=np.int64)
        n_segments = int(segments.max()) + 1
        bad = ids[(ids < 0) | (ids >= n_segments)]
        if bad.size:
            raise IndexError(f"superpixels {bad.tolist()} out of range for image {image_index} "
                             f"({n_segments} superpixels: 0..{n_segments - 1})")
        region = np.isin(segments, ids) & (self._masks[image_index] != label)
        return self._apply({image_index: (region, label)})

    def clear(self, image_index: int, label: int | str = 0) -> int:
        """Set every pixel of one image to ``label`` (default 0); return how many pixels changed."""
        image_index, label = self._check_index(image_index), self._label_id(label)
        return self._apply({image_index: (self._masks[image_index] != label, label)})

    def undo(self) -> bool:
        """Revert the last paint, clear or load; False if there is nothing to undo."""
        if not self._undo:
            self.status.value = "nothing to undo"
            return False
        for image_index, previous in self._undo.pop():
            self._masks[image_index] = previous.astype(np.int64)
        self._refresh(action="undone")
        return True

    def save(self, directory: str | os.PathLike[str] | None = None) -> list[Path]:
        """Write all masks with :func:`linkviz.segmentation.save_labels` (one PNG per image + labels.json).

        Parameters
        ----------
        directory : str or PathLike, optional
            Default: the folder in the ``folder`` box.

        Returns
        -------
        list of Path
            The PNG files written.
        """
        directory = self._directory(directory)
        paths = save_labels(directory, self.masks, label_names=self.label_names, names=self.names)
        self.status.value = f"saved {len(paths)} label maps to {html.escape(str(directory))}"
        return paths

    def load(self, directory: str | os.PathLike[str] | None = None) -> PaintedLabels:
        """Restore masks saved by :meth:`save` (matched to images by name); one undo step reverts it.

        Raises
        ------
        ValueError
            If the folder's label names differ from this painter's, it holds an image name this painter does
            not have, or a map's size differs from the images'.
        FileNotFoundError, LabelFileError
            As :func:`linkviz.segmentation.load_labels`.
        """
        directory = self._directory(directory)
        labels = load_labels(directory)
        if labels.label_names != self.label_names:
            raise ValueError(f"{directory} holds labels {list(labels.label_names)}, this painter paints "
                             f"{list(self.label_names)}")
        unknown = sorted(set(labels.names) - set(self.names))
        if unknown:
            raise ValueError(f"{directory} holds maps of images {unknown} that this painter does not show "
                             f"(its images: {list(self.names)})")
        if len(labels) and labels.masks.shape[1:] != self.images.shape[1:3]:
            raise ValueError(f"label maps in {directory} are {labels.masks.shape[1:]}, the images "
                             f"{self.images.shape[1:3]}")
        changes = {self.names.index(name): (np.ones(mask.shape, bool), mask)
                   for name, mask in zip(labels.names, labels.masks)}
        self._apply(changes, action=f"loaded {len(labels)} label maps from {html.escape(str(directory))}")
        return labels

    @classmethod
    def from_directory(cls, images: np.ndarray, directory: str | os.PathLike[str], **kwargs) -> LabelPainter:
        """A painter with the label names and masks saved in ``directory`` (images in the saved order)."""
        labels = load_labels(directory)
        kwargs.setdefault("names", labels.names)
        painter = cls(images, label_names=labels.label_names, directory=directory, **kwargs)
        painter.load(directory)
        painter._undo.clear()
        return painter

    # --- internals ---

    def _apply(self, changes: dict[int, tuple[np.ndarray, int | np.ndarray]], *, action: str | None = None) -> int:
        """Write ``label`` (a scalar or a full map) where ``region`` is True, per image; one undo entry."""
        record, n_changed = [], 0
        for image_index, (region, label) in changes.items():
            current = self._masks[image_index]
            new = np.where(region, label, current)
            changed = int((new != current).sum())
            if changed:
                record.append((image_index, current.astype(np.uint8)))
                self._masks[image_index] = new.astype(np.int64)
                n_changed += changed
        if record:
            self._undo.append(record)
            del self._undo[:-_UNDO_DEPTH]
        self._refresh(action=action or f"{n_changed} pixels changed")
        return n_changed

    def _initial_masks(self, masks: np.ndarray | None) -> list[np.ndarray]:
        shape = self.images.shape[:3]
        if masks is None:
            return [np.zeros(shape[1:], np.int64) for _ in range(shape[0])]
        masks = np.asarray(masks)
        if masks.shape != shape or not np.issubdtype(masks.dtype, np.integer):
            raise ValueError(f"masks must be integer label maps of shape {shape}; got {masks.dtype} {masks.shape}")
        if masks.size and (masks.min() < 0 or masks.max() >= len(self.label_names)):
            raise ValueError(f"masks hold ids outside [0, {len(self.label_names)}) (the label set)")
        return [mask.astype(np.int64) for mask in masks]

    def _check_index(self, image_index: int) -> int:
        image_index = int(image_index)
        if not 0 <= image_index < len(self.images):
            raise IndexError(f"image {image_index} out of range for {len(self.images)} images")
        return image_index

    def _label_id(self, label: int | str) -> int:
        if isinstance(label, str):
            if label not in self.label_names:
                raise ValueError(f"unknown label {label!r}; labels: {list(self.label_names)}")
            return self.label_names.index(label)
        label = int(label)
        if not 0 <= label < len(self.label_names):
            raise ValueError(f"label id {label} out of range for {len(self.label_names)} labels")
        return label

    def _directory(self, directory: str | os.PathLike[str] | None) -> Path:
        directory = self.directory.value.strip() if directory is None else directory
        if not str(directory):
            raise ValueError("name a folder (the folder box is empty)")
        return Path(directory)

    def _run(self, method, *args) -> None:
        """Call a painting method for a button; show its error instead of raising into the front end."""
        try:
            method(*args)
        except (ValueError, IndexError, OSError) as error:
            self.error.value = error_html(error)

    def _on_paint_ids(self, _button: ipw.Button) -> None:
        try:
            ids = parse_ids(self.ids.value)
        except ValueError as error:
            self.error.value = error_html(error)
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
        self._segments.clear()  # painted masks are pixels: they survive a new brush size
        self._rebuild_brush()
        self._refresh(action=f"{int(self.superpixels(self.picker.value).max()) + 1} superpixels")

    def _rebuild_brush(self) -> None:
        """One button per superpixel of the shown image, at the cell of a grid nearest to its centroid."""
        segments = self.superpixels(self.picker.value)
        rows, cols, positions = _grid_positions(segments)
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
        """Redraw the shown image and recolour the brush (milliseconds for generator-sized images)."""
        index = self.picker.value
        segments, mask = self.superpixels(index), self._masks[index]
        try:
            selected = [i for i in parse_ids(self.ids.value) if 0 <= i <= segments.max()]
        except ValueError:
            selected = []
        view = overlay_parts(self.images[index], mask, zoom=self.zoom, colors=self.colors, alpha=0.5)
        self.image.value = encode_image(draw_superpixels(view, segments, zoom=self.zoom, selected=selected))
        majority = _majority_labels(segments, mask, len(self.label_names))
        for button, segment in zip(self._buttons, self._button_segment):
            button.style.button_color = to_hex(self.colors[majority[segment]])
        counts = np.bincount(mask.ravel(), minlength=len(self.label_names)) / mask.size
        painted = ", ".join(f"{html.escape(name)} {share:.0%}" for name, share in zip(self.label_names, counts)
                            if share > 0)
        self.status.value = (f"image <b>{html.escape(self.names[index])}</b>: {painted}; "
                             f"{int(segments.max()) + 1} superpixels. {html.escape(action)}")
        self.error.value = ""

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot (the painted image and its status)."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, self.status.value, self.error.value)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = to_uint8(np.asarray(images))
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"images must have shape (N, H, W, 3) with N >= 1; got {images.shape}")
    return images


def _check_label_names(label_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(label_names)
    if not 2 <= len(names) <= _MAX_LABELS:
        raise ValueError(f"need between 2 and {_MAX_LABELS} label names; got {len(names)}")
    if not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"label names must be distinct non-empty strings; got {list(names)}")
    return names


def _majority_labels(segments: np.ndarray, mask: np.ndarray, n_labels: int) -> np.ndarray:
    """The most frequent label of each superpixel, shape (K,)."""
    n_segments = int(segments.max()) + 1
    counts = np.bincount(segments.ravel() * n_labels + mask.ravel(), minlength=n_segments * n_labels)
    return counts.reshape(n_segments, n_labels).argmax(axis=1)


def _grid_positions(segments: np.ndarray) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """A cell of a rows x cols grid for every superpixel, as near its centroid as free cells allow.

    Larger superpixels choose first; the grid has about 1.7 cells per superpixel, so every one finds a cell.
    """
    n_segments = int(segments.max()) + 1
    height, width = segments.shape
    side = math.sqrt(1.7 * n_segments / (height * width))
    rows, cols = max(1, math.ceil(side * height)), max(1, math.ceil(side * width))
    counts = np.bincount(segments.ravel(), minlength=n_segments)
    pixel_rows, pixel_cols = np.indices(segments.shape)
    centre_rows = np.bincount(segments.ravel(), weights=pixel_rows.ravel(), minlength=n_segments) / counts
    centre_cols = np.bincount(segments.ravel(), weights=pixel_cols.ravel(), minlength=n_segments) / counts
    cell_rows, cell_cols = np.indices((rows, cols))
    free = np.ones((rows, cols), bool)
    positions: dict[int, tuple[int, int]] = {}
    for segment in np.argsort(-counts, kind="stable"):
        ideal_row = (centre_rows[segment] + 0.5) / height * rows - 0.5
        ideal_col = (centre_cols[segment] + 0.5) / width * cols - 0.5
        distance = np.where(free, (cell_rows - ideal_row) ** 2 + (cell_cols - ideal_col) ** 2, np.inf)
        row, col = np.unravel_index(int(np.argmin(distance)), free.shape)
        free[row, col] = False
        positions[int(segment)] = (int(row), int(col))
    return rows, cols, dict(sorted(positions.items()))
