"""Part metrics and their changes for a whole batch of tuning sequences at once, from arrays.

The same numbers as :func:`~linkviz.quantify.measure_parts` followed by :func:`~linkviz.quantify.part_changes`
(see :mod:`linkviz.quantify.part_metrics` and :mod:`linkviz.quantify.changes` for the definitions), computed with
one labelled pass over every image and part: areas, luminance and entropy sums are ``bincount`` over the key
``image * n_parts + part``; connected components are labelled for the whole stack at once (a structuring element
with no neighbours across images); each component's centroid and second moments, hence its moment ellipse
(eccentricity and angle as :func:`skimage.measure.regionprops` defines them), come from ``bincount`` too; the
local entropy is one :func:`skimage.filters.rank.entropy` call on the stack with a flat disk. Only the matching of
several components to several reference components runs per (image, part), and only where both have more than
one component.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage.filters.rank import entropy as rank_entropy
from skimage.morphology import disk

from linkviz.quantify.component_ellipses import ANGLE_MIN_ECCENTRICITY, has_orientation, wrap_axial_degrees

__all__ = ["ComponentArrays", "batch_component_ellipses", "batch_part_metrics", "batch_sequence_changes"]

_LUMA = np.array([0.299, 0.587, 0.114])
_AREA, _LUMINANCE, _ENTROPY, _ECCENTRICITY, _ANGLE = range(5)  # positions in METRICS


class ComponentArrays:
    """Moment ellipses of the connected components of many part masks, one entry per component.

    Attributes
    ----------
    image, part : ndarray of int64, shape (C,)
        Image index and part slot of each component, sorted by (image, part, raster order of the component).
    area : ndarray of float64, shape (C,)
    centroid : ndarray of float64, shape (C, 2)
        ``(row, col)``.
    eccentricity, angle : ndarray of float64, shape (C,)
        As :class:`~linkviz.quantify.ComponentEllipse` (angle in degrees in ``(-90, 90]``).
    n_skipped : ndarray of int64, shape (B, P)
        Components smaller than ``min_component_area`` per image and part (left out of the arrays above).
    """

    def __init__(self, image: np.ndarray, part: np.ndarray, area: np.ndarray, centroid: np.ndarray,
                 eccentricity: np.ndarray, angle: np.ndarray, n_skipped: np.ndarray) -> None:
        self.image, self.part, self.area, self.centroid = image, part, area, centroid
        self.eccentricity, self.angle, self.n_skipped = eccentricity, angle, n_skipped


def _ellipse_shape(count: np.ndarray, mu_rr: np.ndarray, mu_cc: np.ndarray,
                   mu_rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eccentricity and displayed major-axis angle (degrees) from central moments, as ``regionprops`` does."""
    a, c, b = mu_cc / count, mu_rr / count, -mu_rc / count  # the inertia tensor [[a, b], [b, c]]
    half_trace, radius = (a + c) / 2.0, np.hypot((a - c) / 2.0, b)
    major, minor = np.maximum(half_trace + radius, 0.0), np.maximum(half_trace - radius, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eccentricity = np.where(major > 0, np.sqrt(np.clip(1.0 - minor / major, 0.0, None)), 0.0)
    orientation = np.where(a - c == 0, np.where(b < 0, np.pi / 4.0, -np.pi / 4.0), 0.5 * np.arctan2(-2.0 * b, c - a))
    return eccentricity, np.asarray(wrap_axial_degrees(np.degrees(orientation) + 90.0))


def batch_component_ellipses(masks: np.ndarray, parts: Sequence[int], *, connectivity: int = 2,
                             min_component_area: int = 2) -> ComponentArrays:
    """Moment ellipses of the connected components of every part in every image.

    Parameters
    ----------
    masks : ndarray of int, shape (B, H, W)
        Label maps.
    parts : sequence of int, length P
        The label values measured; part slot ``p`` is ``masks == parts[p]``.
    connectivity : {1, 2}
        1 for 4-connected, 2 for 8-connected components (within an image).
    min_component_area : int
        Smaller components are skipped and counted.

    Returns
    -------
    ComponentArrays
    """
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (4-connected) or 2 (8-connected); got {connectivity}")
    n_images, height, width = masks.shape
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, connectivity)  # no neighbours across images
    fields: dict[str, list[np.ndarray]] = {name: [] for name in
                                           ("image", "part", "area", "row", "col", "rr", "cc", "rc")}
    n_skipped = np.zeros((n_images, len(parts)), np.int64)
    for slot, value in enumerate(parts):
        components, n_found = ndimage.label(masks == value, structure=structure)
        flat = components.ravel()
        pixels = np.flatnonzero(flat)
        ids = flat[pixels] - 1
        image, rest = np.divmod(pixels, height * width)
        row, col = np.divmod(rest, width)
        count = np.bincount(ids, minlength=n_found).astype(np.float64)
        owner = np.zeros(n_found, np.int64)
        owner[ids] = image
        mean_row = np.bincount(ids, row, minlength=n_found) / np.maximum(count, 1)
        mean_col = np.bincount(ids, col, minlength=n_found) / np.maximum(count, 1)
        d_row, d_col = row - mean_row[ids], col - mean_col[ids]
        kept = count >= min_component_area
        np.add.at(n_skipped[:, slot], owner[~kept], 1)
        for name, values in (("image", owner), ("part", np.full(n_found, slot)), ("area", count),
                             ("row", mean_row), ("col", mean_col),
                             ("rr", np.bincount(ids, d_row * d_row, minlength=n_found)),
                             ("cc", np.bincount(ids, d_col * d_col, minlength=n_found)),
                             ("rc", np.bincount(ids, d_row * d_col, minlength=n_found))):
            fields[name].append(values[kept])
    joined = {name: np.concatenate(values) if values else np.zeros(0) for name, values in fields.items()}
    order = np.lexsort((joined["part"], joined["image"]))  # stable: raster order kept within (image, part)
    joined = {name: values[order] for name, values in joined.items()}
    eccentricity, angle = _ellipse_shape(joined["area"], joined["rr"], joined["cc"], joined["rc"])
    return ComponentArrays(image=joined["image"].astype(np.int64), part=joined["part"].astype(np.int64),
                           area=joined["area"], centroid=np.stack([joined["row"], joined["col"]], axis=-1),
                           eccentricity=eccentricity, angle=angle, n_skipped=n_skipped)


def _weighted_mean(groups: np.ndarray, values: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """``sum(w v) / sum(w)`` per group; NaN where a group has no entry."""
    total = np.bincount(groups, weights, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(groups, weights * values, minlength=n_groups) / total
    return np.where(np.bincount(groups, minlength=n_groups) > 0, mean, np.nan)


def _axial_mean(groups: np.ndarray, angles: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """Weighted axial mean angle (degrees, doubled-angle) per group; NaN where a group has no entry."""
    doubled = np.radians(2.0 * angles)
    sine = np.bincount(groups, weights * np.sin(doubled), minlength=n_groups)
    cosine = np.bincount(groups, weights * np.cos(doubled), minlength=n_groups)
    mean = np.asarray(wrap_axial_degrees(np.degrees(np.arctan2(sine, cosine)) / 2.0))
    return np.where(np.bincount(groups, minlength=n_groups) > 0, mean, np.nan)


def batch_part_metrics(images: np.ndarray, masks: np.ndarray, parts: Sequence[int], *, entropy_radius: int = 5,
                       connectivity: int = 2, min_component_area: int = 2,
                       angle_min_eccentricity: float = ANGLE_MIN_ECCENTRICITY) -> tuple[np.ndarray, ComponentArrays]:
    """Area, luminance, entropy, eccentricity and angle of every part in every image.

    Parameters
    ----------
    images : ndarray of uint8, shape (B, H, W, 3)
    masks : ndarray of int, shape (B, H, W)
    parts : sequence of int, length P
        Label values measured.
    entropy_radius, connectivity, min_component_area
        As in :func:`~linkviz.quantify.measure_parts`.
    angle_min_eccentricity : float
        Components rounder than this have no angle (the part's value; :func:`~linkviz.quantify.measure_parts` uses
        the default).

    Returns
    -------
    metrics : ndarray of float64, shape (B, P, 5)
        In the order of :data:`~linkviz.quantify.METRICS`; NaN where undefined (area 0 for an empty part).
    components : ComponentArrays
    """
    n_images, n_parts = len(images), len(parts)
    luminance = images.astype(np.float64) @ _LUMA  # [B, H, W]
    slot_of = np.full(max(int(masks.max(initial=0)), *parts) + 1, n_parts, np.int64)  # n_parts: not measured
    slot_of[np.asarray(parts, np.int64)] = np.arange(n_parts)
    slot = slot_of[masks]
    grey = np.clip(np.rint(luminance), 0, 255).astype(np.uint8)
    # The rank filter computes only inside its mask and counts only mask pixels: a square of the footprint's size
    # around every measured pixel holds each measured pixel's whole neighbourhood, so its entropy is unchanged.
    window = 2 * entropy_radius + 1
    near_parts = ndimage.maximum_filter((slot < n_parts).view(np.uint8), size=(1, window, window))
    entropy = rank_entropy(grey, disk(entropy_radius)[None], mask=near_parts).astype(np.float64)  # per image
    slot = slot.reshape(n_images, -1)
    key = (np.arange(n_images)[:, None] * (n_parts + 1) + slot).ravel()
    size = n_images * (n_parts + 1)
    area = np.bincount(key, minlength=size).reshape(n_images, n_parts + 1)[:, :n_parts].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sums = [np.bincount(key, values.ravel(), minlength=size).reshape(n_images, n_parts + 1)[:, :n_parts] / area
                for values in (luminance, entropy)]
    components = batch_component_ellipses(masks, parts, connectivity=connectivity,
                                          min_component_area=min_component_area)
    group = components.image * n_parts + components.part
    oriented = has_orientation(components.eccentricity, components.area, min_eccentricity=angle_min_eccentricity)
    metrics = np.stack([
        area, *(np.where(area > 0, values, np.nan) for values in sums),
        _weighted_mean(group, components.eccentricity, components.area, n_images * n_parts).reshape(area.shape),
        _axial_mean(group[oriented], components.angle[oriented], components.area[oriented],
                    n_images * n_parts).reshape(area.shape),
    ], axis=-1)
    return metrics, components


def _match_pairs(components: ComponentArrays, reference_image: np.ndarray,
                 max_distance: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (moving component, matched reference component) over all images and parts.

    A component of image ``b`` is matched among the components of the same part in ``reference_image[b]`` as
    :func:`~linkviz.quantify.match_components` does (Hungarian on centroid distance, gated); a reference image's
    components are their own matches.
    """
    n_parts = int(components.n_skipped.shape[1])
    group = components.image * n_parts + components.part
    n_groups = components.n_skipped.size
    count = np.bincount(group, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    ref_group = reference_image[components.image] * n_parts + components.part  # per moving component
    ref_count, ref_start = count[ref_group], start[ref_group]
    radius = np.sqrt(components.area / np.pi)
    own = ref_group == group  # a reference image's components are their own matches
    moving_list, reference_list = [np.flatnonzero(own)], [np.flatnonzero(own)]
    single = ~own & (count[group] == 1) & (ref_count == 1)
    moving = np.flatnonzero(single)
    partner = ref_start[moving]
    distance = np.linalg.norm(components.centroid[moving] - components.centroid[partner], axis=-1)
    gate = np.maximum(radius[moving], radius[partner]) if max_distance is None else float(max_distance)
    keep = distance <= gate
    moving_list.append(moving[keep])
    reference_list.append(partner[keep])
    several = ~own & ~single & (ref_count > 0)
    for g in np.unique(group[several]):
        rows = np.arange(start[g], start[g] + count[g])
        r_group = ref_group[rows[0]]
        refs = np.arange(start[r_group], start[r_group] + count[r_group])
        distance = np.linalg.norm(components.centroid[refs][:, None] - components.centroid[rows][None], axis=-1)
        gate = (np.maximum(radius[refs][:, None], radius[rows][None]) if max_distance is None
                else np.full_like(distance, float(max_distance)))
        r_index, m_index = linear_sum_assignment(distance)
        keep = distance[r_index, m_index] <= gate[r_index, m_index]
        moving_list.append(rows[m_index[keep]])
        reference_list.append(refs[r_index[keep]])
    return np.concatenate(moving_list), np.concatenate(reference_list)


def batch_sequence_changes(images: np.ndarray, masks: np.ndarray, parts: Sequence[int],
                           reference_steps: np.ndarray, *, visibility: float, area_floor: float,
                           angle_min_eccentricity: float, entropy_radius: int = 5, connectivity: int = 2,
                           min_component_area: int = 2, max_match_distance: float | None = None,
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values, baselines, changes and visibility of every metric of every part over many tuning sequences.

    Parameters
    ----------
    images : ndarray of uint8, shape (Q, S, H, W, 3)
        ``Q`` sequences (e.g. seeds of one or several units) of ``S`` steps.
    masks : ndarray of int, shape (Q, S, H, W)
    parts : sequence of int, length P
        Label values measured.
    reference_steps : ndarray of int, shape (Q,)
        The unperturbed step of each sequence.
    visibility, area_floor, angle_min_eccentricity
        As in :func:`~linkviz.quantify.part_changes` (resolved to numbers).
    entropy_radius, connectivity, min_component_area, max_match_distance
        As in :func:`~linkviz.quantify.measure_parts`.

    Returns
    -------
    value, baseline, change : ndarray of float64, shape (Q, S, P, 5)
        Metrics in the order of :data:`~linkviz.quantify.METRICS`.
    visible : ndarray of bool, shape (Q, P)
    """
    n_seq, n_steps = images.shape[:2]
    n_parts = len(parts)
    flat_images = images.reshape(-1, *images.shape[2:])
    value, components = batch_part_metrics(flat_images, masks.reshape(-1, *masks.shape[2:]), parts,
                                           entropy_radius=entropy_radius, connectivity=connectivity,
                                           min_component_area=min_component_area)
    value = value.reshape(n_seq, n_steps, n_parts, 5)
    baseline = np.broadcast_to(value[np.arange(n_seq), reference_steps][:, None], value.shape)
    change = np.empty_like(value)
    change[..., _AREA] = (value[..., _AREA] - baseline[..., _AREA]) / np.maximum(baseline[..., _AREA], area_floor)
    change[..., _LUMINANCE] = (value[..., _LUMINANCE] - baseline[..., _LUMINANCE]) / 255.0
    change[..., _ENTROPY] = value[..., _ENTROPY] - baseline[..., _ENTROPY]

    reference_image = (np.arange(n_seq)[:, None] * n_steps + reference_steps[:, None]
                       + np.zeros(n_steps, np.int64)).ravel()  # [Q * S]
    moving, reference = _match_pairs(components, reference_image, max_match_distance)
    group = components.image[moving] * n_parts + components.part[moving]
    weight = components.area[reference]
    axial = (has_orientation(components.eccentricity[moving], components.area[moving],
                             min_eccentricity=angle_min_eccentricity)
             & has_orientation(components.eccentricity[reference], components.area[reference],
                               min_eccentricity=angle_min_eccentricity))
    n_groups = n_seq * n_steps * n_parts
    d_eccentricity = components.eccentricity[moving] - components.eccentricity[reference]
    d_angle = np.asarray(wrap_axial_degrees(components.angle[moving] - components.angle[reference]))
    change[..., _ECCENTRICITY] = _weighted_mean(group, d_eccentricity, weight, n_groups).reshape(change.shape[:3])
    change[..., _ANGLE] = _weighted_mean(group[axial], d_angle[axial], weight[axial],
                                         n_groups).reshape(change.shape[:3])
    visible = value[..., _AREA].mean(axis=1) >= visibility  # [Q, P]
    change = np.where(visible[:, None, :, None], change, 0.0)
    return value, np.ascontiguousarray(baseline), change, visible
