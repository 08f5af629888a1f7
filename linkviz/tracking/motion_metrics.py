"""Summaries of a motion field over the whole image or over part masks.

Metrics (all over the mask's pixels where the field is valid; masks live on the reference grid, i.e. they are
parts of the reference / unperturbed image):

- ``mean_magnitude``: mean displacement length in pixels.
- ``dominant_direction``: circular mean of the angles weighted by magnitude, which is the screen angle of the
  mean displacement vector (0 right, pi/2 up; radians in (-pi, pi]).
- ``direction_coherence``: length of the mean vector over the mean magnitude, in [0, 1]: 1 for a pure
  translation, ~0 for growth, shrinkage or rotation about the part's centre.
- ``divergence``: mean of d(flow_row)/d(row) + d(flow_col)/d(col) (central differences). Positive: the part
  expands; by the divergence theorem it is the outward flux per unit area, ~ the relative area change
  (A1 - A0) / A0 for small motions.

Empty-mask rule: a mask with fewer than ``min_pixels`` valid pixels (e.g. a part absent from the image, a label
that never occurs) gives NaN for every metric, keeps its pixel count, and is listed in
:attr:`PartMotion.skipped`. A mask with pixels but no motion at all has magnitude 0, divergence 0, and a NaN
direction and coherence (a direction of nothing is undefined).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from linkviz.tracking.flow import MotionField

__all__ = ["MotionSummary", "PartMotion", "divergence_map", "part_motion", "summarize_motion"]

_NO_MOTION = 1e-12


@dataclass(frozen=True)
class MotionSummary:
    """Motion metrics of one region; see the module docstring for definitions and the empty-mask rule."""

    n_pixels: int
    mean_magnitude: float
    dominant_direction: float
    direction_coherence: float
    divergence: float


@dataclass(frozen=True)
class PartMotion:
    """Motion metrics per part.

    Attributes
    ----------
    parts : dict of str to MotionSummary
        One summary per requested part, in the order given.
    skipped : tuple of str
        Parts with fewer than ``min_pixels`` valid pixels (their metrics are NaN).
    min_pixels : int
    """

    parts: dict[str, MotionSummary]
    skipped: tuple[str, ...]
    min_pixels: int

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (part, metric): ``part, metric, value, n_pixels``."""
        rows = [{"part": name, "metric": metric, "value": value, "n_pixels": summary.n_pixels}
                for name, summary in self.parts.items()
                for metric, value in asdict(summary).items() if metric != "n_pixels"]
        return pd.DataFrame(rows, columns=["part", "metric", "value", "n_pixels"])


def divergence_map(field: MotionField) -> np.ndarray:
    """Pointwise divergence d(flow_row)/d(row) + d(flow_col)/d(col), shape (H, W); NaN outside the valid region.

    Pixels next to the edge of the valid region are NaN too, so that zeros padded outside it do not count as
    motion.
    """
    divergence = np.gradient(field.flow[0], axis=0) + np.gradient(field.flow[1], axis=1)
    interior = ndi.binary_erosion(field.valid, structure=np.ones((3, 3), bool), border_value=1)
    return np.where(interior, divergence, np.nan)


def summarize_motion(field: MotionField, mask: np.ndarray | None = None, *, min_pixels: int = 1) -> MotionSummary:
    """Motion metrics of ``field`` over ``mask`` (default: the whole valid image).

    Parameters
    ----------
    field : MotionField
        Flow on the reference grid, shape (2, H, W).
    mask : ndarray, shape (H, W), optional
        Region on the reference grid; cast to bool.
    min_pixels : int
        Fewest valid pixels for metrics; fewer gives NaN metrics (the empty-mask rule).

    Returns
    -------
    MotionSummary
    """
    region = _region(field, mask)
    n_pixels = int(region.sum())
    if n_pixels < max(1, min_pixels):
        return MotionSummary(n_pixels, np.nan, np.nan, np.nan, np.nan)
    row_flow, col_flow = field.flow[0][region], field.flow[1][region]
    mean_magnitude = float(np.hypot(row_flow, col_flow).mean())
    mean_row, mean_col = float(row_flow.mean()), float(col_flow.mean())
    if mean_magnitude > _NO_MOTION:
        direction = float(np.arctan2(0.0 - mean_row, mean_col))
        coherence = float(min(1.0, np.hypot(mean_row, mean_col) / mean_magnitude))
    else:
        direction = coherence = np.nan
    divergence = divergence_map(field)[region]
    divergence = divergence[np.isfinite(divergence)]
    mean_divergence = float(divergence.mean()) if divergence.size else np.nan
    return MotionSummary(n_pixels, mean_magnitude, direction, coherence, mean_divergence)


def part_motion(field: MotionField, parts: np.ndarray | Mapping[str, np.ndarray], *,
                label_names: Sequence[str] | None = None, min_pixels: int = 1) -> PartMotion:
    """Motion metrics for every part of a segmentation of the reference image.

    Parameters
    ----------
    field : MotionField
        Flow on the reference grid, shape (2, H, W).
    parts : ndarray of int, shape (H, W), or mapping of str to ndarray, shape (H, W)
        A label image (pixel value = label index) or named boolean masks.
    label_names : sequence of str, optional
        For a label image: the name of label ``k`` is ``label_names[k]``, and every name is reported even if its
        label never occurs. Default: the labels present, named by their value.
    min_pixels : int
        Parts with fewer valid pixels get NaN metrics and are listed in ``skipped``.

    Returns
    -------
    PartMotion
    """
    masks = _masks(parts, label_names, field.shape)
    summaries = {name: summarize_motion(field, mask, min_pixels=min_pixels) for name, mask in masks.items()}
    skipped = tuple(name for name, summary in summaries.items() if summary.n_pixels < max(1, min_pixels))
    return PartMotion(parts=summaries, skipped=skipped, min_pixels=min_pixels)


def _region(field: MotionField, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return field.valid
    mask = np.asarray(mask)
    if mask.shape != field.shape:
        raise ValueError(f"mask has shape {mask.shape}; the field has shape {field.shape}")
    return mask.astype(bool) & field.valid


def _masks(parts: np.ndarray | Mapping[str, np.ndarray], label_names: Sequence[str] | None,
           shape: tuple[int, int]) -> dict[str, np.ndarray]:
    if isinstance(parts, Mapping):
        if label_names is not None:
            raise ValueError("label_names applies to a label image, not to a mapping of masks")
        return {str(name): mask for name, mask in parts.items()}
    labels = np.asarray(parts)
    if labels.shape != shape:
        raise ValueError(f"label image has shape {labels.shape}; the field has shape {shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label image must hold integers; got dtype {labels.dtype}")
    if label_names is None:
        return {str(value): labels == value for value in np.unique(labels)}
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label_names contain duplicates: {list(label_names)}")
    unknown = np.setdiff1d(np.unique(labels), np.arange(len(label_names)))
    if unknown.size:
        raise ValueError(f"labels {unknown.tolist()} have no name (label_names has {len(label_names)} entries)")
    return {name: labels == index for index, name in enumerate(label_names)}
