"""The probe set of Network Dissection: images with per-pixel and whole-image concept labels by category.

:mod:`linkviz.dissection.broden` reads and writes it in the Broden format; :func:`linkviz.worlds.toy.build_toy_probe`
renders one for the toy world.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = ["ProbeDataset"]

_ASPECT_TOLERANCE = 0.02


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
