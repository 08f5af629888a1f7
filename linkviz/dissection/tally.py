"""Vectorised intersection-over-union tally of unit masks against concept labels.

For every unit ``u`` and concept (label) ``c``, summed over the probe set:

- ``intersection[u, c]``: pixels where the unit is on and labelled ``c``;
- ``truth[c]``: pixels labelled ``c`` (a whole-image label counts every pixel of its image);
- ``activation[u, k]``: pixels where the unit is on, counted on the images in which category ``k`` is present;
- ``IoU(u, c) = intersection / (activation[u, primary(c)] + truth - intersection)``.

A unit is on where its activation map, upsampled bilinearly (``align_corners=False``) to the segmentation
resolution, is strictly greater than its threshold. A batch is tallied with whole-tensor operations on CPU or
GPU, never a Python loop over units or images: (image, unit) pairs whose raw maximum cannot exceed the threshold
are dropped, the rest are upsampled together; intersections are one histogram (``bincount``) of
``pair * L + label`` over every active pixel and label layer, summed per unit (and, in lite mode, read as the
categories each pair touches), which is exact in integers and costs in proportion to the active pixels; per-image
active counts meet the per-image category presence in matrix products.

Modes
-----
``"paper"`` (Bau et al. 2017 and the original NetDissect): an image counts toward ``activation[u, k]`` if it holds
any label whose primary category is ``k``. Best label = argmax of IoU over all concepts (lowest label on ties).

``"lite"`` (NetDissect-Lite): an image counts toward ``activation[u, k]`` only if the unit's active pixels overlap
a pixel labelled with a concept of primary category ``k``, or the image has a whole-image label of category ``k``;
the denominator is smaller, so IoUs are biased upward. IoU = I / (U + 1e-10). Best label = best label per
category (lowest label on ties), then the category with the highest IoU (the *last* category on ties). The
threshold level differs too (see :func:`~linkviz.dissection.quantile.lite_level`); Lite's randomised quantile
sketch is not reproduced (the quantile here is exact).

In both modes label 0 (unlabelled) is ignored, concepts with no pixels in the probe set are skipped (IoU NaN),
and a unit whose best IoU is 0 (e.g. a dead unit that never exceeds its threshold) is labelled ``"none"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Mode", "Tally", "TallyCounts", "best_labels", "iou_matrix", "upsample"]

Mode = Literal["paper", "lite"]
_MODES = ("paper", "lite")
_LITE_EPSILON = 1e-10
_EXACT_FLOAT32 = 2**24


def upsample(activations: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly upsample activation maps to the segmentation resolution.

    Parameters
    ----------
    activations : Tensor, shape [n, C, h, w] or [n, C]
        Maps of ``C`` units; a flat ``[n, C]`` output is treated as 1 x 1 maps.
    size : tuple of int
        ``(sh, sw)``.

    Returns
    -------
    Tensor of float32, shape [n, C, sh, sw]
        ``F.interpolate(..., mode="bilinear", align_corners=False)`` (NetDissect-Lite's PIL resize is the same
        map), computed with torch's channels-last kernel: equal to the default layout within a float32 ulp.
        The result is a channels-last view; call ``.contiguous()`` if needed.
    """
    if activations.ndim == 2:
        activations = activations[:, :, None, None]
    if activations.ndim != 4:
        raise ValueError(f"activations must have shape [n, C, h, w] or [n, C], got {tuple(activations.shape)}")
    n, units = activations.shape[:2]
    return _upsample_planes(activations.flatten(0, 1), size).permute(2, 0, 1).unflatten(0, (n, units))


def _upsample_planes(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Upsample maps ``[k, h, w]`` to ``[sh, sw, k]`` (plane index fastest).

    Uses torch's channels-last bilinear kernel on one image with ``k`` channels, which is much faster on CPU than
    ``k`` single-channel images and agrees with the default layout to within one float32 ulp.
    """
    planes = maps.float()[None].contiguous(memory_format=torch.channels_last)
    upsampled = F.interpolate(planes, size=tuple(size), mode="bilinear", align_corners=False)
    return upsampled[0].permute(1, 2, 0)


def _active_pixels(upsampled: Tensor, thresholds: Tensor) -> tuple[Tensor, Tensor]:
    """Positions and pairs where ``upsampled [P, pairs] > thresholds [pairs]`` (row-major order).

    On CPU the comparison and the search run in numpy, several times faster there than torch's ``nonzero``.
    """
    if upsampled.device.type != "cpu":
        return torch.nonzero(upsampled > thresholds, as_tuple=True)
    flat = np.flatnonzero(upsampled.detach().numpy() > thresholds.detach().numpy())
    position, pair = np.divmod(flat, upsampled.shape[1])
    return torch.from_numpy(position), torch.from_numpy(pair)


def _float32_floor(thresholds: np.ndarray) -> np.ndarray:
    """Largest float32 <= each threshold, so ``a > floor32(T)`` equals ``a > T`` for float32 ``a``."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    rounded = thresholds.astype(np.float32)
    too_big = rounded.astype(np.float64) > thresholds
    rounded[too_big] = np.nextafter(rounded[too_big], np.float32(-np.inf))
    return rounded


@dataclass(frozen=True)
class TallyCounts:
    """Accumulated counts of a tally (pixels at segmentation resolution).

    Attributes
    ----------
    intersection : ndarray of float64, shape (C, L)
        Active pixels labelled with each concept.
    activation : ndarray of float64, shape (C, K)
        Active pixels on images where each category is present (mode-dependent, see the module docstring).
    truth : ndarray of float64, shape (L,)
        Pixels labelled with each concept.
    active : ndarray of float64, shape (C,)
        All active pixels of each unit.
    mode : {"paper", "lite"}
    n_images : int
    """

    intersection: np.ndarray
    activation: np.ndarray
    truth: np.ndarray
    active: np.ndarray
    mode: str
    n_images: int


class Tally:
    """Accumulate IoU counts over batches of images.

    Parameters
    ----------
    thresholds : array-like of float, shape (C,)
        Per-unit activation thresholds (a unit is on where its upsampled activation is ``>`` its threshold).
    label_category : array-like of int, shape (L,)
        Primary category of each label, or -1 for labels to skip (label 0 must be -1).
    n_categories : int
        Number of categories K.
    segmentation_shape : tuple of int
        ``(sh, sw)`` of the label maps.
    mode : {"paper", "lite"}
        Which denominator to accumulate (see the module docstring).
    device : str or torch.device
        Where the tally runs.
    max_step_elements : int
        Images are processed in steps of at most this many unit-pixels (``images * C * sh * sw``), which bounds
        memory to a few float32 tensors of that size.
    """

    def __init__(self, thresholds: np.ndarray | Sequence[float], label_category: np.ndarray | Sequence[int], *,
                 n_categories: int, segmentation_shape: tuple[int, int], mode: Mode = "paper",
                 device: str | torch.device = "cpu", max_step_elements: int = 2**23) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        label_category = np.asarray(label_category, dtype=np.int64)
        if label_category.ndim != 1 or not label_category.size or label_category[0] != -1:
            raise ValueError("label_category must be a vector (L,) with -1 for label 0")
        if label_category.max() >= n_categories or label_category.min() < -1:
            raise ValueError(f"label_category must lie in [-1, {n_categories}), got {np.unique(label_category)}")
        self.mode = mode
        self.device = torch.device(device)
        self.segmentation_shape = (int(segmentation_shape[0]), int(segmentation_shape[1]))
        self.max_step_elements = int(max_step_elements)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self._threshold32 = torch.from_numpy(_float32_floor(self.thresholds)).to(self.device).view(1, -1, 1, 1)
        self.n_units = len(self.thresholds)
        self.n_labels = len(label_category)
        self.n_categories = int(n_categories)
        self.label_category = label_category
        onehot = np.zeros((self.n_labels, self.n_categories), np.float64)
        rows = np.nonzero(label_category >= 0)[0]
        onehot[rows, label_category[rows]] = 1.0
        self._category_onehot = torch.from_numpy(onehot).to(self.device)
        self._tallied = torch.from_numpy(label_category >= 0).to(self.device)
        counts = {"dtype": torch.float64, "device": self.device}
        self._intersection = torch.zeros(self.n_units, self.n_labels, **counts)
        self._activation = torch.zeros(self.n_units, self.n_categories, **counts)
        self._truth = torch.zeros(self.n_labels, **counts)
        self._active = torch.zeros(self.n_units, **counts)
        self._n_images = 0

    def update(self, activations: Tensor, *, pixel_labels: np.ndarray | Tensor | None = None,
               image_labels: np.ndarray | Tensor | None = None) -> None:
        """Add a batch of images.

        Parameters
        ----------
        activations : Tensor, shape [n, C, h, w] or [n, C]
            The layer's activation maps (any ``h, w``, 1 x 1 included).
        pixel_labels : array of int, shape (n, layers, sh, sw), optional
            Label maps (all selected categories stacked along ``layers``); 0 = unlabelled.
        image_labels : array of int, shape (n, k), optional
            Whole-image labels; 0 = none.

        Raises
        ------
        ValueError
            If the unit count, image count or label-map resolution does not match, or labels are out of range.
        """
        if activations.ndim == 2:
            activations = activations[:, :, None, None]
        if activations.ndim != 4 or activations.shape[1] != self.n_units:
            raise ValueError(f"activations must have shape [n, {self.n_units}, h, w], got {tuple(activations.shape)}")
        n = activations.shape[0]
        pixel = self._labels(pixel_labels, n, 4, "pixel_labels")
        image = self._labels(image_labels, n, 2, "image_labels")
        if pixel is not None and tuple(pixel.shape[2:]) != self.segmentation_shape:
            raise ValueError(f"mismatched probe resolution: label maps are {pixel.shape[2]}x{pixel.shape[3]}, the "
                             f"tally's segmentation resolution is {self.segmentation_shape[0]}x"
                             f"{self.segmentation_shape[1]}")
        pixels = self.segmentation_shape[0] * self.segmentation_shape[1]
        layers = 1 if pixel is None else max(pixel.shape[1], 1)
        step = max(1, min(self.max_step_elements // (self.n_units * pixels), (_EXACT_FLOAT32 - 1) // (pixels * layers)))
        for start in range(0, n, step):
            stop = min(n, start + step)
            self._update_step(activations[start:stop].to(self.device),
                              None if pixel is None else pixel[start:stop].flatten(2).to(self.device),
                              None if image is None else image[start:stop].to(self.device))
        self._n_images += n

    def _labels(self, labels: np.ndarray | Tensor | None, n: int, ndim: int, name: str) -> Tensor | None:
        if labels is None:
            return None
        labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels)
        if labels.ndim != ndim:
            shape = "(n, layers, sh, sw)" if name == "pixel_labels" else "(n, k)"
            raise ValueError(f"{name} must have shape {shape}, got {tuple(labels.shape)}")
        if labels.shape[0] != n:
            raise ValueError(f"{name} has {labels.shape[0]} images, activations have {n}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_labels):
            raise ValueError(f"{name} holds labels outside [0, {self.n_labels - 1}]")
        return labels.long()

    def _label_counts(self, labels: Tensor) -> Tensor:
        """Occurrences of each label per image, label 0 zeroed: shape [m, L] float64 (one histogram of
        ``image * L + label``)."""
        m = labels.shape[0]
        offsets = torch.arange(m, device=self.device)[:, None] * self.n_labels
        keys = (labels.reshape(m, -1) + offsets).flatten()
        counts = torch.bincount(keys, minlength=m * self.n_labels).view(m, self.n_labels).double()
        counts[:, 0] = 0.0
        return counts

    def _unit_masks(self, activations: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Upsampled, thresholded maps of the (image, unit) pairs that are on somewhere.

        Bilinear interpolation never exceeds a map's maximum, so pairs whose raw maximum is clearly below the
        threshold are skipped (NetDissect-Lite's shortcut, done for all pairs at once); a margin of 1e-6 of the
        threshold keeps the skip exact under float rounding.

        Returns
        -------
        image_index, unit_index : Tensor of int64, shape [pairs]
            The (image, unit) pairs that may be on.
        pair, position : Tensor of int64, shape [on pixels]
            Every active pixel: its pair and its flat position at the segmentation resolution.
        active : Tensor of float64, shape [m, C]
            Active pixels per image and unit.
        """
        m = activations.shape[0]
        threshold = self._threshold32.view(1, -1)
        candidate = activations.flatten(2).amax(2) > threshold - threshold.abs() * 1e-6  # [m, C]
        image_index, unit_index = torch.nonzero(candidate, as_tuple=True)
        active = torch.zeros(m, self.n_units, dtype=torch.float64, device=self.device)
        if not image_index.numel():
            return image_index, unit_index, image_index, image_index, active
        upsampled = _upsample_planes(activations[image_index, unit_index], self.segmentation_shape)  # [sh, sw, pairs]
        position, pair = _active_pixels(upsampled.flatten(0, 1), threshold[0, unit_index])
        counts = torch.bincount(pair, minlength=len(image_index))
        active[image_index, unit_index] = counts.double()
        return image_index, unit_index, pair, position, active

    def _update_step(self, activations: Tensor, pixel: Tensor | None, image: Tensor | None) -> None:
        m, pixels = activations.shape[0], self.segmentation_shape[0] * self.segmentation_shape[1]
        image_index, unit_index, pair, position, active = self._unit_masks(activations.float())
        self._active += active.sum(0)
        labels_present = torch.zeros(m, self.n_labels, dtype=torch.float64, device=self.device)
        image_category = torch.zeros(m, self.n_categories, dtype=torch.bool, device=self.device)
        overlap = None
        if pixel is not None:
            counts = self._label_counts(pixel)
            self._truth += counts.sum(0)
            labels_present += counts
            # every (active pixel, label layer): its label, in one histogram of pair * L + label over the
            # (image, unit) pairs (label 0 and skipped labels are counted too and dropped afterwards: cheaper
            # than masking); rows of the pixel-major label table are read once per active pixel
            rows = pixel.transpose(1, 2).reshape(m * pixels, -1)  # [m * P, layers]
            labels = rows.index_select(0, image_index[pair] * pixels + position)  # [active pixels, layers]
            keys = (pair * self.n_labels)[:, None] + labels
            per_pair = torch.bincount(keys.flatten(), minlength=len(image_index) * self.n_labels)
            per_pair = per_pair.view(len(image_index), self.n_labels)  # [pairs, L]
            both = torch.zeros(self.n_units, self.n_labels, dtype=torch.float64, device=self.device)
            both.index_add_(0, unit_index, per_pair.double())
            self._intersection += both * self._tallied
            if self.mode == "lite":  # the categories each pair's active pixels touch
                overlap = ((per_pair > 0).double() @ self._category_onehot) > 0  # [pairs, K]
        if image is not None:
            counts = self._label_counts(image)
            self._truth += counts.sum(0) * pixels
            labels_present += counts
            self._intersection += active.T @ (counts * self._tallied)
            image_category = (counts @ self._category_onehot) > 0
        if self.mode == "paper":
            category_present = ((labels_present > 0).double() @ self._category_onehot) > 0  # [m, K]
            self._activation += active.T @ category_present.double()
        else:
            present = image_category[:, None, :].expand(m, self.n_units, self.n_categories).clone()
            if overlap is not None:
                present[image_index, unit_index] |= overlap
            self._activation += torch.einsum("mc,mck->ck", active, present.double())

    def counts(self) -> TallyCounts:
        """The counts so far, as numpy arrays."""
        return TallyCounts(intersection=self._intersection.cpu().numpy().copy(),
                           activation=self._activation.cpu().numpy().copy(), truth=self._truth.cpu().numpy().copy(),
                           active=self._active.cpu().numpy().copy(), mode=self.mode, n_images=self._n_images)


def iou_matrix(counts: TallyCounts, label_category: np.ndarray) -> np.ndarray:
    """IoU of every unit with every concept.

    Parameters
    ----------
    counts : TallyCounts
        From :meth:`Tally.counts`.
    label_category : ndarray of int, shape (L,)
        Primary category per label (-1 = skipped).

    Returns
    -------
    ndarray of float64, shape (C, L)
        NaN for label 0, skipped labels and concepts with no pixels.
    """
    label_category = np.asarray(label_category)
    valid = (label_category >= 0) & (counts.truth > 0)
    activation = counts.activation[:, np.maximum(label_category, 0)]
    union = activation + counts.truth[None, :] - counts.intersection
    if counts.mode == "lite":
        iou = counts.intersection / (union + _LITE_EPSILON)
    else:
        iou = np.divide(counts.intersection, union, out=np.zeros_like(union), where=union > 0)
    iou[:, ~valid] = np.nan
    return iou


def best_labels(iou: np.ndarray, label_category: np.ndarray, *, n_categories: int, mode: Mode = "paper"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Best concept of every unit.

    Parameters
    ----------
    iou : ndarray of float, shape (C, L)
        From :func:`iou_matrix` (NaN = skipped).
    label_category : ndarray of int, shape (L,)
        Primary category per label.
    n_categories : int
        Number of categories K.
    mode : {"paper", "lite"}
        Tie rules (see the module docstring).

    Returns
    -------
    labels : ndarray of int64, shape (C,)
        Best label per unit; 0 ("none") where the best IoU is 0 or no concept qualifies.
    scores : ndarray of float64, shape (C,)
        Its IoU (0 for "none").
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    scores_all = np.where(np.isnan(iou), -np.inf, iou)
    units = np.arange(len(iou))
    if mode == "paper":
        labels = np.argmax(scores_all, axis=1)
    else:
        per_category = np.full((len(iou), n_categories), -1, dtype=np.int64)
        best = np.full((len(iou), n_categories), -np.inf)
        for k in range(n_categories):  # loop over categories only
            members = np.nonzero(label_category == k)[0]
            if members.size:
                per_category[:, k] = members[np.argmax(scores_all[:, members], axis=1)]
                best[:, k] = scores_all[units, per_category[:, k]]
        chosen = n_categories - 1 - np.argmax(best[:, ::-1], axis=1) if n_categories else np.zeros(len(iou), int)
        labels = per_category[units, chosen] if n_categories else np.zeros(len(iou), np.int64)
        labels = np.maximum(labels, 0)
    scores = scores_all[units, labels]
    none = ~(scores > 0)
    labels = np.where(none, 0, labels).astype(np.int64)
    return labels, np.where(none, 0.0, scores)
