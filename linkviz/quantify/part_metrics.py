"""Per-part image metrics over the steps of a unit tuning: area, luminance, entropy, ellipse shape and angle.

Every metric is a function ``f(image, mask, ...) -> float`` on one uint8 RGB image ``[H, W, 3]`` and one boolean
part mask ``[H, W]``; :func:`measure_parts` applies them to every step and part label of a tuning sequence.
Connected components, their ellipses and their matching across steps are in
:mod:`linkviz.quantify.component_ellipses`.

Conventions
-----------
- **area**: number of mask pixels.
- **luminance**: mean over the part of ``0.299 R + 0.587 G + 0.114 B`` with R, G, B in ``[0, 255]``.
- **entropy**: mean over the part of the local Shannon entropy (bits) of the grey image in a radius-5 disk
  (:func:`skimage.filters.rank.entropy`); the grey image is the luminance above, rounded to uint8.
- **eccentricity**, **angle**: of the ellipse with the same second moments as each connected component
  (:func:`skimage.measure.regionprops`). The angle is that of the major axis, in degrees, measured from the image
  x-axis (columns, to the right) counter-clockwise as the image is displayed, in ``(-90, 90]``: orientation is
  axial, so 90 and -90 are the same angle and differences must be wrapped with :func:`~linkviz.quantify.component_ellipses.wrap_axial_degrees`.
  Components smaller than ``min_component_area`` pixels (by default single pixels) have no ellipse: they are
  skipped and counted. A part's value is the area-weighted mean over its components (the axial mean, on doubled
  angles, for the angle).
  A near-disk has no orientation: a component whose eccentricity is below
  :data:`~linkviz.quantify.component_ellipses.ANGLE_MIN_ECCENTRICITY` (the threshold :func:`part_changes` uses) or
  whose two axes differ by less than the pixel grid can make
  (:data:`~linkviz.quantify.component_ellipses.AXIS_TOLERANCE_PIXELS`) is left out of the angle, and a part with
  only such components has angle NaN (:func:`~linkviz.quantify.component_ellipses.has_orientation`).
- Metrics of an empty part are NaN, except its area, which is 0.
- A part mask is boolean (or integer 0/1) of the image's shape; float masks (soft or NaN) are refused.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from skimage.filters.rank import entropy as rank_entropy
from skimage.morphology import disk

from linkviz.quantify.component_ellipses import (
    ANGLE_MIN_ECCENTRICITY,
    component_ellipses,
    match_components,
    weighted_shape,
)

__all__ = [
    "METRICS",
    "PartMeasurements",
    "entropy_map",
    "measure_parts",
    "part_angle",
    "part_area",
    "part_eccentricity",
    "part_entropy",
    "part_luminance",
    "visibility_threshold",
]

METRICS = ("area", "luminance", "entropy", "eccentricity", "angle")
_LUMA = np.array([0.299, 0.587, 0.114])
_PART_COLUMNS = ["step", "label", *METRICS, "n_components", "n_skipped"]


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 of shape [H, W, 3]; got {image.dtype} {image.shape}")


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as bool (H, W); it must be boolean, or integer 0/1, and of the image's shape."""
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} does not match the image's {shape}")
    if mask.dtype == bool:
        return mask
    if not np.issubdtype(mask.dtype, np.integer):
        n_nan = int(np.isnan(mask).sum()) if np.issubdtype(mask.dtype, np.floating) else 0
        nan_note = f", {n_nan} of them NaN" if n_nan else ""
        raise ValueError(f"mask must be boolean (or integer 0/1) marking the part's pixels; got dtype {mask.dtype}"
                         f"{nan_note}: threshold a soft mask (mask > 0.5) or compare a label map (labels == i)")
    values = np.unique(mask)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"an integer mask must hold only 0 and 1; got values {values[:10].tolist()}: for a label "
                         "map, pass the part's pixels (labels == i)")
    return mask.astype(bool)


def visibility_threshold(shape: tuple[int, int], *, reference_pixels: float = 20.0,
                         reference_shape: tuple[int, int] = (128, 128)) -> float:
    """Smallest visible part area in pixels at image size ``shape``, scaled from the reference's threshold.

    Parameters
    ----------
    shape : (int, int)
        Image height and width.
    reference_pixels : float
        Threshold at ``reference_shape`` (the reference uses 20 px of 128 x 128).
    reference_shape : (int, int)

    Returns
    -------
    float
        ``reference_pixels * H * W / (H_ref * W_ref)``, i.e. the same fraction of the image.
    """
    return float(reference_pixels) * shape[0] * shape[1] / (reference_shape[0] * reference_shape[1])


def _luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ _LUMA


def part_area(image: np.ndarray, mask: np.ndarray) -> float:
    """Number of pixels of the part.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
    """
    _check_image(image)
    return float(_check_mask(mask, image.shape[:2]).sum())


def part_luminance(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``0.299 R + 0.587 G + 0.114 B`` over the part, in ``[0, 255]``; NaN for an empty part.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
    """
    _check_image(image)
    mask = _check_mask(mask, image.shape[:2])
    return float(_luminance(image)[mask].mean()) if mask.any() else float("nan")


def entropy_map(image: np.ndarray, *, radius: int = 5) -> np.ndarray:
    """Local Shannon entropy (bits) of the grey image in a disk of ``radius`` pixels.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    radius : int

    Returns
    -------
    ndarray of float, shape (H, W)
    """
    _check_image(image)
    grey = np.clip(np.rint(_luminance(image)), 0, 255).astype(np.uint8)
    return rank_entropy(grey, disk(radius)).astype(np.float64)


def part_entropy(image: np.ndarray, mask: np.ndarray, *, radius: int = 5) -> float:
    """Mean local Shannon entropy (bits, radius-``radius`` disk) over the part; NaN for an empty part.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
    radius : int
    """
    mask = _check_mask(mask, image.shape[:2])
    return float(entropy_map(image, radius=radius)[mask].mean()) if mask.any() else float("nan")


def part_eccentricity(image: np.ndarray, mask: np.ndarray, *, connectivity: int = 2,
                      min_component_area: int = 2) -> float:
    """Area-weighted mean eccentricity of the part's components; NaN if it has none.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        Unused; kept so that every metric has the signature ``f(image, mask, ...)``.
    mask : ndarray of bool, shape (H, W)
    connectivity, min_component_area
        As in :func:`~linkviz.quantify.component_ellipses.component_ellipses`.
    """
    ellipses, _ = component_ellipses(_check_mask(mask, image.shape[:2]), connectivity=connectivity,
                                     min_component_area=min_component_area)
    return weighted_shape(ellipses)[0]


def part_angle(image: np.ndarray, mask: np.ndarray, *, connectivity: int = 2, min_component_area: int = 2,
               min_eccentricity: float = ANGLE_MIN_ECCENTRICITY) -> float:
    """Area-weighted axial mean major-axis angle of the part's oriented components, degrees in ``(-90, 90]``.

    A round component has no orientation (its two second moments are equal up to the pixel grid), so it is left
    out; the angle is NaN for a part without components or with only near-disks (a disk gets NaN, not 45).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        Unused; kept so that every metric has the signature ``f(image, mask, ...)``.
    mask : ndarray of bool, shape (H, W)
    connectivity, min_component_area
        As in :func:`~linkviz.quantify.component_ellipses.component_ellipses`.
    min_eccentricity : float
        Components rounder than this have no angle; the default is the threshold of :func:`part_changes`
        (see :func:`~linkviz.quantify.component_ellipses.has_orientation`, which also needs the axes to differ by
        more than the pixel grid can make them).

    Raises
    ------
    ValueError
        If ``mask`` is not boolean (or integer 0/1) of the image's shape.
    """
    ellipses, _ = component_ellipses(_check_mask(mask, image.shape[:2]), connectivity=connectivity,
                                     min_component_area=min_component_area)
    return weighted_shape(ellipses, min_eccentricity=min_eccentricity)[1]


@dataclass(frozen=True)
class PartMeasurements:
    """Metrics of every part label at every step of one tuning sequence (one unit, one seed).

    Attributes
    ----------
    labels : tuple of str
        The measured labels (mask value ``i`` is ``all_labels[i]``; excluded labels are not measured).
    reference_step : int
        The unperturbed step, which components were matched to.
    image_shape : (int, int)
    parts : DataFrame
        One row per (step, label): ``step, label, area, luminance, entropy, eccentricity, angle, n_components,
        n_skipped`` (components skipped for being too small).
    components : DataFrame
        One row per measured component: ``step, label, component, track, area, centroid_row, centroid_col,
        eccentricity, angle``. ``track`` is the index of the matched component at ``reference_step`` (at that
        step, the component's own index), -1 where unmatched.
    """

    labels: tuple[str, ...]
    reference_step: int
    image_shape: tuple[int, int]
    parts: pd.DataFrame
    components: pd.DataFrame

    @property
    def n_steps(self) -> int:
        return int(self.parts["step"].nunique())

    @property
    def n_skipped(self) -> int:
        """Components skipped over all steps and labels (smaller than ``min_component_area``)."""
        return int(self.parts["n_skipped"].sum())

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with one row per (step, label, metric): ``step, label, metric, value``."""
        long = self.parts.melt(id_vars=["step", "label"], value_vars=list(METRICS), var_name="metric")
        long["metric"] = pd.Categorical(long["metric"], categories=METRICS)
        return long.sort_values(["step", "label", "metric"], kind="stable").reset_index(drop=True)


def _check_sequence(images: np.ndarray, masks: np.ndarray, n_labels: int) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape [S, H, W, 3]; got {images.dtype} {images.shape}")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"masks must have shape {images.shape[:3]} (S, H, W); got {masks.shape}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"masks must hold integer label indices; got {masks.dtype}")
    if masks.size and (masks.min() < 0 or masks.max() >= n_labels):
        raise ValueError(f"mask values must index labels (0..{n_labels - 1}); found {masks.min()}..{masks.max()}")


def measure_parts(images: np.ndarray, masks: np.ndarray, labels: Sequence[str], *, reference_step: int = 0,
                  exclude: Collection[str] = ("background",), entropy_radius: int = 5, connectivity: int = 2,
                  min_component_area: int = 2, max_match_distance: float | None = None) -> PartMeasurements:
    """Measure every part label at every step of a tuning sequence.

    Parameters
    ----------
    images : ndarray of uint8, shape (S, H, W, 3)
        The images of one unit and seed over ``S`` tuning steps.
    masks : ndarray of int, shape (S, H, W)
        Part segmentation; value ``i`` is ``labels[i]``.
    labels : sequence of str
        Label names, indexed by mask value. Labels that never occur get area 0 and NaN for the other metrics.
    reference_step : int
        The unperturbed step; components at every other step are matched to its components.
    exclude : collection of str
        Labels not measured (the background by default).
    entropy_radius : int
        Disk radius of the local entropy.
    connectivity, min_component_area
        As in :func:`~linkviz.quantify.component_ellipses.component_ellipses`.
    max_match_distance : float, optional
        As ``max_distance`` in :func:`~linkviz.quantify.component_ellipses.match_components`.

    Returns
    -------
    PartMeasurements
    """
    images, masks = np.asarray(images), np.asarray(masks)
    _check_sequence(images, masks, len(labels))
    if not 0 <= reference_step < len(images):
        raise ValueError(f"reference_step must be in [0, {len(images)}); got {reference_step} (the unperturbed "
                         "step; a sweep without one has no reference)")
    measured = [(index, name) for index, name in enumerate(labels) if name not in exclude]
    ellipses = {}
    part_rows = []
    for step, image in enumerate(images):
        luminance, entropy = _luminance(image), entropy_map(image, radius=entropy_radius)
        for index, name in measured:
            mask = masks[step] == index
            found, n_skipped = component_ellipses(mask, connectivity=connectivity,
                                                  min_component_area=min_component_area)
            ellipses[step, name] = found
            eccentricity, angle = weighted_shape(found)
            present = bool(mask.any())
            part_rows.append({
                "step": step, "label": name, "area": float(mask.sum()),
                "luminance": float(luminance[mask].mean()) if present else np.nan,
                "entropy": float(entropy[mask].mean()) if present else np.nan,
                "eccentricity": eccentricity, "angle": angle, "n_components": len(found), "n_skipped": n_skipped,
            })
    component_rows = []
    for (step, name), found in ellipses.items():
        tracks = (np.arange(len(found)) if step == reference_step else
                  match_components(ellipses[reference_step, name], found, max_distance=max_match_distance))
        for k, (ellipse, track) in enumerate(zip(found, tracks)):
            component_rows.append({
                "step": step, "label": name, "component": k, "track": int(track), "area": ellipse.area,
                "centroid_row": ellipse.centroid[0], "centroid_col": ellipse.centroid[1],
                "eccentricity": ellipse.eccentricity, "angle": ellipse.angle,
            })
    component_columns = ["step", "label", "component", "track", "area", "centroid_row", "centroid_col",
                         "eccentricity", "angle"]
    return PartMeasurements(
        labels=tuple(name for _, name in measured), reference_step=reference_step,
        image_shape=(int(images.shape[1]), int(images.shape[2])), parts=pd.DataFrame(part_rows, columns=_PART_COLUMNS),
        components=pd.DataFrame(component_rows, columns=component_columns))
