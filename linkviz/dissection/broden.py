"""Probe data for Network Dissection, and reading and writing it in the Broden format.

A Broden folder holds ``index.csv`` (one row per image: ``image, split, ih, iw, sh, sw`` and one column per
category), ``category.csv``, ``label.csv``, one ``c_<category>.csv`` per category, and ``images/`` with the images
and their label maps. A category cell lists ``;``-separated entries: a PNG path (a per-pixel label map with
label id = R + 256 * G) or an integer (a label of the whole image). Label 0 means unlabelled.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["BrodenFormatError", "ProbeDataset", "read", "write"]

_INDEX_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
_MAX_PNG_LABEL = 255 + 256 * 255
_ASPECT_TOLERANCE = 0.02


class BrodenFormatError(ValueError):
    """A Broden folder whose content is malformed (the message names the file and row)."""


@dataclass(frozen=True, eq=False, repr=False)
class ProbeDataset:
    """Images with per-pixel and whole-image concept labels, grouped into categories.

    Labels are global numbers into ``label_names``; 0 means unlabelled. A category may hold several label layers
    per image (Broden lists several label maps in one cell); all-zero layers pad images that have fewer.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W, 3)
        RGB probe images.
    label_names : tuple of str, length L
        Concept name of each label number; ``label_names[0]`` names "unlabelled" (``"-"`` by convention).
    categories : tuple of str, length K
        Category names, in order (e.g. ``("object", "part", "color", "texture", "scene")``).
    pixel_labels : mapping of str to ndarray of int, shape (N, layers, sh, sw)
        Per-pixel label maps of a category at the segmentation resolution.
    image_labels : mapping of str to ndarray of int, shape (N, k)
        Whole-image labels of a category (0 pads images with fewer than ``k``).
    segmentation_shape : tuple of int, optional
        ``(sh, sw)``; inferred from ``pixel_labels``, or the image size when there are none.
    image_names : tuple of str, optional
        File name of each image relative to ``images/`` (default ``000000.png``, ...).
    label_coverage : ndarray of float, shape (L, K), optional
        Area each label covers in each category, in whole images (Broden's ``c_<cat>.csv`` ``coverage``);
        computed from the labels when omitted. It decides each label's primary category.

    Raises
    ------
    ValueError
        For inconsistent shapes, a segmentation resolution that does not match the images, unknown categories,
        or labels outside ``[0, L)`` (naming the category and image).
    """

    images: np.ndarray
    label_names: tuple[str, ...]
    categories: tuple[str, ...]
    pixel_labels: Mapping[str, np.ndarray] = field(default_factory=dict)
    image_labels: Mapping[str, np.ndarray] = field(default_factory=dict)
    segmentation_shape: tuple[int, int] | None = None
    image_names: tuple[str, ...] | None = None
    label_coverage: np.ndarray | None = None

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 of shape (N, H, W, 3), got {images.dtype} {images.shape}")
        n_images = len(images)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "label_names", tuple(str(name) for name in self.label_names))
        object.__setattr__(self, "categories", tuple(self.categories))
        if not self.label_names:
            raise ValueError("label_names needs at least the name of label 0 (unlabelled)")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"categories must be unique, got {self.categories}")
        pixel = {cat: self._checked(cat, array, 4) for cat, array in dict(self.pixel_labels).items()}
        object.__setattr__(self, "pixel_labels", pixel)
        image = {cat: self._checked(cat, array, 2) for cat, array in dict(self.image_labels).items()}
        object.__setattr__(self, "image_labels", image)
        object.__setattr__(self, "segmentation_shape", self._checked_segmentation_shape())
        names = tuple(f"{i:06d}.png" for i in range(n_images)) if self.image_names is None else tuple(self.image_names)
        if len(names) != n_images:
            raise ValueError(f"{len(names)} image_names for {n_images} images")
        object.__setattr__(self, "image_names", names)
        if self.label_coverage is not None:
            coverage = np.asarray(self.label_coverage, dtype=np.float64)
            if coverage.shape != (len(self.label_names), len(self.categories)):
                raise ValueError(f"label_coverage must have shape (L, K) = "
                                 f"{(len(self.label_names), len(self.categories))}, got {coverage.shape}")
            object.__setattr__(self, "label_coverage", coverage)

    def _checked(self, category: str, array: np.ndarray, ndim: int) -> np.ndarray:
        kind = "pixel_labels" if ndim == 4 else "image_labels"
        if category not in self.categories:
            raise ValueError(f"{kind} has category {category!r}, which is not among categories {self.categories}")
        array = np.asarray(array)
        shape = "(N, layers, sh, sw)" if ndim == 4 else "(N, k)"
        if array.ndim != ndim or len(array) != len(self.images) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{kind}[{category!r}] must be an integer array of shape {shape} with "
                             f"N = {len(self.images)}, got {array.dtype} {array.shape}")
        if array.size:
            low, high = int(array.min()), int(array.max())
            if low < 0 or high >= len(self.label_names):
                bad = (array < 0) | (array >= len(self.label_names))
                image = int(np.nonzero(bad.reshape(len(array), -1).any(1))[0][0])
                value = int(array[image][bad[image]].flat[0])
                raise ValueError(f"{kind}[{category!r}] image {image}: label {value} is out of range "
                                 f"[0, {len(self.label_names) - 1}]")
        return array.astype(np.int32, copy=False)

    def _checked_segmentation_shape(self) -> tuple[int, int]:
        shapes = {cat: tuple(array.shape[2:]) for cat, array in self.pixel_labels.items()}
        if self.segmentation_shape is not None:
            shape = tuple(int(s) for s in self.segmentation_shape)
        elif shapes:
            shape = next(iter(shapes.values()))
        else:
            shape = tuple(self.images.shape[1:3])
        for cat, other in shapes.items():
            if other != shape:
                raise ValueError(f"mismatched probe resolution: pixel labels of category {cat!r} are {other[0]}x"
                                 f"{other[1]}, but the segmentation resolution is {shape[0]}x{shape[1]}")
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"segmentation_shape must be (sh, sw) with positive sizes, got {shape}")
        height, width = self.images.shape[1:3]
        if abs(shape[0] / height - shape[1] / width) > _ASPECT_TOLERANCE * max(shape[0] / height, shape[1] / width):
            raise ValueError(f"mismatched probe resolution: segmentation {shape[0]}x{shape[1]} does not have the "
                             f"aspect ratio of the {height}x{width} images")
        return shape

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        kinds = [f"{cat}: " + "+".join(k for k, d in (("pixel", self.pixel_labels), ("image", self.image_labels))
                                       if cat in d) for cat in self.categories]
        return (f"ProbeDataset({len(self)} images {self.images.shape[1]}x{self.images.shape[2]}, segmentation "
                f"{self.segmentation_shape[0]}x{self.segmentation_shape[1]}, {len(self.label_names) - 1} labels; "
                + ", ".join(kinds) + ")")

    @property
    def n_labels(self) -> int:
        """Number of label numbers L, including 0."""
        return len(self.label_names)

    def image_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images ``indices``, shape (n, H, W, 3), uint8."""
        return self.images[np.asarray(indices, dtype=np.int64)]

    def label_batch(self, indices: Sequence[int] | np.ndarray, *, categories: Sequence[str] | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The labels of some images, stacked over categories.

        Parameters
        ----------
        indices : sequence of int
            Image indices.
        categories : sequence of str, optional
            Categories to include (default all).

        Returns
        -------
        pixel : ndarray of int32, shape (n, layers, sh, sw), or None
            Label maps of all selected categories, concatenated along the layer axis.
        image : ndarray of int32, shape (n, k), or None
            Whole-image labels of all selected categories, concatenated.
        """
        indices = np.asarray(indices, dtype=np.int64)
        categories = self._selected(categories)
        pixel = [self.pixel_labels[c][indices] for c in categories if c in self.pixel_labels]
        image = [self.image_labels[c][indices] for c in categories if c in self.image_labels]
        return (np.concatenate(pixel, 1) if pixel else None), (np.concatenate(image, 1) if image else None)

    def _selected(self, categories: Sequence[str] | None) -> tuple[str, ...]:
        if categories is None:
            return self.categories
        categories = tuple(categories)
        unknown = [c for c in categories if c not in self.categories]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; the probe has {self.categories}")
        return categories

    def coverage(self) -> np.ndarray:
        """Area of each label in each category, in whole images.

        Returns
        -------
        ndarray of float64, shape (L, K)
            ``label_coverage`` if given, else pixel counts / (sh * sw) plus one per whole-image label;
            row 0 (unlabelled) is zero.
        """
        if self.label_coverage is not None:
            return self.label_coverage
        coverage = np.zeros((self.n_labels, len(self.categories)))
        pixels_per_image = self.segmentation_shape[0] * self.segmentation_shape[1]
        for k, category in enumerate(self.categories):
            if category in self.pixel_labels:
                counts = np.bincount(self.pixel_labels[category].ravel(), minlength=self.n_labels)
                coverage[:, k] += counts / pixels_per_image
            if category in self.image_labels:
                coverage[:, k] += np.bincount(self.image_labels[category].ravel(), minlength=self.n_labels)
        coverage[0] = 0.0
        return coverage

    def primary_categories(self, categories: Sequence[str] | None = None) -> np.ndarray:
        """Each label's primary category: the one where it covers most area.

        Ties go to the later category (as in NetDissect); labels with no coverage in ``categories``, and label 0,
        get -1.

        Parameters
        ----------
        categories : sequence of str, optional
            The categories to choose from (default all), in order.

        Returns
        -------
        ndarray of int64, shape (L,)
            Index into ``categories``, or -1.
        """
        categories = self._selected(categories)
        columns = [self.categories.index(c) for c in categories]
        coverage = self.coverage()[:, columns]
        if not columns:
            return np.full(self.n_labels, -1, dtype=np.int64)
        later_first = coverage[:, ::-1]
        primary = len(columns) - 1 - np.argmax(later_first, axis=1)
        primary[coverage.max(axis=1) <= 0] = -1
        primary[0] = -1
        return primary.astype(np.int64)

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of images, labels, names, categories and coverage (not image names), 16 hex digits."""
        digest = hashlib.sha256()
        header = {"label_names": self.label_names, "categories": self.categories,
                  "segmentation_shape": self.segmentation_shape}
        digest.update(json.dumps(header).encode())
        arrays = [("images", self.images), ("coverage", self.coverage())]
        arrays += [(f"pixel/{c}", a) for c, a in sorted(self.pixel_labels.items())]
        arrays += [(f"image/{c}", a) for c, a in sorted(self.image_labels.items())]
        for name, array in arrays:
            array = np.ascontiguousarray(array)
            digest.update(f"|{name}|{array.dtype}|{array.shape}|".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------- reading


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line number, row)`` pairs of a CSV file."""
    if not path.is_file():
        raise FileNotFoundError(f"Broden file {path} not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [(reader.line_num, row) for row in reader]
        return list(reader.fieldnames or []), rows


def _integer(value: str | None, *, where: str, column: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise BrodenFormatError(f"{where}: column {column!r} must be an integer, got {value!r}") from None


def _read_labels(directory: Path) -> tuple[str, ...]:
    header, rows = _read_csv(directory / "label.csv")
    _require_columns(header, ("number", "name"), "label.csv")
    names: dict[int, str] = {}
    for line, row in rows:
        number = _integer(row["number"], where=f"label.csv line {line}", column="number")
        if number < 0 or number > _MAX_PNG_LABEL or number in names:
            raise BrodenFormatError(f"label.csv line {line}: label number {number} is duplicated or outside "
                                    f"[0, {_MAX_PNG_LABEL}]")
        names[number] = row["name"]
    label_names = ["-"] + [""] * max(names, default=0)
    for number, name in names.items():
        label_names[number] = name
    return tuple(label_names)


def _require_columns(header: Sequence[str], columns: Sequence[str], file: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise BrodenFormatError(f"{file} lacks columns {missing} (has {list(header)})")


def _read_coverage(directory: Path, categories: Sequence[str], n_labels: int) -> np.ndarray:
    coverage = np.zeros((n_labels, len(categories)))
    for k, category in enumerate(categories):
        file = f"c_{category}.csv"
        header, rows = _read_csv(directory / file)
        _require_columns(header, ("number", "coverage"), file)
        for line, row in rows:
            number = _integer(row["number"], where=f"{file} line {line}", column="number")
            if not 0 <= number < n_labels:
                raise BrodenFormatError(f"{file} line {line}: label {number} is out of range [0, {n_labels - 1}] "
                                        "of label.csv")
            try:
                coverage[number, k] = float(row["coverage"]) if number else 0.0
            except ValueError:
                raise BrodenFormatError(f"{file} line {line}: coverage {row['coverage']!r} is not a number") from None
    return coverage


@dataclass
class _IndexRow:
    line: int
    image: str
    size: tuple[int, int]
    segmentation: tuple[int, int]
    maps: dict[str, list[str]]
    scalars: dict[str, list[int]]


def _parse_index_row(line: int, row: dict[str, str], categories: Sequence[str]) -> _IndexRow:
    where = f"index.csv line {line} (image {row['image']!r})"
    numbers = {c: _integer(row[c], where=where, column=c) for c in ("ih", "iw", "sh", "sw")}
    maps: dict[str, list[str]] = {}
    scalars: dict[str, list[int]] = {}
    for category in categories:
        entries = [e.strip() for e in (row[category] or "").split(";") if e.strip()]
        maps[category] = [e for e in entries if not e.lstrip("-").isdigit()]
        scalars[category] = [int(e) for e in entries if e.lstrip("-").isdigit()]
    return _IndexRow(line, row["image"], (numbers["ih"], numbers["iw"]), (numbers["sh"], numbers["sw"]), maps,
                     scalars)


def _load_label_map(path: Path, *, where: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{where}: label map {path} not found")
    with Image.open(path) as image:
        if image.mode not in ("RGB", "RGBA", "P"):
            raise BrodenFormatError(f"{where}: label map {path.name} has PIL mode {image.mode!r}; Broden label maps "
                                    "are RGB with label = R + 256 * G")
        rgb = np.asarray(image.convert("RGB"), dtype=np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1]


def read(directory: str | Path, *, categories: Sequence[str] | None = None,
         rows: Sequence[int] | None = None) -> ProbeDataset:
    """Read a Broden-format folder into memory.

    Parameters
    ----------
    directory : path
        Folder with ``index.csv``, ``category.csv``, ``label.csv``, ``c_<category>.csv`` and ``images/``.
    categories : sequence of str, optional
        Categories to read (default all in ``category.csv``).
    rows : sequence of int, optional
        0-based data rows of ``index.csv`` to read (default all); use it to bound memory on full Broden.

    Returns
    -------
    ProbeDataset
        With ``label_coverage`` from the ``c_<category>.csv`` files.

    Raises
    ------
    FileNotFoundError
        For a missing CSV file, image or label map (naming the ``index.csv`` line).
    BrodenFormatError
        For malformed rows, images or label maps of another size than declared or than the other rows, and labels
        out of range (naming the file, line and value).
    """
    directory = Path(directory)
    _, category_rows = _read_csv(directory / "category.csv")
    all_categories = tuple(row["name"] for _, row in category_rows)
    categories = all_categories if categories is None else tuple(categories)
    unknown = [c for c in categories if c not in all_categories]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; category.csv lists {all_categories}")
    label_names = _read_labels(directory)
    coverage = _read_coverage(directory, categories, len(label_names))
    header, index_rows = _read_csv(directory / "index.csv")
    _require_columns(header, _INDEX_COLUMNS + categories, "index.csv")
    if rows is not None:
        index_rows = [index_rows[i] for i in rows]
    parsed = [_parse_index_row(line, row, categories) for line, row in index_rows]
    if not parsed:
        raise BrodenFormatError(f"{directory / 'index.csv'} selects no images")
    images, pixel_labels, image_labels = _allocate(parsed, categories)
    for i, row in enumerate(parsed):
        where = f"index.csv line {row.line} (image {row.image!r})"
        for other, what in ((row.size, "image size"), (row.segmentation, "segmentation size")):
            first = parsed[0].size if what == "image size" else parsed[0].segmentation
            if other != first:
                raise BrodenFormatError(f"{where}: {what} {other[0]}x{other[1]} differs from {first[0]}x{first[1]} "
                                        f"of line {parsed[0].line}; a probe needs one size")
        images[i] = _load_image(directory / "images" / row.image, size=row.size, where=where)
        for category in categories:
            for layer, entry in enumerate(row.maps[category]):
                label_map = _load_label_map(directory / "images" / entry, where=f"{where}, column {category!r}")
                if label_map.shape != row.segmentation:
                    raise BrodenFormatError(f"{where}, column {category!r}: label map {entry!r} is "
                                            f"{label_map.shape[0]}x{label_map.shape[1]}, but sh x sw is "
                                            f"{row.segmentation[0]}x{row.segmentation[1]}")
                _check_range(label_map, len(label_names), where=f"{where}, column {category!r}: label map {entry!r}")
                pixel_labels[category][i, layer] = label_map
            scalars = np.asarray(row.scalars[category], dtype=np.int64)
            _check_range(scalars, len(label_names), where=f"{where}, column {category!r}: whole-image label")
            image_labels[category][i, :len(scalars)] = scalars
    return ProbeDataset(
        images=images, label_names=label_names, categories=categories,
        pixel_labels={c: a for c, a in pixel_labels.items() if a.shape[1]},
        image_labels={c: a for c, a in image_labels.items() if a.shape[1]},
        segmentation_shape=parsed[0].segmentation, image_names=tuple(r.image for r in parsed),
        label_coverage=coverage,
    )


def _allocate(parsed: Sequence[_IndexRow], categories: Sequence[str]
              ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    n, (height, width), (sh, sw) = len(parsed), parsed[0].size, parsed[0].segmentation
    images = np.zeros((n, height, width, 3), np.uint8)
    pixel = {c: np.zeros((n, max(len(r.maps[c]) for r in parsed), sh, sw), np.int32) for c in categories}
    image = {c: np.zeros((n, max(len(r.scalars[c]) for r in parsed)), np.int32) for c in categories}
    return images, pixel, image


def _load_image(path: Path, *, size: tuple[int, int], where: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{where}: image {path} not found")
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    if rgb.shape[:2] != size:
        raise BrodenFormatError(f"{where}: image is {rgb.shape[0]}x{rgb.shape[1]}, but ih x iw is {size[0]}x{size[1]}")
    return rgb


def _check_range(labels: np.ndarray, n_labels: int, *, where: str) -> None:
    bad = labels[(labels < 0) | (labels >= n_labels)]
    if bad.size:
        raise BrodenFormatError(f"{where} holds label {int(bad.flat[0])}, out of range [0, {n_labels - 1}] "
                                "of label.csv")


# ---------------------------------------------------------------------------------------------------- writing


def write(probe: ProbeDataset, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write a probe set as a Broden folder.

    Images and label maps are written as PNG (lossless if the image names end in ``.png``), every label layer of
    every image is listed, whole-image labels are written as integers (zeros omitted), and all images get split
    ``train``. ``read(write(probe, d))`` gives back the same arrays.

    Parameters
    ----------
    probe : ProbeDataset
        The probe set.
    directory : path
        Target folder (created).
    overwrite : bool
        Replace an existing ``index.csv``.

    Returns
    -------
    Path
        ``directory``.

    Raises
    ------
    FileExistsError
        If ``directory/index.csv`` exists and ``overwrite`` is false.
    ValueError
        If a pixel label exceeds what a PNG label map can hold (65535).
    """
    directory = Path(directory)
    if (directory / "index.csv").exists() and not overwrite:
        raise FileExistsError(f"{directory / 'index.csv'} exists; pass overwrite=True to replace it")
    if probe.n_labels - 1 > _MAX_PNG_LABEL and probe.pixel_labels:
        raise ValueError(f"{probe.n_labels - 1} labels do not fit in RGB label maps (at most {_MAX_PNG_LABEL})")
    (directory / "images").mkdir(parents=True, exist_ok=True)
    (sh, sw), (height, width) = probe.segmentation_shape, probe.images.shape[1:3]
    index_rows = []
    for i, name in enumerate(probe.image_names):
        path = directory / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(probe.images[i]).save(path)
        row = {"image": name, "split": "train", "ih": height, "iw": width, "sh": sh, "sw": sw}
        for category in probe.categories:
            entries = []
            if category in probe.pixel_labels:
                for layer, label_map in enumerate(probe.pixel_labels[category][i]):
                    entry = f"{Path(name).with_suffix('').as_posix()}_{category}_{layer}.png"
                    _save_label_map(label_map, directory / "images" / entry)
                    entries.append(entry)
            if category in probe.image_labels:
                entries += [str(int(v)) for v in probe.image_labels[category][i] if v]
            row[category] = ";".join(entries)
        index_rows.append(row)
    _write_csv(directory / "index.csv", _INDEX_COLUMNS + probe.categories, index_rows)
    _write_label_tables(probe, directory)
    return directory


def _save_label_map(label_map: np.ndarray, path: Path) -> None:
    rgb = np.zeros(label_map.shape + (3,), np.uint8)
    rgb[..., 0] = label_map % 256
    rgb[..., 1] = label_map // 256
    Image.fromarray(rgb).save(path)


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def _image_frequency(probe: ProbeDataset) -> np.ndarray:
    """Number of images in which each label occurs, per category: shape (L, K)."""
    frequency = np.zeros((probe.n_labels, len(probe.categories)), np.int64)
    for k, category in enumerate(probe.categories):
        present = np.zeros((len(probe), probe.n_labels), bool)
        for labels in (probe.pixel_labels.get(category), probe.image_labels.get(category)):
            if labels is not None:
                flat = labels.reshape(len(probe), -1)
                rows = np.repeat(np.arange(len(probe)), flat.shape[1])
                present[rows, flat.ravel()] = True
        frequency[:, k] = present.sum(0)
    frequency[0] = 0
    return frequency


def _write_label_tables(probe: ProbeDataset, directory: Path) -> None:
    coverage, frequency = probe.coverage(), _image_frequency(probe)
    labels_in = [np.nonzero(coverage[:, k] > 0)[0] for k in range(len(probe.categories))]
    category_rows = []
    for k, category in enumerate(probe.categories):
        numbers = labels_in[k]
        any_label = np.zeros(len(probe), bool)
        for labels in (probe.pixel_labels.get(category), probe.image_labels.get(category)):
            if labels is not None:
                any_label |= labels.reshape(len(probe), -1).any(1)
        category_rows.append({"name": category, "first": int(numbers.min()) if numbers.size else 0,
                              "last": int(numbers.max()) if numbers.size else 0, "count": int(numbers.size),
                              "frequency": int(any_label.sum())})
        _write_csv(directory / f"c_{category}.csv", ("code", "number", "name", "frequency", "coverage"),
                   [{"code": code, "number": int(n), "name": probe.label_names[n], "frequency": int(frequency[n, k]),
                     "coverage": repr(float(coverage[n, k]))} for code, n in enumerate(numbers, start=1)])
    _write_csv(directory / "category.csv", ("name", "first", "last", "count", "frequency"), category_rows)
    label_rows = []
    for number in range(1, probe.n_labels):
        member = [f"{c}({int(frequency[number, k])})" for k, c in enumerate(probe.categories) if coverage[number, k]]
        label_rows.append({"number": number, "name": probe.label_names[number], "category": ";".join(member),
                           "frequency": int(frequency[number].sum()), "coverage": repr(float(coverage[number].sum())),
                           "syns": ""})
    _write_csv(directory / "label.csv", ("number", "name", "category", "frequency", "coverage", "syns"), label_rows)
