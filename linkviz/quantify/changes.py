"""Changes of part metrics relative to the unperturbed step, over all tuning steps, and their aggregation over seeds.

The change at step ``s`` of a sequence whose unperturbed (reference) step is ``s0``, per part label:

==============  ==========================================================================================
metric          change
==============  ==========================================================================================
area            ``(A_s - A_s0) / max(A_s0, area_floor)``: relative to the unperturbed area, with the base
                floored at the visibility threshold so that a part absent at ``s0`` (area 0) gets a finite,
                signed change in units of "smallest visible part" (never a division by zero, never raw
                pixels). 0 when the part is absent at both steps.
luminance       ``(L_s - L_s0) / 255``: fraction of the full luminance scale.
entropy         ``H_s - H_s0`` in bits.
eccentricity    ``e_s - e_s0`` per component matched to the reference step, mean weighted by the reference
                component's area.
angle           ``wrap(theta_s - theta_s0)`` in degrees in ``(-90, 90]`` (axial), per matched component whose
                eccentricity is at least ``angle_min_eccentricity`` at both steps (a near-disk has no angle;
                see :func:`~linkviz.quantify.component_ellipses.has_orientation`),
                weighted likewise.
==============  ==========================================================================================

Luminance, entropy, eccentricity and angle changes are NaN where they are undefined (the part, or every matched
component, is missing at either step); aggregation skips NaN and reports how many seeds contributed. A label
whose mean area over all steps is below the visibility threshold counts as unchanged: every change is 0 and
``visible`` is False (the reference's rule, with 20 px of 128 x 128 scaled to the image size).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from linkviz.quantify.batch_changes import batch_sequence_changes
from linkviz.quantify.component_ellipses import ANGLE_MIN_ECCENTRICITY, has_orientation, wrap_axial_degrees
from linkviz.quantify.part_metrics import METRICS, PartMeasurements, _check_sequence, visibility_threshold

__all__ = ["ChangeTable", "aggregate_changes", "part_changes", "relative_area_change", "unit_changes"]

CHANGE_COLUMNS = ("unit", "seed", "step", "label", "metric", "value", "baseline", "change", "visible")
_COLUMN_DTYPES = (np.int64, np.int64, np.int64, object, object, np.float64, np.float64, np.float64, bool)
_KEYS = ("unit", "step", "label", "metric")


def relative_area_change(area: float | np.ndarray, base_area: float | np.ndarray, *,
                         floor: float) -> float | np.ndarray:
    """Signed relative area change ``(area - base) / max(base, floor)``; finite for every input.

    Parameters
    ----------
    area, base_area : float or ndarray
        Areas in pixels (broadcast together).
    floor : float
        Smallest base used as the divisor, > 0; the visibility threshold in :func:`part_changes`.

    Returns
    -------
    float or ndarray
    """
    if not floor > 0:
        raise ValueError(f"floor must be positive; got {floor}")
    area, base_area = np.asarray(area, dtype=np.float64), np.asarray(base_area, dtype=np.float64)
    change = (area - base_area) / np.maximum(base_area, floor)
    return float(change) if change.ndim == 0 else change


@dataclass(frozen=True)
class ChangeTable:
    """Tidy metric changes: one row per unit x seed x step x label x metric.

    Attributes
    ----------
    frame : DataFrame
        Columns ``unit, seed, step, label, metric, value, baseline, change, visible``: the metric's value at the
        step and at the unperturbed step, the change as defined in this module, and whether the label passed
        the visibility threshold.
    """

    frame: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (a copy)."""
        return self.frame.copy()

    @classmethod
    def concat(cls, tables: Iterable[ChangeTable]) -> ChangeTable:
        """One table from many (e.g. one per unit and seed)."""
        frames = [table.frame for table in tables]
        if not frames:
            return cls(pd.DataFrame(columns=list(CHANGE_COLUMNS)))
        return cls(pd.concat(frames, ignore_index=True))

    def aggregate(self, **kwargs: Any) -> pd.DataFrame:
        """Mean over seeds with confidence intervals; keyword arguments as in :func:`aggregate_changes`."""
        return aggregate_changes(self, **kwargs)


def _shape_changes(measurements: PartMeasurements, angle_min_eccentricity: float) -> pd.DataFrame:
    """Eccentricity and angle changes per (step, label) from components matched to the reference step."""
    components = measurements.components
    reference = components[components["step"] == measurements.reference_step]
    pairs = components[components["track"] >= 0].merge(
        reference[["label", "component", "area", "eccentricity", "angle"]],
        left_on=["label", "track"], right_on=["label", "component"], suffixes=("", "_ref"))
    pairs = pairs.assign(
        d_eccentricity=pairs["eccentricity"] - pairs["eccentricity_ref"],
        d_angle=wrap_axial_degrees(pairs["angle"].to_numpy() - pairs["angle_ref"].to_numpy()),
        has_axis=has_orientation(pairs["eccentricity"].to_numpy(), pairs["area"].to_numpy(),
                                 min_eccentricity=angle_min_eccentricity)
        & has_orientation(pairs["eccentricity_ref"].to_numpy(), pairs["area_ref"].to_numpy(),
                          min_eccentricity=angle_min_eccentricity))
    rows = []
    for (step, label), group in pairs.groupby(["step", "label"], sort=False):
        weights = group["area_ref"].to_numpy(dtype=np.float64)
        axial = group["has_axis"].to_numpy()
        rows.append({"step": step, "label": label,
                     "eccentricity": np.average(group["d_eccentricity"], weights=weights),
                     "angle": np.average(group["d_angle"][axial], weights=weights[axial]) if axial.any()
                     else np.nan})
    return pd.DataFrame(rows, columns=["step", "label", "eccentricity", "angle"])


def part_changes(measurements: PartMeasurements, *, unit: int, seed: int, visibility: float | None = None,
                 area_floor: float | None = None,
                 angle_min_eccentricity: float = ANGLE_MIN_ECCENTRICITY) -> ChangeTable:
    """Changes of every metric of every label at every step, relative to the measurements' reference step.

    Parameters
    ----------
    measurements : PartMeasurements
        Of one unit and one seed (:func:`~linkviz.quantify.measure_parts`).
    unit, seed : int
        Written into the table.
    visibility : float, optional
        Labels whose mean area over all steps is below this many pixels count as unchanged. Default:
        :func:`~linkviz.quantify.visibility_threshold` of the image size (20 px at 128 x 128).
    area_floor : float, optional
        Smallest divisor of the relative area change, > 0. Default: the scaled visibility threshold.
    angle_min_eccentricity : float
        Components rounder than this (at either step) are left out of the angle change, as are components whose
        axes differ by less than the pixel grid can make (:func:`~linkviz.quantify.component_ellipses.has_orientation`).

    Returns
    -------
    ChangeTable
    """
    if measurements.parts.empty:
        return ChangeTable.concat([])
    default_threshold = visibility_threshold(measurements.image_shape)
    visibility = default_threshold if visibility is None else float(visibility)
    area_floor = default_threshold if area_floor is None else float(area_floor)
    parts = measurements.parts.set_index(["step", "label"])[list(METRICS)]
    base = parts.xs(measurements.reference_step, level="step")
    baseline = base.reindex(parts.index.get_level_values("label")).set_axis(parts.index)

    change = pd.DataFrame(index=parts.index)
    change["area"] = relative_area_change(parts["area"], baseline["area"], floor=area_floor)
    change["luminance"] = (parts["luminance"] - baseline["luminance"]) / 255.0
    change["entropy"] = parts["entropy"] - baseline["entropy"]
    shape = _shape_changes(measurements, angle_min_eccentricity).set_index(["step", "label"])
    change[["eccentricity", "angle"]] = shape.reindex(parts.index)[["eccentricity", "angle"]]

    mean_area = parts["area"].groupby(level="label").mean()
    visible = mean_area.reindex(parts.index.get_level_values("label")).to_numpy() >= visibility
    change.loc[~visible, :] = 0.0

    long = {name: table.reset_index().melt(id_vars=["step", "label"], var_name="metric", value_name=name)
            for name, table in (("value", parts), ("baseline", baseline), ("change", change))}
    frame = long["value"].assign(baseline=long["baseline"]["baseline"], change=long["change"]["change"],
                                 visible=np.tile(visible, len(METRICS)), unit=int(unit), seed=int(seed))
    frame = frame[list(CHANGE_COLUMNS)].astype({"value": float, "baseline": float, "change": float})
    return ChangeTable(frame.sort_values(["step", "label"], kind="stable").reset_index(drop=True))


def unit_changes(images: np.ndarray, masks: np.ndarray, labels: Sequence[str], *, unit: int,
                 reference_steps: int | Sequence[int], seeds: Sequence[int] | None = None,
                 visibility: float | None = None, area_floor: float | None = None,
                 angle_min_eccentricity: float = ANGLE_MIN_ECCENTRICITY, **measure_kwargs: Any) -> ChangeTable:
    """Measure and compare every seed's tuning sequence of one unit (e.g. ``SweepResult.images(unit)``).

    All seeds, steps and labels are measured at once (:mod:`linkviz.quantify.batch_changes`); the table is the one
    :func:`part_changes` of :func:`~linkviz.quantify.measure_parts` gives per seed, concatenated.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, S, H, W, 3)
        ``N`` seeds x ``S`` steps.
    masks : ndarray of int, shape (N, S, H, W)
        Part segmentations; value ``i`` is ``labels[i]``.
    labels : sequence of str
    unit : int
    reference_steps : int or sequence of int, length N
        The unperturbed step of each seed (``SweepResult.baseline_step(unit)``); must be valid steps.
    seeds : sequence of int, length N, optional
        Seed identifiers written into the table; default ``0..N-1``.
    visibility, area_floor, angle_min_eccentricity
        As in :func:`part_changes`.
    **measure_kwargs
        As in :func:`~linkviz.quantify.measure_parts` (``exclude``, ``entropy_radius``, ``connectivity``,
        ``min_component_area``, ``max_match_distance``).

    Returns
    -------
    ChangeTable
    """
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim != 5 or masks.ndim != 4:
        raise ValueError(f"images must be [N, S, H, W, 3] and masks [N, S, H, W]; got {images.shape} and "
                         f"{masks.shape}")
    n_seeds = len(images)
    seeds = list(range(n_seeds)) if seeds is None else list(seeds)
    references = np.broadcast_to(np.asarray(reference_steps, dtype=np.int64), (n_seeds,))
    if len(seeds) != n_seeds or len(masks) != n_seeds:
        raise ValueError(f"images ({n_seeds}), masks ({len(masks)}) and seeds ({len(seeds)}) must have one entry "
                         "per seed")
    columns = sequence_change_columns(images, masks, labels, units=np.full(n_seeds, int(unit)),
                                      seeds=np.asarray(seeds, dtype=np.int64), reference_steps=references,
                                      visibility=visibility, area_floor=area_floor,
                                      angle_min_eccentricity=angle_min_eccentricity, **measure_kwargs)
    return ChangeTable(pd.DataFrame(columns)[list(CHANGE_COLUMNS)])


def sequence_change_columns(images: np.ndarray, masks: np.ndarray, labels: Sequence[str], *, units: np.ndarray,
                            seeds: np.ndarray, reference_steps: np.ndarray, visibility: float | None = None,
                            area_floor: float | None = None, angle_min_eccentricity: float = ANGLE_MIN_ECCENTRICITY,
                            exclude: Collection[str] = ("background",), **measure_kwargs: Any,
                            ) -> dict[str, np.ndarray]:
    """The columns of the change table of ``Q`` tuning sequences, computed for all of them at once.

    The same rows, in the same order, as :func:`part_changes` of :func:`~linkviz.quantify.measure_parts` per
    sequence, concatenated: per sequence, by step, label name and metric.

    Parameters
    ----------
    images : ndarray of uint8, shape (Q, S, H, W, 3)
    masks : ndarray of int, shape (Q, S, H, W)
    labels : sequence of str
    units, seeds, reference_steps : ndarray of int, shape (Q,)
        Unit, seed and unperturbed step of each sequence.
    visibility, area_floor, angle_min_eccentricity
        As in :func:`part_changes`.
    exclude, **measure_kwargs
        As in :func:`~linkviz.quantify.measure_parts` (``entropy_radius``, ``connectivity``, ...).

    Returns
    -------
    dict of str to ndarray
        One array of length ``R`` per column of :class:`ChangeTable`.
    """
    n_seq = len(images)
    if n_seq:
        _check_sequence(images.reshape(-1, *images.shape[2:]), masks.reshape(-1, *masks.shape[2:]), len(labels))
    bad = (reference_steps < 0) | (reference_steps >= images.shape[1])
    if bad.any():
        raise ValueError(f"reference_step must be in [0, {images.shape[1]}); got {reference_steps[bad][0]} (the "
                         "unperturbed step; a sweep without one has no reference)")
    measured = [(index, name) for index, name in enumerate(labels) if name not in exclude]
    if not n_seq or not measured:
        return {name: np.zeros(0, dtype=dtype) for name, dtype in zip(CHANGE_COLUMNS, _COLUMN_DTYPES)}
    default_threshold = visibility_threshold(images.shape[2:4])
    area_floor = default_threshold if area_floor is None else float(area_floor)
    if not area_floor > 0:
        raise ValueError(f"area_floor must be positive; got {area_floor}")
    value, baseline, change, visible = batch_sequence_changes(
        images, masks, [index for index, _ in measured], np.asarray(reference_steps, np.int64),
        visibility=default_threshold if visibility is None else float(visibility), area_floor=area_floor,
        angle_min_eccentricity=angle_min_eccentricity, **measure_kwargs)
    order = sorted(range(len(measured)), key=lambda slot: measured[slot][1])  # rows sorted by label name
    _, n_steps, n_parts, n_metrics = value.shape
    per_sequence = n_steps * n_parts * n_metrics
    names = np.array([measured[slot][1] for slot in order], dtype=object)
    return {
        "unit": np.repeat(np.asarray(units, np.int64), per_sequence),
        "seed": np.repeat(np.asarray(seeds, np.int64), per_sequence),
        "step": np.tile(np.repeat(np.arange(n_steps, dtype=np.int64), n_parts * n_metrics), n_seq),
        "label": np.tile(np.repeat(names, n_metrics), n_seq * n_steps),
        "metric": np.tile(np.array(METRICS, dtype=object), n_seq * n_steps * n_parts),
        "value": value[:, :, order].ravel(), "baseline": baseline[:, :, order].ravel(),
        "change": change[:, :, order].ravel(),
        "visible": np.broadcast_to(visible[:, None, order, None], value.shape).ravel(),
    }


def _padded_groups(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Group keys, values padded to ``[G, n_max]`` with NaN (valid values first) and counts ``[G]``."""
    grouped = frame.groupby(keys, sort=True, observed=True, dropna=False)
    group_id = grouped.ngroup().to_numpy()
    index = grouped.size().index.to_frame(index=False)
    values = frame["change"].to_numpy(dtype=np.float64)
    valid = ~np.isnan(values)
    counts = np.bincount(group_id[valid], minlength=len(index))
    position = pd.Series(group_id[valid]).groupby(group_id[valid]).cumcount().to_numpy()
    padded = np.full((len(index), max(int(counts.max(initial=0)), 1)), np.nan)
    padded[group_id[valid], position] = values[valid]
    return index, padded, counts


def _bootstrap_ci(padded: np.ndarray, counts: np.ndarray, *, confidence: float, n_resamples: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap of the mean of each row's first ``counts[g]`` values, vectorised over rows."""
    n_groups, n_max = padded.shape
    uniform = np.random.default_rng(seed).random((n_resamples, n_max))
    low, high = np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    chunk = max(1, 4_000_000 // (n_resamples * n_max))
    alpha = (1.0 - confidence) / 2.0
    for start in range(0, n_groups, chunk):
        rows = np.arange(start, min(start + chunk, n_groups))
        rows = rows[counts[rows] >= 2]
        if not len(rows):
            continue
        n = counts[rows][:, None, None]
        draws = np.floor(uniform[None] * n).astype(np.int64)  # [rows, B, n_max]
        sample = padded[rows[:, None, None], draws]
        use = np.arange(n_max)[None, None, :] < n
        means = np.where(use, sample, 0.0).sum(axis=2) / n[:, :, 0]
        low[rows], high[rows] = np.quantile(means, [alpha, 1.0 - alpha], axis=1)
    return low, high


def aggregate_changes(table: ChangeTable | pd.DataFrame, *, method: Literal["bootstrap", "t"] = "bootstrap",
                      confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                      by: Sequence[str] = _KEYS) -> pd.DataFrame:
    """Mean change over seeds with a confidence interval, per unit x step x label x metric.

    Parameters
    ----------
    table : ChangeTable or DataFrame
        With the columns of :class:`ChangeTable` (at least ``by`` and ``change``).
    method : {"bootstrap", "t"}
        Percentile bootstrap of the mean (seeded) or Student's t interval.
    confidence : float
        In (0, 1).
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the bootstrap's generator.
    by : sequence of str
        Grouping columns; seeds are what is aggregated over.

    Returns
    -------
    DataFrame
        ``*by, mean, std, n, ci_low, ci_high`` with ``n`` the number of seeds with a defined (non-NaN) change;
        ``std`` (ddof 1) and the interval are NaN where ``n < 2``, the mean where ``n == 0``.
    """
    if method not in ("bootstrap", "t"):
        raise ValueError(f"method must be 'bootstrap' or 't'; got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    frame = table.frame if isinstance(table, ChangeTable) else table
    index, padded, counts = _padded_groups(frame, list(by))
    filled = np.nan_to_num(padded)
    mean = np.where(counts > 0, filled.sum(axis=1) / np.maximum(counts, 1), np.nan)
    squares = np.where(np.isnan(padded), 0.0, (padded - mean[:, None]) ** 2).sum(axis=1)
    std = np.where(counts > 1, np.sqrt(squares / np.maximum(counts - 1, 1)), np.nan)
    if method == "t":
        quantile = stats.t.ppf((1.0 + confidence) / 2.0, np.maximum(counts - 1, 1))
        half = np.where(counts > 1, quantile * std / np.sqrt(np.maximum(counts, 1)), np.nan)
        low, high = mean - half, mean + half
    else:
        low, high = _bootstrap_ci(padded, counts, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return index.assign(mean=mean, std=std, n=counts, ci_low=low, ci_high=high)
