"""Motion metrics on analytic fields with known values, on estimated flow of known growth, and on empty parts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SIZE, bump_pair, centre_disk

from linkviz.tracking import MotionField, dense_flow, divergence_map, part_motion, summarize_motion


def _field(flow_row, flow_col, valid=None) -> MotionField:
    flow = np.stack(np.broadcast_arrays(np.asarray(flow_row, float), np.asarray(flow_col, float))).copy()
    valid = np.ones(flow.shape[1:], bool) if valid is None else valid
    return MotionField(flow=flow, valid=valid, method="synthetic")


ROWS, COLS = np.mgrid[:32, :32].astype(float)


@pytest.mark.parametrize(("flow", "angle"), [((0.0, 2.0), 0.0), ((-2.0, 0.0), np.pi / 2), ((0.0, -2.0), np.pi),
                                             ((2.0, 0.0), -np.pi / 2)], ids=["right", "up", "left", "down"])
def test_translation_direction_magnitude_coherence(flow, angle):
    summary = summarize_motion(_field(np.full((32, 32), flow[0]), np.full((32, 32), flow[1])))
    assert summary.n_pixels == 32 * 32
    assert summary.mean_magnitude == pytest.approx(2.0)
    assert summary.dominant_direction == pytest.approx(angle)
    assert summary.direction_coherence == pytest.approx(1.0)
    assert summary.divergence == pytest.approx(0.0)


def test_dominant_direction_is_magnitude_weighted_circular_mean():
    flow_row = np.where(COLS < 16, 0.0, -1.0)  # right half moves up by 1
    flow_col = np.where(COLS < 16, 3.0, 0.0)  # left half moves right by 3
    summary = summarize_motion(_field(flow_row, flow_col))
    assert summary.dominant_direction == pytest.approx(np.arctan2(0.5, 1.5))
    assert summary.mean_magnitude == pytest.approx(2.0)
    assert summary.direction_coherence == pytest.approx(np.hypot(0.5, 1.5) / 2.0)


@pytest.mark.parametrize("scale", [1.05, 0.9])
def test_uniform_scaling_has_divergence_two_times_scale_minus_one(scale):
    centre = 15.5
    field = _field((scale - 1) * (ROWS - centre), (scale - 1) * (COLS - centre))
    np.testing.assert_allclose(divergence_map(field), 2 * (scale - 1))
    summary = summarize_motion(field, ROWS < 8)
    assert summary.divergence == pytest.approx(2 * (scale - 1))
    assert summarize_motion(field).direction_coherence < 1e-9  # radial: no net direction


@pytest.mark.parametrize("amplitude", [0.3, -0.3], ids=["growth", "shrinkage"])
def test_estimated_divergence_has_the_sign_of_growth(amplitude):
    reference, moving, true_flow = bump_pair(amplitude)
    disk = centre_disk()
    estimated = summarize_motion(dense_flow(reference, moving), disk).divergence
    truth = summarize_motion(_field(*true_flow), disk).divergence
    assert np.sign(estimated) == np.sign(amplitude) == np.sign(truth)
    assert estimated == pytest.approx(truth, rel=0.25)


def test_invalid_pixels_are_excluded_and_border_divergence_ignored():
    valid = COLS >= 8
    field = _field(np.zeros((32, 32)), np.where(valid, 1.0, 0.0), valid=valid)  # zero padding outside
    summary = summarize_motion(field)
    assert summary.n_pixels == valid.sum()
    assert summary.mean_magnitude == pytest.approx(1.0)
    assert summary.divergence == pytest.approx(0.0)  # the padded step at col 8 is not counted


def test_empty_mask_gives_nan_and_no_motion_gives_nan_direction():
    field = _field(np.zeros((32, 32)), np.zeros((32, 32)))
    empty = summarize_motion(field, np.zeros((32, 32), bool))
    assert empty.n_pixels == 0
    assert all(np.isnan(v) for v in (empty.mean_magnitude, empty.dominant_direction, empty.direction_coherence,
                                     empty.divergence))
    still = summarize_motion(field)
    assert still.mean_magnitude == 0.0 and still.divergence == 0.0
    assert np.isnan(still.dominant_direction) and np.isnan(still.direction_coherence)


def test_part_motion_reports_absent_labels_as_counted_skips():
    field = _field(np.zeros((32, 32)), np.full((32, 32), 1.5))
    labels = np.where(ROWS < 16, 0, 2)  # label 1 ("tail") never occurs, label 3 ("eye") is one pixel
    labels[31, 31] = 3
    result = part_motion(field, labels, label_names=["background", "tail", "body", "eye"], min_pixels=2)
    assert list(result.parts) == ["background", "tail", "body", "eye"]
    assert result.skipped == ("tail", "eye") and result.n_skipped == 2
    assert result.parts["body"].mean_magnitude == pytest.approx(1.5)
    table = result.to_frame()
    assert list(table.columns) == ["part", "metric", "value", "n_pixels"]
    assert len(table) == 4 * 4
    assert table[table.part == "tail"].value.isna().all() and (table[table.part == "tail"].n_pixels == 0).all()
    assert table[table.part == "eye"].n_pixels.iloc[0] == 1


def test_part_motion_accepts_named_masks_and_default_names():
    field = _field(np.zeros((32, 32)), np.ones((32, 32)))
    by_mask = part_motion(field, {"top": ROWS < 16, "nothing": np.zeros((32, 32), bool)})
    assert by_mask.skipped == ("nothing",)
    by_label = part_motion(field, (ROWS >= 16).astype(int))
    assert list(by_label.parts) == ["0", "1"] and by_label.n_skipped == 0


def test_bad_masks_are_refused():
    field = _field(np.zeros((32, 32)), np.zeros((32, 32)))
    with pytest.raises(ValueError, match="mask has shape"):
        summarize_motion(field, np.ones((SIZE, SIZE), bool))
    with pytest.raises(ValueError, match="must hold integers"):
        part_motion(field, np.zeros((32, 32)))
    with pytest.raises(ValueError, match=r"labels \[5\] have no name"):
        part_motion(field, np.full((32, 32), 5), label_names=["a", "b"])
