"""Truth checks of the population analysis: does the concept the pipeline names really move in generated images?

For every concept (part label, metric, direction) the pipeline's :func:`~linkviz.quantify.find_selective_units`
reports its top units on a :class:`~linkviz.quantify.ChangeTable`. An independent estimate of the true metrics
(on the toy world, a :class:`~linkviz.worlds.toy.metric_regressor.MetricRegressor` trained on renders with known
part masks) is applied to each unit's unperturbed and tuned images from the sweep; the unit *agrees* when the
estimated change of that label's metric, averaged over seeds, has the named sign. Changes are taken as in
:mod:`linkviz.quantify.changes` (relative area, luminance / 255, entropy in bits, eccentricity, angle wrapped to
``(-90, 90]``), so only their signs are compared with the pipeline's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from linkviz.quantify.changes import ChangeTable, relative_area_change
from linkviz.quantify.component_ellipses import wrap_axial_degrees
from linkviz.quantify.part_metrics import METRICS, visibility_threshold
from linkviz.quantify.population import find_selective_units, parse_sign
from linkviz.tuning.sweep import SweepResult

__all__ = ["MetricEstimator", "TruthCheck", "check_selective_units", "estimated_changes"]

#: Estimates the metrics of every label: uint8 images [M, H, W, 3] -> float [M, L, len(METRICS)], e.g.
#: ``lambda images: estimate_metrics(regressor, images)``.
MetricEstimator = Callable[[np.ndarray], np.ndarray]

_UNIT_COLUMNS = ["label", "metric", "sign", "rank", "unit", "step", "effect", "estimated_change", "seeds_agreeing",
                 "n_seeds", "agrees"]


@dataclass(frozen=True)
class TruthCheck:
    """Agreement of the pipeline's selective units with an independent estimate of the true metrics.

    Attributes
    ----------
    units : DataFrame
        One row per (concept, reported unit): ``label, metric, sign, rank, unit, step, effect`` (the pipeline's
        mean change times ``sign``), ``estimated_change`` (the estimator's mean change over seeds),
        ``seeds_agreeing`` (share of seeds whose estimated change has the named sign), ``n_seeds`` and
        ``agrees`` (``sign * estimated_change > 0``).
    """

    units: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The per-unit table (a copy)."""
        return self.units.copy()

    def by_concept(self) -> pd.DataFrame:
        """``label, metric, sign, n_units, n_agree, agreement`` for every concept with reported units."""
        grouped = self.units.groupby(["label", "metric", "sign"], sort=False)["agrees"]
        table = grouped.agg(n_units="size", n_agree="sum").reset_index()
        return table.assign(agreement=table["n_agree"] / table["n_units"])

    @property
    def overall(self) -> float:
        """Share of all (concept, unit) rows that agree; NaN when no concept reported a unit."""
        return float(self.units["agrees"].mean()) if len(self.units) else float("nan")


def estimated_changes(estimates: np.ndarray, *, metric: str, step: int, reference_steps: np.ndarray,
                      area_floor: float) -> np.ndarray:
    """Per-seed change of one label's estimated metric between ``step`` and each seed's reference step.

    Parameters
    ----------
    estimates : ndarray of float, shape (N, S)
        The estimated metric of one label for N seeds x S steps.
    metric : str
        One of :data:`~linkviz.quantify.METRICS`.
    step : int
    reference_steps : ndarray of int, shape (N,)
    area_floor : float
        Divisor floor of the relative area change (pixels).

    Returns
    -------
    ndarray of float, shape (N,)
    """
    rows = np.arange(len(estimates))
    moved, base = estimates[:, step], estimates[rows, reference_steps]
    if metric == "area":
        return np.asarray(relative_area_change(moved, base, floor=area_floor), dtype=np.float64)
    if metric == "luminance":
        return (moved - base) / 255.0
    if metric == "angle":
        return np.asarray(wrap_axial_degrees(moved - base), dtype=np.float64)
    if metric in METRICS:
        return moved - base
    raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")


def _concepts(frame: pd.DataFrame, labels: Sequence[str],
              concepts: Iterable[tuple[str, str, int]] | None) -> list[tuple[str, str, int]]:
    if concepts is None:
        pairs = frame[["label", "metric"]].astype(str).drop_duplicates()
        return [(label, metric, sign) for label, metric in pairs.itertuples(index=False)
                if label in labels for sign in (1, -1)]
    concepts = [(str(label), str(metric), parse_sign(sign)) for label, metric, sign in concepts]
    unknown = sorted({label for label, _, _ in concepts} - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown} are not estimated; the estimator's labels are {list(labels)}")
    return concepts


def _unit_estimates(sweep: SweepResult, units: Sequence[int], estimate: MetricEstimator, n_labels: int,
                    units_per_call: int) -> dict[int, np.ndarray]:
    """Estimates [N, S, L, M] per unit, from one estimator call per group of units."""
    out = {}
    for start in range(0, len(units), units_per_call):
        group = units[start:start + units_per_call]
        images = np.stack([sweep.images(unit) for unit in group])  # [U, N, S, H, W, 3]
        values = np.asarray(estimate(images.reshape(-1, *images.shape[3:])), dtype=np.float64)
        expected = (int(np.prod(images.shape[:3])), n_labels, len(METRICS))
        if values.shape != expected:
            raise ValueError(f"the estimator returned shape {values.shape}; expected {expected} (images x labels "
                             f"x {METRICS})")
        out.update(zip(group, values.reshape(*images.shape[:3], n_labels, len(METRICS))))
    return out


def check_selective_units(
    table: ChangeTable | pd.DataFrame,
    sweep: SweepResult,
    estimate: MetricEstimator,
    labels: Sequence[str],
    *,
    concepts: Iterable[tuple[str, str, int | str]] | None = None,
    top: int = 5,
    reference_step: int | None = None,
    area_floor: float | None = None,
    units_per_call: int = 8,
    **find_options: Any,
) -> TruthCheck:
    """Check the top selective units of each concept against an independent estimate of the true metrics.

    Parameters
    ----------
    table : ChangeTable or DataFrame
        The pipeline's changes of ``sweep`` (e.g. :func:`~linkviz.quantify.sweep_changes`).
    sweep : SweepResult
        The sweep the table was measured on; its images are re-estimated.
    estimate : callable
        ``estimate(images)`` with uint8 images (M, H, W, 3) returns float (M, L, 5): every label's metrics in the
        order of :data:`~linkviz.quantify.METRICS` and their units (see
        :func:`~linkviz.worlds.toy.metric_regressor.estimate_metrics`).
    labels : sequence of str
        The estimator's labels, in order.
    concepts : iterable of (label, metric, sign), optional
        Concepts to check (sign +1/-1 or "+"/"-"); default every (label, metric) of the table that the estimator
        covers, in both directions.
    top : int
        Units checked per concept (fewer where fewer pass the pipeline's filters).
    reference_step : int, optional
        Step the changes are taken against; default each seed's unperturbed step, as the pipeline did.
    area_floor : float, optional
        Floor of the relative area change; default the visibility threshold of the image size.
    units_per_call : int
        Units whose images go to the estimator in one call.
    **find_options
        Passed to :func:`~linkviz.quantify.find_selective_units` (``step``, ``method``, ``significant_only``,
        ``min_selectivity``, ``rank_by``, ...).

    Returns
    -------
    TruthCheck
    """
    frame = table.frame if isinstance(table, ChangeTable) else table
    labels = tuple(str(name) for name in labels)
    if top < 1 or units_per_call < 1:
        raise ValueError(f"top and units_per_call must be positive; got {top} and {units_per_call}")
    reported = []
    for label, metric, sign in _concepts(frame, labels, concepts):
        found = find_selective_units(frame, label=label, metric=metric, sign=sign, top=top, **find_options)
        reported.append(found.assign(sign=sign))
    if not reported or all(part.empty for part in reported):
        return TruthCheck(pd.DataFrame(columns=_UNIT_COLUMNS))
    reported = pd.concat([part for part in reported if not part.empty], ignore_index=True)
    units = list(dict.fromkeys(int(unit) for unit in reported["unit"]))
    estimates = _unit_estimates(sweep, units, estimate, len(labels), units_per_call)
    image_shape = sweep.images(units[0]).shape[2:4]
    area_floor = visibility_threshold(image_shape) if area_floor is None else float(area_floor)
    rows = []
    for row in reported.itertuples(index=False):
        unit = int(row.unit)
        references = (sweep.baseline_step(unit) if reference_step is None
                      else np.full(sweep.n_seeds, int(reference_step)))
        values = estimates[unit][:, :, labels.index(row.label), METRICS.index(row.metric)]
        change = estimated_changes(values, metric=row.metric, step=int(row.step), reference_steps=references,
                                   area_floor=area_floor)
        defined = np.isfinite(change)
        mean = float(change[defined].mean()) if defined.any() else float("nan")
        rows.append({"label": row.label, "metric": row.metric, "sign": int(row.sign), "rank": int(row.rank),
                     "unit": unit, "step": int(row.step), "effect": float(row.effect), "estimated_change": mean,
                     "seeds_agreeing": float((row.sign * change[defined] > 0).mean()) if defined.any() else np.nan,
                     "n_seeds": int(defined.sum()), "agrees": bool(row.sign * mean > 0)})
    return TruthCheck(pd.DataFrame(rows, columns=_UNIT_COLUMNS))
