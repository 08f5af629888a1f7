"""Painted part labels on disk: one uint8 PNG label map per image plus ``labels.json`` with the label names.

Layout of a label folder::

    labels.json     {"format": "linkviz-part-labels", "version": 1,
                     "label_names": ["background", "cap", ...], "files": ["seed0.png", ...]}
    seed0.png       8-bit greyscale; pixel value = index into label_names
    ...

Any image viewer opens the maps, and any tool that writes 8-bit greyscale PNGs can produce them.

:func:`save_labels` never mixes two label sets in one folder: it refuses a folder that holds another set unless
told to replace it, and it writes every file to a temporary file first, so that a failure midway leaves the
folder's previous set intact and loadable.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

__all__ = ["LABELS_FILE", "LabelFileError", "LabelSetConflictError", "PaintedLabels", "check_label_names", "load_labels",
           "save_labels"]

LABELS_FILE = "labels.json"
_FORMAT = "linkviz-part-labels"
_VERSION = 1
_MAX_LABELS = 256
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LabelFileError(ValueError):
    """A label folder or label map that cannot be read as painted labels; the message names the file."""


class LabelSetConflictError(ValueError):
    """A label folder already holds another label set (or an unreadable index); saving there needs ``overwrite``.

    Attributes
    ----------
    directory : Path
        The folder.
    existing : tuple of str or None
        The label names already saved there; None if its index cannot be read.
    requested : tuple of str
        The label names that were to be saved.
    """

    def __init__(self, directory: Path, existing: tuple[str, ...] | None, requested: tuple[str, ...],
                 reason: str = "") -> None:
        self.directory, self.existing, self.requested = directory, existing, requested
        held = (f"holds the label set {list(existing)}" if existing is not None
                else f"holds an index that cannot be read ({reason})")
        super().__init__(f"{directory} {held}, not {list(requested)}; saving there would mix two label sets. "
                         "Save to another folder, or pass overwrite=True to replace its label maps.")


@dataclass(frozen=True)
class PaintedLabels:
    """Label maps of a handful of images with the names of their labels.

    Attributes
    ----------
    masks : ndarray of int64, shape (N, H, W)
        Label ids, indices into ``label_names``.
    label_names : tuple of str
        Name of each label id (id 0 is usually the background).
    names : tuple of str
        Name of each image (its PNG file name without ``.png``).
    """

    masks: np.ndarray
    label_names: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.masks)


def check_label_names(label_names: Sequence[str]) -> tuple[str, ...]:
    """Check the names of a part label set and return them as a tuple.

    A part label set names the background (id 0) and at least one part, as a few-shot segmenter needs two
    classes (:class:`~linkviz.segmentation.PartSegmenter`), and no more labels than a uint8 map can hold.

    Parameters
    ----------
    label_names : sequence of str, length L
        Name of each label id, background first.

    Returns
    -------
    tuple of str, length L

    Raises
    ------
    ValueError
        For fewer than 2 or more than 256 names, or names that are not distinct non-empty strings.
    """
    names = tuple(label_names)
    if not 2 <= len(names) <= _MAX_LABELS:
        raise ValueError(f"need between 2 and {_MAX_LABELS} label names (the background and at least one part, "
                         f"uint8 maps); got {len(names)}")
    if not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"label names must be distinct non-empty strings; got {list(names)}")
    return names


def _check_ids(mask: np.ndarray, *, n_labels: int, where: str) -> None:
    bad = np.unique(mask[(mask < 0) | (mask >= n_labels)])
    if bad.size:
        raise LabelFileError(f"{where}: label ids {bad[:10].tolist()} are not in [0, {n_labels}); the label set has "
                             f"{n_labels} names")


def save_labels(
    directory: str | PathLike[str],
    masks: np.ndarray | Sequence[np.ndarray],
    *,
    label_names: Sequence[str],
    names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write label maps as uint8 PNGs and their label names as ``labels.json``.

    Into a folder that already holds the same label set, the maps are added: a map of the same name is replaced,
    the folder's other maps are kept and stay listed. A folder that holds another label set is refused unless
    ``overwrite`` is set; then it ends up holding exactly these maps, and the old set's other maps are removed.
    Every file is written to a temporary file beside it first and renamed into place once all are written,
    ``labels.json`` last, so a failure midway leaves the folder's previous label set intact.

    Parameters
    ----------
    directory : str or PathLike
        Folder to write into (created if missing).
    masks : ndarray of int, shape (N, H, W), or sequence of (H, W) arrays
        Label ids in ``[0, len(label_names))``.
    label_names : sequence of str
        Distinct names, one per label id: the background and at least one part (see :func:`check_label_names`).
    names : sequence of str, optional
        File stem of each map (letters, digits, ``._-``); default ``"000"``, ``"001"``, ...
    overwrite : bool
        Replace whatever label set the folder holds (removing the maps its index lists that are not written now)
        instead of refusing a different one.

    Returns
    -------
    list of Path
        The PNG files written, in order.

    Raises
    ------
    ValueError
        For bad label names or image names, or masks that are not 2-D integer maps.
    LabelFileError
        If a map holds an id outside ``[0, len(label_names))``.
    LabelSetConflictError
        If the folder holds another label set, or an index that cannot be read, and ``overwrite`` is False.
    """
    label_names = check_label_names(label_names)
    masks = [np.asarray(mask) for mask in masks]
    names = tuple(f"{i:03d}" for i in range(len(masks))) if names is None else tuple(names)
    if len(names) != len(masks) or len(set(names)) != len(names):
        raise ValueError(f"need {len(masks)} distinct image names, got {list(names)}")
    for name, mask in zip(names, masks):
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise ValueError(f"image name {name!r} must be letters, digits, '.', '_' or '-' (it becomes a file name)")
        if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
            raise ValueError(f"label map {name!r} must be a 2-D integer array; got {mask.dtype} {mask.shape}")
        _check_ids(mask, n_labels=len(label_names), where=f"label map {name!r}")
    directory = Path(directory)
    kept = _files_to_keep(directory, label_names, overwrite=overwrite)
    old_files = _listed_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png" for name in names]
    files = [*(file for file in kept if file not in {path.name for path in paths}), *(path.name for path in paths)]
    index = {"format": _FORMAT, "version": _VERSION, "label_names": list(label_names), "files": files}
    staged: list[tuple[str, Path]] = []
    try:
        for path, mask in zip(paths, masks):
            staged.append((_stage(path, lambda handle, m=mask: Image.fromarray(m.astype(np.uint8)).save(
                handle, format="PNG")), path))  # 2-D uint8 -> mode "L"
        staged.append((_stage(directory / LABELS_FILE,
                              lambda handle: handle.write((json.dumps(index, indent=2) + "\n").encode())),
                       directory / LABELS_FILE))
    except BaseException:
        for temporary, _ in staged:
            Path(temporary).unlink(missing_ok=True)
        raise
    for temporary, path in staged:  # labels.json is the last one
        os.replace(temporary, path)
    for orphan in sorted(set(old_files) - set(files)):
        (directory / orphan).unlink(missing_ok=True)
    return paths


def _listed_files(directory: Path) -> list[str]:
    """The map files listed by the folder's index; none if it has no readable index."""
    try:
        return _read_index(directory / LABELS_FILE)[1]
    except (FileNotFoundError, LabelFileError):
        return []


def _files_to_keep(directory: Path, label_names: tuple[str, ...], *, overwrite: bool) -> list[str]:
    """The folder's listed maps that a save keeps; LabelSetConflictError for another label set."""
    if overwrite or not (directory / LABELS_FILE).exists():
        return []
    try:
        existing, files = _read_index(directory / LABELS_FILE)
    except (LabelFileError, OSError) as error:
        raise LabelSetConflictError(directory, None, label_names, reason=str(error)) from None
    if existing != label_names:
        raise LabelSetConflictError(directory, existing, label_names)
    return files


def _stage(path: Path, write: Callable[[BinaryIO], object]) -> str:
    """Write a file's bytes (``write(handle)``) to a synced temporary file beside ``path``; return its name."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _read_index(path: Path) -> tuple[tuple[str, ...], list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"no label index at {path}; a label folder holds {LABELS_FILE} and PNG label maps")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise LabelFileError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(index, dict) or index.get("format") != _FORMAT:
        raise LabelFileError(f"{path}: not a linkviz label index (expected \"format\": \"{_FORMAT}\")")
    if index.get("version") != _VERSION:
        raise LabelFileError(f"{path}: unsupported version {index.get('version')!r} (this linkviz reads {_VERSION})")
    files = index.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) and _SAFE_NAME.match(f) for f in files):
        raise LabelFileError(f"{path}: \"files\" must be a list of plain PNG file names in the same folder")
    try:
        label_names = check_label_names(index.get("label_names") or ())
    except ValueError as error:
        raise LabelFileError(f"{path}: {error}") from None
    return label_names, files


def load_labels(directory: str | PathLike[str]) -> PaintedLabels:
    """Read a label folder written by :func:`save_labels` (or by hand in the same format).

    Parameters
    ----------
    directory : str or PathLike
        Folder with ``labels.json`` and the PNG maps it lists.

    Returns
    -------
    PaintedLabels
        The maps stacked as int64, with the label and image names.

    Raises
    ------
    FileNotFoundError
        If ``labels.json`` or a listed PNG is missing.
    LabelFileError
        If the index is malformed, a map is not an 8-bit greyscale PNG, the maps differ in size, or a map holds
        a label id without a name; the message names the file.
    """
    directory = Path(directory)
    label_names, files = _read_index(directory / LABELS_FILE)
    masks, shape = [], None
    for file in files:
        path = directory / file
        if not path.is_file():
            raise FileNotFoundError(f"label map {path} listed in {directory / LABELS_FILE} does not exist")
        with Image.open(path) as image:
            if image.mode not in ("L", "P"):
                raise LabelFileError(f"{path}: label maps must be 8-bit greyscale PNGs (mode 'L'); got mode "
                                     f"{image.mode!r} (colour-coded masks are not label ids)")
            mask = np.array(image, dtype=np.int64)
        if shape is not None and mask.shape != shape:
            raise LabelFileError(f"{path}: size {mask.shape} differs from the first map's {shape}")
        shape = mask.shape
        _check_ids(mask, n_labels=len(label_names), where=str(path))
        masks.append(mask)
    stacked = np.stack(masks) if masks else np.zeros((0, 0, 0), np.int64)
    return PaintedLabels(masks=stacked, label_names=label_names, names=tuple(Path(f).stem for f in files))
