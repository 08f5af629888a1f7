"""LabelPainting: part labels painted on a handful of images, superpixel by superpixel, with undo, save and load.

The state behind :class:`linkviz.widgets.LabelPainter`: the images, their SLIC superpixels
(:func:`skimage.segmentation.slic`), one integer label map per image and an undo stack. Every painting operation
is a method, so labelling is scriptable and testable without a browser; :meth:`LabelPainting.view` returns what
the painter shows as a :class:`PaintingView`. The maps are written in linkviz's plain label format
(:func:`linkviz.segmentation.save_labels`) for :func:`linkviz.segmentation.train_few_shot`.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.segmentation import slic

from linkviz.controllers.view import GridView, choice_index
from linkviz.images import to_uint8
from linkviz.plotting.overlays import draw_superpixels, label_colors, overlay_parts, to_hex
from linkviz.segmentation.labels_io import PaintedLabels, check_label_names, load_labels, save_labels

__all__ = ["LabelPainting", "PaintingView", "brush_layout", "parse_ids"]

VIEW_PIXELS = 320  # the painted image is magnified to about this width
UNDO_DEPTH = 100


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


@dataclass(frozen=True, eq=False, kw_only=True)
class PaintingView(GridView):
    """One image magnified with its painted labels tinted and outlined, its superpixel boundaries and ids.

    Attributes
    ----------
    image_index : int
        Which image (row of :attr:`LabelPainting.images`).
    name : str
        Its name.
    mask : ndarray of int64, shape (H, W)
        Its label map.
    segments : ndarray of int64, shape (H, W)
        Its superpixel ids ``0..K-1``.
    selected : tuple of int
        Superpixels outlined in yellow (about to be painted).
    majority : ndarray of int64, shape (K,)
        The most frequent label of each superpixel (the colour of its brush button).
    label_names : tuple of str
    """

    image_index: int
    name: str
    mask: np.ndarray
    segments: np.ndarray
    selected: tuple[int, ...] = ()
    majority: np.ndarray
    label_names: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per label: ``image, label_id, label, pixels, share`` (pixels of the label and their share)."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.label_names))
        return pd.DataFrame({"image": self.name, "label_id": np.arange(len(self.label_names)),
                             "label": list(self.label_names), "pixels": counts.astype(np.int64),
                             "share": counts / self.mask.size})


class LabelPainting:
    """Label maps of a few images, painted superpixel by superpixel, with an undo stack.

    Every pixel starts as label 0 (listed first in ``label_names``, usually the background).

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
        Approximate number of superpixels per image (the brush size; settable).
    compactness : float
        SLIC's balance of colour and space: higher gives more regular, grid-like superpixels.

    Raises
    ------
    ValueError
        For images that are not ``(N, H, W, 3)``, bad label names or image names, or masks of another shape or
        with ids outside the label set.
    """

    def __init__(self, images: np.ndarray, *, label_names: Sequence[str], names: Sequence[str] | None = None,
                 masks: np.ndarray | None = None, n_segments: int = 48, compactness: float = 10.0) -> None:
        self.images = _check_images(images)
        self.label_names = check_label_names(label_names)
        n_images, height, width, _ = self.images.shape
        self.names = tuple(f"{i:03d}" for i in range(n_images)) if names is None else tuple(map(str, names))
        if len(self.names) != n_images or len(set(self.names)) != n_images:
            raise ValueError(f"need {n_images} distinct image names, got {list(self.names)}")
        self._masks = self._initial_masks(masks)
        self.compactness = float(compactness)
        self._n_segments = int(n_segments)
        self.colors = label_colors(len(self.label_names))
        self.zoom = max(1, VIEW_PIXELS // max(height, width))
        self._segments: dict[int, np.ndarray] = {}
        self._undo: list[list[tuple[int, np.ndarray]]] = []

    @classmethod
    def from_directory(cls, images: np.ndarray, directory: str | os.PathLike[str], **kwargs) -> LabelPainting:
        """Painting state with the label names and masks saved in ``directory`` (images in the saved order)."""
        labels = load_labels(directory)
        kwargs.setdefault("names", labels.names)
        painting = cls(images, label_names=labels.label_names, **kwargs)
        painting.load(directory)
        painting.forget_history()
        return painting

    # --- state ---

    @property
    def masks(self) -> np.ndarray:
        """The painted label maps, int64 of shape (N, H, W) (a copy)."""
        return np.stack(self._masks).astype(np.int64)

    @property
    def n_segments(self) -> int:
        """Approximate number of superpixels per image; setting it recomputes the superpixels (masks stay)."""
        return self._n_segments

    @n_segments.setter
    def n_segments(self, value: int) -> None:
        self._n_segments = int(value)
        self._segments.clear()  # painted masks are pixels: they survive a new brush size

    @property
    def can_undo(self) -> bool:
        """Whether an operation can be undone."""
        return bool(self._undo)

    def forget_history(self) -> None:
        """Empty the undo stack."""
        self._undo.clear()

    def superpixels(self, image_index: int) -> np.ndarray:
        """SLIC superpixel ids (0..K-1, int64, shape (H, W)) of an image at the current brush settings."""
        image_index = self.check_index(image_index)
        if image_index not in self._segments:
            segments = slic(self.images[image_index], n_segments=self._n_segments, compactness=self.compactness,
                            start_label=0, channel_axis=-1)
            self._segments[image_index] = np.unique(segments, return_inverse=True)[1].reshape(segments.shape)
        return self._segments[image_index]

    def check_index(self, image_index: int) -> int:
        """``image_index`` as an int; IndexError if there is no such image."""
        image_index = int(image_index)
        if not 0 <= image_index < len(self.images):
            raise IndexError(f"image {image_index} out of range for {len(self.images)} images")
        return image_index

    def label_id(self, label: int | str) -> int:
        """The id of a label given by id or name; ValueError for an unknown one."""
        return choice_index(label, self.label_names, noun="label", plural="labels", index_noun="label id",
                            range_error=ValueError)

    # --- painting ---

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
        image_index, label = self.check_index(image_index), self.label_id(label)
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
        image_index, label = self.check_index(image_index), self.label_id(label)
        return self._apply({image_index: (self._masks[image_index] != label, label)})

    def undo(self) -> bool:
        """Revert the last paint, clear or load; False if there is nothing to undo."""
        if not self._undo:
            return False
        for image_index, previous in self._undo.pop():
            self._masks[image_index] = previous.astype(np.int64)
        return True

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
        """Write all masks with :func:`linkviz.segmentation.save_labels` (one PNG per image + labels.json).

        A folder with the same label set gains these maps (same names replaced, others kept). A folder with
        another label set raises :class:`~linkviz.segmentation.labels_io.LabelSetConflictError` unless
        ``overwrite`` is True, which replaces its maps by these ones. A failure midway leaves the folder as it was.
        """
        return save_labels(directory, self.masks, label_names=self.label_names, names=self.names,
                           overwrite=overwrite)

    def load(self, directory: str | os.PathLike[str]) -> PaintedLabels:
        """Restore masks saved by :meth:`save` (matched to images by name); one undo step reverts it.

        Raises
        ------
        ValueError
            If the folder's label names differ from these, it holds an image name not painted here, or a map's
            size differs from the images'.
        FileNotFoundError, LabelFileError
            As :func:`linkviz.segmentation.load_labels`.
        """
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
        self._apply({self.names.index(name): (np.ones(mask.shape, bool), mask)
                     for name, mask in zip(labels.names, labels.masks)})
        return labels

    # --- views ---

    def view(self, image_index: int, *, selected: Iterable[int] = (), action: str = "") -> PaintingView:
        """What the painter shows of one image: labels tinted, superpixels outlined, ``selected`` in yellow.

        Parameters
        ----------
        image_index : int
        selected : iterable of int
            Superpixel ids to outline (ids out of range are ignored).
        action : str
            Plain text appended to the caption (what the last operation did).
        """
        index = self.check_index(image_index)
        segments, mask = self.superpixels(index), self._masks[index].copy()
        selected = tuple(i for i in dict.fromkeys(int(i) for i in selected) if 0 <= i <= segments.max())
        shown = overlay_parts(self.images[index], mask, zoom=self.zoom, colors=self.colors, alpha=0.5)
        grid = draw_superpixels(shown, segments, zoom=self.zoom, selected=list(selected))
        counts = np.bincount(mask.ravel(), minlength=len(self.label_names)) / mask.size
        painted = ", ".join(f"{html.escape(name)} {share:.0%}" for name, share in zip(self.label_names, counts)
                            if share > 0)
        caption = (f"image <b>{html.escape(self.names[index])}</b>: {painted}; {int(segments.max()) + 1} "
                   f"superpixels. {html.escape(action)}")
        return PaintingView(grid=grid, rows=1, columns=1, title=f"image {self.names[index]}", caption_html=caption,
                            row_labels=(self.names[index],), column_labels=(f"{int(segments.max()) + 1} superpixels",),
                            image_index=index, name=self.names[index], mask=mask, segments=segments,
                            selected=selected, majority=_majority_labels(segments, mask, len(self.label_names)),
                            label_names=self.label_names)

    def legend_html(self) -> str:
        """Each label name after a square of its colour."""
        return " ".join(f'<span style="color:{to_hex(self.colors[k])}">&#9632;</span> {html.escape(name)}'
                        for k, name in enumerate(self.label_names))

    # --- internals ---

    def _apply(self, changes: dict[int, tuple[np.ndarray, int | np.ndarray]]) -> int:
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
            del self._undo[:-UNDO_DEPTH]
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


def _check_images(images: np.ndarray) -> np.ndarray:
    images = to_uint8(np.asarray(images))
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"images must have shape (N, H, W, 3) with N >= 1; got {images.shape}")
    return images


def _majority_labels(segments: np.ndarray, mask: np.ndarray, n_labels: int) -> np.ndarray:
    """The most frequent label of each superpixel, shape (K,)."""
    n_segments = int(segments.max()) + 1
    counts = np.bincount(segments.ravel() * n_labels + mask.ravel(), minlength=n_segments * n_labels)
    return counts.reshape(n_segments, n_labels).argmax(axis=1)


def brush_layout(segments: np.ndarray) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """A cell of a rows x cols grid for every superpixel, as near its centroid as free cells allow.

    Larger superpixels choose first; the grid has about 1.7 cells per superpixel, so every one finds a cell.

    Parameters
    ----------
    segments : ndarray of int, shape (H, W)
        Superpixel ids ``0..K-1``.

    Returns
    -------
    rows, cols : int
        The grid size.
    positions : dict of int to (int, int)
        ``{superpixel: (row, col)}``, by superpixel id.
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
