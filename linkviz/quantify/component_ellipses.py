"""Connected components of a part mask as moment ellipses, their area-weighted shape, and matching them over steps.

The conventions are those of :mod:`linkviz.quantify.part_metrics`: each connected component gets the ellipse with
its second moments (:func:`skimage.measure.regionprops`); the angle is the major axis's, in degrees from the image
x-axis counter-clockwise as displayed, in ``(-90, 90]`` (axial: wrap differences with :func:`wrap_axial_degrees`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.measure import label as label_components
from skimage.measure import regionprops

__all__ = [
    "ANGLE_MIN_ECCENTRICITY",
    "AXIS_TOLERANCE_PIXELS",
    "ComponentEllipse",
    "component_ellipses",
    "has_orientation",
    "match_components",
    "weighted_shape",
    "wrap_axial_degrees",
]

#: Components rounder than this eccentricity (axis ratio above 0.95) have no angle.
ANGLE_MIN_ECCENTRICITY = 0.3
#: Full moment-ellipse axes closer than this (pixels) are equal up to the pixel grid: over digitised disks of radius
#: 1.5 to 30 px at every sub-pixel centre the two axes differ by up to 1.23 px (each end of an axis moves by up to
#: half a pixel), so a component whose axes differ by less has no orientation.
AXIS_TOLERANCE_PIXELS = 1.5


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


def has_orientation(eccentricity: float | np.ndarray, area: float | np.ndarray, *,
                    min_eccentricity: float = ANGLE_MIN_ECCENTRICITY) -> bool | np.ndarray:
    """Whether a moment ellipse has a defined major-axis angle: not a near-disk.

    Orientation is undefined when the two second moments are equal up to the pixel grid. An ellipse of ``area``
    pixels and eccentricity ``e`` has full axes ``M = sqrt(4 area / (pi sqrt(1 - e^2)))`` and
    ``m = M sqrt(1 - e^2)``; it has an orientation when ``e >= min_eccentricity`` and
    ``M - m >= AXIS_TOLERANCE_PIXELS`` (what pixel discretisation can do to a disk).

    Parameters
    ----------
    eccentricity, area : float or ndarray of float, same shape
        Of each component.
    min_eccentricity : float
        The eccentricity floor, :data:`ANGLE_MIN_ECCENTRICITY` by default.

    Returns
    -------
    bool or ndarray of bool
    """
    eccentricity = np.asarray(eccentricity, dtype=np.float64)
    ratio = np.sqrt(np.clip(1.0 - eccentricity ** 2, 0.0, 1.0))  # minor / major
    with np.errstate(divide="ignore", invalid="ignore"):
        major = np.sqrt(4.0 * np.asarray(area, dtype=np.float64) / (np.pi * ratio))
        axis_difference = np.where(ratio > 0, major * (1.0 - ratio), np.inf)  # a segment has an axis
    oriented = (eccentricity >= min_eccentricity) & (axis_difference >= AXIS_TOLERANCE_PIXELS)
    return bool(oriented) if oriented.ndim == 0 else oriented


def weighted_shape(ellipses: Sequence[ComponentEllipse], *,
                   min_eccentricity: float = ANGLE_MIN_ECCENTRICITY) -> tuple[float, float]:
    """Area-weighted eccentricity and axial mean angle (degrees) of a part's components (NaN, NaN if none).

    The angle averages only the components with an orientation (:func:`has_orientation`); it is NaN when every
    component is a near-disk.

    Parameters
    ----------
    ellipses : sequence of ComponentEllipse
    min_eccentricity : float
        As in :func:`has_orientation`.

    Returns
    -------
    eccentricity, angle : float
    """
    if not ellipses:
        return float("nan"), float("nan")
    weights = np.array([e.area for e in ellipses], dtype=np.float64)
    eccentricity = float(np.average([e.eccentricity for e in ellipses], weights=weights))
    oriented = has_orientation(np.array([e.eccentricity for e in ellipses]), weights,
                               min_eccentricity=min_eccentricity)
    if not np.any(oriented):
        return eccentricity, float("nan")
    weights = weights[oriented]
    doubled = np.radians(2.0 * np.array([e.angle for e in ellipses])[oriented])
    angle = np.degrees(np.arctan2(weights @ np.sin(doubled), weights @ np.cos(doubled))) / 2.0
    return eccentricity, wrap_axial_degrees(angle)


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
