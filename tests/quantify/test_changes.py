"""Changes relative to the unperturbed step, and their aggregation over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from linkviz.quantify import (
    ChangeTable,
    aggregate_changes,
    measure_parts,
    part_changes,
    relative_area_change,
    unit_changes,
)

SIZE = 64
LABELS = ["background", "body", "tail"]


def _ellipse(a: float, b: float, angle_degrees: float, centre=(32.0, 32.0)) -> np.ndarray:
    rows, cols = np.mgrid[:SIZE, :SIZE]
    x, y = cols - centre[1], -(rows - centre[0])
    t = np.radians(angle_degrees)
    u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _sequence(body_masks, grey=(80, 80, 80)):
    masks = np.zeros((len(body_masks), SIZE, SIZE), np.int64)
    for step, body in enumerate(body_masks):
        masks[step][body] = 1
    images = np.broadcast_to(np.array(grey, np.uint8), (len(body_masks), SIZE, SIZE, 3)).copy()
    return images, masks


def _changes(images, masks, *, reference_step=0, **kwargs) -> pd.Series:
    measured = measure_parts(images, masks, LABELS, reference_step=reference_step)
    frame = part_changes(measured, unit=7, seed=3, **kwargs).to_frame()
    return frame.set_index(["step", "label", "metric"])["change"]


def test_identical_images_give_zero_change_and_no_nan():
    body = _ellipse(18, 9, 25.0)
    images, masks = _sequence([body, body, body])
    images[:, :, ::2] = 200  # some texture, so entropy is not trivially zero
    table = part_changes(measure_parts(images, masks, LABELS), unit=7, seed=3).to_frame()
    assert len(table) == 3 * 2 * 5  # steps x measured labels x metrics
    assert list(table.columns) == ["unit", "seed", "step", "label", "metric", "value", "baseline", "change",
                                   "visible"]
    body_rows = table[table["label"] == "body"]
    assert body_rows["change"].notna().all()
    np.testing.assert_allclose(body_rows["change"], 0.0, atol=1e-12)
    assert (table["unit"] == 7).all() and (table["seed"] == 3).all()


def test_dose_response_over_all_steps_relative_to_the_unperturbed_middle_step():
    bodies = [_ellipse(r, r, 0.0) for r in (8, 10, 12, 14)]
    change = _changes(*_sequence(bodies), reference_step=1)
    area = [change[step, "body", "area"] for step in range(4)]
    assert area[1] == 0.0
    assert area[0] < 0 < area[2] < area[3]
    assert area[3] == pytest.approx(14**2 / 10**2 - 1, abs=0.05)


def test_part_absent_at_the_reference_step_has_a_finite_area_change():
    absent, present = np.zeros((SIZE, SIZE), bool), _ellipse(10, 10, 0.0)
    images, masks = _sequence([absent, present, present])
    change = _changes(images, masks)
    floor = 20 * SIZE * SIZE / 128**2
    assert change[1, "body", "area"] == pytest.approx(present.sum() / floor)
    assert np.isfinite(change[1, "body", "area"])
    assert np.isnan(change[1, "body", "luminance"])  # no base luminance to compare with


def test_part_vanishing_at_a_later_step_is_a_change_of_minus_one():
    present, absent = _ellipse(10, 10, 0.0), np.zeros((SIZE, SIZE), bool)
    change = _changes(*_sequence([present, present, absent]))
    assert change[2, "body", "area"] == -1.0
    assert np.isnan(change[2, "body", "eccentricity"])


def test_relative_area_change_rule():
    assert relative_area_change(0, 0, floor=5.0) == 0.0
    assert relative_area_change(10, 0, floor=5.0) == 2.0
    assert relative_area_change(150, 100, floor=5.0) == 0.5
    with pytest.raises(ValueError, match="floor"):
        relative_area_change(1, 0, floor=0.0)


def test_angle_change_is_wrapped_across_the_seam():
    change = _changes(*_sequence([_ellipse(20, 8, 89.0), _ellipse(20, 8, -89.0)]))
    assert change[1, "body", "angle"] == pytest.approx(2.0, abs=1.0)


def test_eccentricity_change_of_a_thinning_ellipse():
    change = _changes(*_sequence([_ellipse(20, 10, 40.0), _ellipse(20, 5, 40.0)]))
    assert change[1, "body", "eccentricity"] == pytest.approx(np.sqrt(1 - 0.25**2) - np.sqrt(1 - 0.5**2), abs=0.02)
    assert change[1, "body", "angle"] == pytest.approx(0.0, abs=1.0)


def test_invisible_parts_and_labels_that_never_occur_count_as_unchanged():
    tiny = np.zeros((SIZE, SIZE), bool)
    tiny[10:12, 10:12] = True
    smaller = np.zeros((SIZE, SIZE), bool)
    smaller[10:11, 10:13] = True  # mean area 3.5 px < 5 px, the visibility threshold at 64 x 64
    images, masks = _sequence([tiny, smaller])
    table = part_changes(measure_parts(images, masks, LABELS), unit=0, seed=0).to_frame()
    assert not table["visible"].any()
    np.testing.assert_array_equal(table["change"], 0.0)
    assert set(table["label"]) == {"body", "tail"}


def test_unit_changes_stacks_seeds_with_their_reference_steps():
    bodies = [_ellipse(r, r, 0.0) for r in (8, 10, 12)]
    images, masks = _sequence(bodies)
    table = unit_changes(np.stack([images, images]), np.stack([masks, masks]), LABELS, unit=5,
                         reference_steps=[0, 1], seeds=[11, 12])
    frame = table.to_frame()
    assert len(frame) == 2 * 3 * 2 * 5
    area = frame[(frame["label"] == "body") & (frame["metric"] == "area")].set_index(["seed", "step"])["change"]
    assert area[11, 0] == 0.0 and area[12, 1] == 0.0 and area[11, 2] > area[12, 2] > 0


def _synthetic_table(values: np.ndarray) -> ChangeTable:
    return ChangeTable(pd.DataFrame({"unit": 1, "seed": np.arange(len(values)), "step": 2, "label": "body",
                                     "metric": "area", "change": values}))


def test_t_interval_matches_scipy():
    values = np.array([0.1, 0.3, 0.2, 0.5, 0.4, np.nan])
    row = aggregate_changes(_synthetic_table(values), method="t").iloc[0]
    valid = values[~np.isnan(values)]
    low, high = stats.t.interval(0.95, len(valid) - 1, loc=valid.mean(), scale=stats.sem(valid))
    assert row["n"] == 5 and row["mean"] == pytest.approx(valid.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).normal(1.0, 0.5, size=20)
    table = _synthetic_table(values)
    first = table.aggregate(method="bootstrap", n_resamples=500, seed=4)
    again = table.aggregate(method="bootstrap", n_resamples=500, seed=4)
    pd.testing.assert_frame_equal(first, again)
    row = first.iloc[0]
    assert row["ci_low"] < values.mean() < row["ci_high"]
    t_row = table.aggregate(method="t").iloc[0]
    assert row["ci_high"] - row["ci_low"] == pytest.approx(t_row["ci_high"] - t_row["ci_low"], rel=0.3)


def test_aggregation_of_zero_changes_and_of_undefined_changes():
    zero = aggregate_changes(_synthetic_table(np.zeros(4)), n_resamples=100).iloc[0]
    assert (zero["mean"], zero["ci_low"], zero["ci_high"]) == (0.0, 0.0, 0.0)
    undefined = aggregate_changes(_synthetic_table(np.full(3, np.nan)), method="t").iloc[0]
    assert undefined["n"] == 0 and np.isnan(undefined["mean"]) and np.isnan(undefined["ci_low"])
    with pytest.raises(ValueError, match="method"):
        aggregate_changes(_synthetic_table(np.zeros(2)), method="normal")
