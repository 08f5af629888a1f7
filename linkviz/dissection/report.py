"""What a Network Dissection report shows, as arrays and tables: top images with unit masks, the summary table.

Everything here is computed from a :class:`~linkviz.dissection.DissectionResult` (which keeps each unit's top
images and its maps on them) and the probe, without running the model again. Figures and the HTML page that
use these live in :mod:`linkviz.plotting.dissection_figures` and :mod:`linkviz.plotting.dissection_html`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from .dissect import DissectionResult
from .probe_dataset import ProbeDataset
from .tally import _float32_floor, upsample

__all__ = ["CAUSAL_COLUMNS", "UnitImages", "display_label", "mask_outline", "overlay", "summary_line",
           "summary_table", "unit_images", "with_causal_scores"]

#: Columns :func:`with_causal_scores` adds: the causal score of each unit's own label and its interval.
CAUSAL_COLUMNS = ("causal_score", "causal_ci_low", "causal_ci_high")

#: Brightness of the image outside a unit's mask in the overlay (NetDissect's ``image * (0.2 + 0.8 * mask)``).
OVERLAY_FLOOR = 0.2


@dataclass(frozen=True)
class UnitImages:
    """A unit's top-activating probe images with the unit's masks on them.

    Attributes
    ----------
    unit : int
    indices : ndarray of int64, shape (k,)
        Probe image indices, highest spatial maximum first.
    maxima : ndarray of float32, shape (k,)
        The unit's spatial maximum on each image.
    images : ndarray of uint8, shape (k, H, W, 3)
    masks : ndarray of bool, shape (k, H, W)
        Where the unit's map, upsampled bilinearly to the image resolution, is above its threshold.
    """

    unit: int
    indices: np.ndarray
    maxima: np.ndarray
    images: np.ndarray
    masks: np.ndarray

    def overlays(self, *, floor: float = OVERLAY_FLOOR, outline: tuple[int, int, int] | None = (255, 255, 0)
                 ) -> np.ndarray:
        """The images dimmed outside the masks, with mask outlines: shape (k, H, W, 3) uint8 (see :func:`overlay`)."""
        return overlay(self.images, self.masks, floor=floor, outline=outline)


def _require_top_images(result: DissectionResult) -> None:
    if result.top_images is None or result.top_maps is None:
        raise ValueError("the dissection kept no top images; run dissect(..., top_k=10) (top_k > 0)")


def unit_images(result: DissectionResult, probe: ProbeDataset, unit: int, *, k: int | None = None) -> UnitImages:
    """A unit's top images and masks at image resolution.

    Parameters
    ----------
    result : DissectionResult
        From :func:`~linkviz.dissection.dissect` with ``top_k > 0``.
    probe : ProbeDataset
        The probe the result was computed on.
    unit : int
    k : int, optional
        How many images (default all kept, ``result.top_images.shape[1]``).

    Returns
    -------
    UnitImages

    Raises
    ------
    ValueError
        If the result kept no top images, ``unit`` is out of range or the probe has fewer images than the result.
    """
    _require_top_images(result)
    n_units, kept = result.top_images.shape
    if not 0 <= unit < n_units:
        raise ValueError(f"unit {unit} is out of range [0, {n_units})")
    if result.counts.n_images != len(probe):
        raise ValueError(f"the result was computed on {result.counts.n_images} images, the probe has {len(probe)}")
    k = kept if k is None else min(int(k), kept)
    indices = result.top_images[unit, :k]
    maps = torch.from_numpy(np.ascontiguousarray(result.top_maps[unit, :k]))[:, None]  # [k, 1, h, w]
    size = probe.images.shape[1:3]
    upsampled = upsample(maps, size)[:, 0].numpy()
    threshold = _float32_floor(result.thresholds[unit:unit + 1])[0]
    return UnitImages(unit=int(unit), indices=indices.copy(), maxima=result.image_max[indices, unit].copy(),
                      images=probe.images[indices], masks=upsampled > threshold)


def mask_outline(masks: np.ndarray) -> np.ndarray:
    """Boundary pixels of binary masks: on pixels with an off 4-neighbour (the image border counts as off).

    Parameters
    ----------
    masks : ndarray of bool, shape (..., H, W)

    Returns
    -------
    ndarray of bool, shape (..., H, W)
    """
    masks = np.asarray(masks, dtype=bool)
    pad = [(0, 0)] * (masks.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(masks, pad, constant_values=False)
    interior = (padded[..., :-2, 1:-1] & padded[..., 2:, 1:-1] & padded[..., 1:-1, :-2] & padded[..., 1:-1, 2:])
    return masks & ~interior


def overlay(images: np.ndarray, masks: np.ndarray, *, floor: float = OVERLAY_FLOOR,
            outline: tuple[int, int, int] | None = (255, 255, 0)) -> np.ndarray:
    """Show where a unit fires: ``image * (floor + (1 - floor) * mask)``, with the mask's outline drawn on top.

    Parameters
    ----------
    images : ndarray of uint8, shape (..., H, W, 3)
    masks : ndarray of bool, shape (..., H, W)
    floor : float
        Brightness outside the mask (0.2 in NetDissect).
    outline : tuple of int, optional
        RGB colour of the mask boundary; ``None`` draws none.

    Returns
    -------
    ndarray of uint8, shape (..., H, W, 3)
    """
    images = np.asarray(images)
    masks = np.asarray(masks, dtype=bool)
    if images.dtype != np.uint8 or images.shape[-1] != 3 or images.shape[:-1] != masks.shape:
        raise ValueError(f"images must be uint8 (..., H, W, 3) and masks (..., H, W); got {images.dtype} "
                         f"{images.shape} and {masks.shape}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must lie in [0, 1], got {floor}")
    weight = floor + (1.0 - floor) * masks[..., None]
    shown = np.round(images * weight).astype(np.uint8)
    if outline is not None:
        shown[mask_outline(masks)] = np.asarray(outline, np.uint8)
    return shown


def display_label(name: str) -> str:
    """A label as reports print it: Broden's ``-s`` / ``-c`` suffix dropped, underscores as spaces."""
    if name.endswith(("-s", "-c")):
        name = name[:-2]
    return name.replace("_", " ")


def summary_line(result: DissectionResult) -> str:
    """``"X/Y units covering Z concepts with IoU > 0.04"`` (NetDissect's report header)."""
    return (f"{int(result.is_detector.sum())}/{len(result.thresholds)} units covering {result.unique_detectors()} "
            f"concepts with IoU > {result.detector_threshold:g}")


def with_causal_scores(table: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """``table`` with the causal score of each row's own label (:data:`CAUSAL_COLUMNS`).

    Parameters
    ----------
    table : DataFrame
        Columns ``unit, label`` at least (e.g. :func:`summary_table`).
    scores : DataFrame or None
        Columns ``unit, label, score, ci_low, ci_high`` (:func:`linkviz.labels.causal_scores`); rows of other
        labels of a unit are ignored. ``None`` adds the columns as NaN.

    Returns
    -------
    DataFrame
        A copy of ``table`` in the same order; NaN where no score of the unit's label was given.

    Raises
    ------
    ValueError
        If ``scores`` lacks a column or holds two scores of one (unit, label).
    """
    table = table.copy()
    if scores is None:
        for column in CAUSAL_COLUMNS:
            table[column] = np.nan
        return table
    missing = [c for c in ("unit", "label", "score", "ci_low", "ci_high") if c not in scores.columns]
    if missing:
        raise ValueError(f"the causal scores lack columns {missing}; pass the table of linkviz.labels.causal_scores")
    scores = scores[["unit", "label", "score", "ci_low", "ci_high"]].astype({"unit": np.int64, "label": str})
    if scores.duplicated(["unit", "label"]).any():
        twice = scores.loc[scores.duplicated(["unit", "label"]), ["unit", "label"]].iloc[0].tolist()
        raise ValueError(f"the causal scores hold (unit, label) {twice} more than once; keep one score per pair")
    keys = pd.MultiIndex.from_arrays([table["unit"].astype(np.int64), table["label"].astype(str)])
    found = scores.set_index(["unit", "label"]).reindex(keys)
    for column, source in zip(CAUSAL_COLUMNS, ("score", "ci_low", "ci_high")):
        table[column] = found[source].to_numpy(dtype=np.float64)
    return table


def summary_table(result: DissectionResult, *, order: Literal["unit", "iou", "label"] = "unit",
                  causal_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per unit: its label and IoU, threshold, activity and top image.

    Parameters
    ----------
    result : DissectionResult
    order : {"unit", "iou", "label"}
        Row order: by unit; by IoU (highest first); or by label as in the bar graph (category order, then
        concepts with most detectors first, then IoU).
    causal_scores : DataFrame, optional
        Causal scores of unit labels (:func:`linkviz.labels.causal_scores`); adds the columns
        ``causal_score, causal_ci_low, causal_ci_high`` of each unit's own label (see :func:`with_causal_scores`).

    Returns
    -------
    DataFrame
        Columns ``unit, label, category, iou, is_detector, threshold, active_pixels, dead, top_image`` (the
        latter -1 if the result kept no top images), then the causal columns when ``causal_scores`` is given.
    """
    frame = result.to_frame()
    frame["threshold"] = result.thresholds
    frame["active_pixels"] = result.counts.active.astype(np.int64)
    frame["dead"] = result.dead_units
    frame["top_image"] = result.top_images[:, 0] if result.top_images is not None else -1
    if causal_scores is not None:
        frame = with_causal_scores(frame, causal_scores)
    if order == "unit":
        return frame
    if order == "iou":
        return frame.sort_values(["iou", "unit"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if order != "label":
        raise ValueError(f"order must be 'unit', 'iou' or 'label', got {order!r}")
    bars = result.detectors_per_concept()
    rank = {(c, label): i for i, (c, label) in enumerate(zip(bars.category, bars.label))}
    frame["_rank"] = [rank.get((c, label), len(rank)) if d else len(rank) + 1
                      for c, label, d in zip(frame.category, frame.label, frame.is_detector)]
    frame = frame.sort_values(["_rank", "iou", "unit"], ascending=[True, False, True], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)
