"""Per-part image metrics over the steps of a unit tuning: area, luminance, entropy, ellipse shape and angle.

Every metric is a function ``f(image, mask, ...) -> float`` on one uint8 RGB image ``[H, W, 3]`` and one boolean
part mask ``[H, W]``; :func:`measure_parts` applies them to every step and part label of a tuning sequence.

Conventions
-----------
- **area**: number of mask pixels.
- **luminance**: mean over the part of ``0.299 R + 0.587 G + 0.114 B`` with R, G, B in ``[0, 255]``.
- **entropy**: mean over the part of the local Shannon entropy (bits) of the grey image in a radius-5 disk
  (:func:`skimage.filters.rank.entropy`); the grey image is the luminance above, rounded to uint8.
- **eccentricity**, **angle**: of the ellipse with the same second moments as each connected component
  (:func:`skimage.measure.regionprops`). The angle is that of the major axis, in degrees, measured from the image
  x-axis (columns, to the right) counter-clockwise as the image is displayed, in ``(-90, 90]``: orientation is
  axial, so 90 and -90 are the same angle and differences must be wrapped with :func:`wrap_axial_degrees`.
  Components smaller than ``min_component_area`` pixels (by default single pixels) have no ellipse: they are
  skipped and counted. A part's value is the area-weighted mean over its components (the axial mean, on doubled
  angles, for the angle).
- Metrics of an empty part are NaN, except its area, which is 0.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from skimage.filters.rank import entropy as rank_entropy
from skimage.measure import label as label_components
from skimage.measure import regionprops
from skimage.morphology import disk

__all__ = [
    "METRICS",
    "ComponentEllipse",
    "PartMeasurements",
    "component_ellipses",
    "entropy_map",
    "match_components",
    "measure_parts",
    "part_angle",
    "part_area",
    "part_eccentricity",
    "part_entropy",
    "part_luminance",
    "visibility_threshold",
    "wrap_axial_degrees",
]

METRICS = ("area", "luminance", "entropy", "eccentricity", "angle")
_LUMA = np.array([0.299, 0.587, 0.114])
_PART_COLUMNS = ["step", "label", *METRICS, "n_components", "n_skipped"]


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 of shape [H, W, 3]; got {image.dtype} {image.shape}")


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} does not match the image's {shape}")
    return mask.astype(bool)


def wrap_axial_degrees(delta: float | np.ndarray) -> float | np.ndarray:
    """Wrap differences of axial angles (orientations) to ``(-90, 90]`` degrees.

    Parameters
    ----------
    delta : float or ndarray
        Angle differences in degrees.

    Returns
    -------
    float or ndarray
        The same differences modulo 180, in ``(-90, 90]``: 89 -> -89 (``delta = -178``) is a change of +2.
    """
    wrapped = 90.0 - np.mod(90.0 - np.asarray(delta, dtype=np.float64), 180.0)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


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


@dataclass(frozen=True)
class ComponentEllipse:
    """The moment ellipse of one connected component of a part.

    Attributes
    ----------
    area : int
        Pixels of the component.
    centroid : (float, float)
        ``(row, col)``.
    eccentricity : float
        In ``[0, 1]``; 0 for a disk.
    angle : float
        Major-axis angle in degrees from the x-axis, counter-clockwise as displayed, in ``(-90, 90]``.
    major_axis, minor_axis : float
        Full axis lengths in pixels.
    """

    area: int
    centroid: tuple[float, float]
    eccentricity: float
    angle: float
    major_axis: float
    minor_axis: float


def component_ellipses(mask: np.ndarray, *, connectivity: int = 2,
                       min_component_area: int = 2) -> tuple[list[ComponentEllipse], int]:
    """Moment ellipses of the connected components of a part mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    connectivity : {1, 2}
        1 for 4-connected, 2 for 8-connected components.
    min_component_area : int
        Components with fewer pixels have no meaningful ellipse: they are skipped and counted.

    Returns
    -------
    ellipses : list of ComponentEllipse
        In the order of :func:`skimage.measure.label`.
    n_skipped : int
        Number of components skipped for being smaller than ``min_component_area``.
    """
    components = label_components(np.asarray(mask, dtype=bool), connectivity=connectivity)
    ellipses, n_skipped = [], 0
    for region in regionprops(components):
        if region.area < min_component_area:
            n_skipped += 1
            continue
        # regionprops' orientation is measured from the row axis; +90 turns it into the displayed x-axis angle.
        ellipses.append(ComponentEllipse(
            area=int(region.area), centroid=(float(region.centroid[0]), float(region.centroid[1])),
            eccentricity=float(region.eccentricity),
            angle=wrap_axial_degrees(np.degrees(region.orientation) + 90.0),
            major_axis=float(region.axis_major_length), minor_axis=float(region.axis_minor_length)))
    return ellipses, n_skipped


def _weighted_shape(ellipses: Sequence[ComponentEllipse]) -> tuple[float, float]:
    """Area-weighted eccentricity and axial mean angle of a part's components (NaN, NaN if none)."""
    if not ellipses:
        return float("nan"), float("nan")
    weights = np.array([e.area for e in ellipses], dtype=np.float64)
    eccentricity = float(np.average([e.eccentricity for e in ellipses], weights=weights))
    doubled = np.radians(2.0 * np.array([e.angle for e in ellipses]))
    angle = np.degrees(np.arctan2(weights @ np.sin(doubled), weights @ np.cos(doubled))) / 2.0
    return eccentricity, wrap_axial_degrees(angle)


def part_eccentricity(image: np.ndarray, mask: np.ndarray, *, connectivity: int = 2,
                      min_component_area: int = 2) -> float:
    """Area-weighted mean eccentricity of the part's components; NaN if it has none.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        Unused; kept so that every metric has the signature ``f(image, mask, ...)``.
    mask : ndarray of bool, shape (H, W)
    connectivity, min_component_area
        As in :func:`component_ellipses`.
    """
    ellipses, _ = component_ellipses(_check_mask(mask, image.shape[:2]), connectivity=connectivity,
                                     min_component_area=min_component_area)
    return _weighted_shape(ellipses)[0]


def part_angle(image: np.ndarray, mask: np.ndarray, *, connectivity: int = 2,
               min_component_area: int = 2) -> float:
    """Area-weighted axial mean major-axis angle of the part's components, degrees in ``(-90, 90]``; NaN if none.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        Unused; kept so that every metric has the signature ``f(image, mask, ...)``.
    mask : ndarray of bool, shape (H, W)
    connectivity, min_component_area
        As in :func:`component_ellipses`.
    """
    ellipses, _ = component_ellipses(_check_mask(mask, image.shape[:2]), connectivity=connectivity,
                                     min_component_area=min_component_area)
    return _weighted_shape(ellipses)[1]


def _equivalent_radius(ellipses: Sequence[ComponentEllipse]) -> np.ndarray:
    return np.sqrt(np.array([e.area for e in ellipses], dtype=np.float64) / np.pi)


def match_components(reference: Sequence[ComponentEllipse], moving: Sequence[ComponentEllipse], *,
                     max_distance: float | None = None) -> np.ndarray:
    """Match the components of one step to those of the reference step by centroid distance.

    A one-to-one assignment minimising the total centroid distance (Hungarian algorithm); a pair counts as a
    match only if its centroids are at most ``max_distance`` apart.

    Parameters
    ----------
    reference, moving : sequence of ComponentEllipse
    max_distance : float, optional
        In pixels. By default, the larger equivalent radius ``sqrt(area / pi)`` of the two components, i.e. a
        centroid must lie roughly within the other component.

    Returns
    -------
    ndarray of int, shape (len(moving),)
        Index into ``reference`` of each moving component's match, -1 where there is none.
    """
    matched = np.full(len(moving), -1, dtype=np.int64)
    if not reference or not moving:
        return matched
    ref_xy = np.array([e.centroid for e in reference])
    mov_xy = np.array([e.centroid for e in moving])
    distance = np.linalg.norm(ref_xy[:, None, :] - mov_xy[None, :, :], axis=-1)
    if max_distance is None:
        gate = np.maximum(_equivalent_radius(reference)[:, None], _equivalent_radius(moving)[None, :])
    else:
        gate = np.full_like(distance, float(max_distance))
    rows, cols = linear_sum_assignment(distance)
    keep = distance[rows, cols] <= gate[rows, cols]
    matched[cols[keep]] = rows[keep]
    return matched


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
        As in :func:`component_ellipses`.
    max_match_distance : float, optional
        As ``max_distance`` in :func:`match_components`.

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
            eccentricity, angle = _weighted_shape(found)
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
