"""Concept regions of probe images: the (mask, names) samples the explainer is trained on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..dissection.probe_dataset import ProbeDataset

__all__ = ["concept_labels", "image_regions"]


def concept_labels(probe: ProbeDataset, *, categories: Sequence[str] | None = None,
                   concepts: Sequence[str] | None = None) -> np.ndarray:
    """Label numbers of the concepts to use.

    Parameters
    ----------
    probe : ProbeDataset
    categories : sequence of str, optional
        Probe categories to read (default all).
    concepts : sequence of str, optional
        Concept names (default: every label with pixels or whole-image labels in ``categories``).

    Returns
    -------
    ndarray of int64, shape (K,)
        Sorted label numbers.

    Raises
    ------
    ValueError
        For unknown categories or names, repeated names, or a concept with no pixels in ``categories``
        (an empty mask).
    """
    categories = probe.categories if categories is None else tuple(categories)
    unknown = [c for c in categories if c not in probe.categories]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; the probe has {probe.categories}")
    columns = [probe.categories.index(c) for c in categories]
    coverage = probe.coverage()[:, columns].sum(1) if columns else np.zeros(probe.n_labels)
    coverage[0] = 0.0
    if concepts is None:
        labels = np.nonzero(coverage > 0)[0]
        if not labels.size:
            raise ValueError(f"the probe has no labelled pixels in categories {categories}")
        return labels.astype(np.int64)
    number = {name: i for i, name in enumerate(probe.label_names) if i}
    missing = [c for c in concepts if c not in number]
    if missing:
        raise ValueError(f"unknown concept names {missing}; the probe's labels are {probe.label_names[1:]}")
    if len(set(concepts)) != len(concepts):
        raise ValueError(f"concept names repeat: {list(concepts)}")
    labels = np.array(sorted(number[c] for c in concepts), dtype=np.int64)
    empty = [probe.label_names[i] for i in labels if coverage[i] <= 0]
    if empty:
        raise ValueError(f"concepts {empty} have an empty mask: no pixels or whole-image labels in categories "
                         f"{categories}")
    return labels


def image_regions(pixel_labels: np.ndarray | None, image_labels: np.ndarray | None, *, keep: np.ndarray,
                  segmentation_shape: tuple[int, int]) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """The regions of one image: one mask per kept concept, identical masks merged.

    Parameters
    ----------
    pixel_labels : ndarray of int, shape (layers, sh, sw), or None
        The image's label maps (all selected categories).
    image_labels : ndarray of int, shape (k,), or None
        Whole-image labels (their mask is the whole image).
    keep : ndarray of bool, shape (L,)
        Which label numbers to use.
    segmentation_shape : tuple of int
        ``(sh, sw)``.

    Returns
    -------
    list of (tuple of int, ndarray of bool, shape (sh, sw))
        Label numbers sharing a mask (e.g. a cap that is the only red region is "cap" and "red"), and the mask,
        in order of the smallest label.
    """
    masks: dict[int, np.ndarray] = {}
    if pixel_labels is not None:
        for label in np.unique(pixel_labels):
            if label and keep[label]:
                masks[int(label)] = (pixel_labels == label).any(0)
    if image_labels is not None:
        for label in np.unique(image_labels):
            if label and keep[label]:
                masks[int(label)] = np.ones(segmentation_shape, bool)
    merged: dict[bytes, tuple[list[int], np.ndarray]] = {}
    for label in sorted(masks):
        key = np.packbits(masks[label]).tobytes()
        merged.setdefault(key, ([], masks[label]))[0].append(label)
    return [(tuple(labels), mask) for labels, mask in merged.values()]
