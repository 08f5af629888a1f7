"""Reading and writing probe data for Network Dissection in the Broden format.

A Broden folder holds ``index.csv`` (one row per image: ``image, split, ih, iw, sh, sw`` and one column per
category), ``category.csv``, ``label.csv``, one ``c_<category>.csv`` per category, and ``images/`` with the images
and their label maps. A category cell lists ``;``-separated entries: a PNG path (a per-pixel label map with
label id = R + 256 * G) or an integer (a label of the whole image). Label 0 means unlabelled. The in-memory probe
set is :class:`~linkviz.dissection.probe_dataset.ProbeDataset`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .probe_dataset import ProbeDataset

__all__ = ["BrodenFormatError", "read", "write"]

_INDEX_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
_MAX_PNG_LABEL = 255 + 256 * 255


class BrodenFormatError(ValueError):
    """A Broden folder whose content is malformed (the message names the file and row)."""


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
