"""The population pipeline: known disk growth is reported, batching, caching, resuming and corrupt chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fake_sweep import LABELS, threshold_segmenter, write_disk_sweep

from linkviz.quantify import ChangeTable, find_selective_units, sweep_changes, unit_changes

GROWTH = {0: 2.0, 1: -1.5, 2: 0.0}  # unit -> radius change per step (pixels)


class CountingSegmenter:
    """The threshold segmenter, recording the batch size of each call; can fail on a chosen call."""

    def __init__(self, *, fail_on_call: int | None = None) -> None:
        self.batch_sizes: list[int] = []
        self.fail_on_call = fail_on_call

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(images))
        if len(self.batch_sizes) == self.fail_on_call:
            raise RuntimeError("killed")
        return threshold_segmenter(images)


@pytest.fixture
def sweep(tmp_path):
    return write_disk_sweep(tmp_path / "sweep", GROWTH, n_seeds=3, n_steps=5, units_per_chunk=2)


def _run(sweep, segment, tmp_path, **options):
    options = {"segmenter_id": "threshold", "cache_dir": tmp_path / "cache", "units_per_chunk": 2,
               "progress": False, **options}
    return sweep_changes(sweep, segment, LABELS, **options)


def _area_change(table: ChangeTable, unit: int) -> float:
    frame = table.frame
    rows = frame[(frame.unit == unit) & (frame.label == "disk") & (frame.metric == "area") & (frame.step == 4)]
    return float(rows["change"].mean())


def test_reports_the_known_area_changes_from_batched_segmentation(sweep, tmp_path):
    segment = CountingSegmenter()
    table = _run(sweep, segment, tmp_path)
    assert segment.batch_sizes == [2 * 3 * 5, 1 * 3 * 5]  # all seeds x steps of 2 units, then of 1
    assert list(table.frame.columns) == ["unit", "seed", "step", "label", "metric", "value", "baseline", "change",
                                         "visible"]
    assert len(table.frame) == 3 * 3 * 5 * 1 * 5  # units x seeds x steps x measured labels x metrics
    assert _area_change(table, 0) > 0.5 and _area_change(table, 1) < -0.3 and _area_change(table, 2) == 0.0
    found = find_selective_units(table, label="disk", metric="area", sign="+", top=None)
    assert found["unit"].tolist() == [0]
    assert find_selective_units(table, label="disk", metric="area", sign="-", top=None)["unit"].tolist() == [1]


def test_equals_unit_changes_on_each_unit(sweep, tmp_path):
    table = _run(sweep, threshold_segmenter, tmp_path)
    expected = ChangeTable.concat(
        unit_changes(sweep.images(unit), threshold_segmenter(sweep.images(unit).reshape(-1, 32, 32, 3))
                     .reshape(3, 5, 32, 32), LABELS, unit=unit, reference_steps=sweep.baseline_step(unit))
        for unit in sweep.units)
    pd.testing.assert_frame_equal(table.frame, expected.frame, check_dtype=False)


def test_rerun_reads_the_cache_without_segmenting(sweep, tmp_path):
    first = _run(sweep, threshold_segmenter, tmp_path)
    segment = CountingSegmenter(fail_on_call=1)
    second = _run(sweep, segment, tmp_path)
    assert segment.batch_sizes == []
    pd.testing.assert_frame_equal(first.frame, second.frame)
    # another segmenter identity, options or unit subset is another cache entry
    segment = CountingSegmenter()
    assert len(_run(sweep, segment, tmp_path, segmenter_id="other").frame) == len(first.frame)
    assert len(segment.batch_sizes) == 2
    _run(sweep, segment, tmp_path, visibility=1.0)
    assert len(segment.batch_sizes) == 4
    subset = _run(sweep, segment, tmp_path, units=[2, 0])
    assert subset.frame["unit"].unique().tolist() == [2, 0]


def test_resumes_after_an_interruption(sweep, tmp_path):
    with pytest.raises(RuntimeError, match="killed"):
        _run(sweep, CountingSegmenter(fail_on_call=2), tmp_path, units_per_chunk=1)
    segment = CountingSegmenter()
    resumed = _run(sweep, segment, tmp_path, units_per_chunk=1)
    assert segment.batch_sizes == [15, 15]  # unit 0 was stored before the crash
    pd.testing.assert_frame_equal(resumed.frame, _run(sweep, threshold_segmenter, tmp_path / "fresh",
                                                      units_per_chunk=1).frame)


def test_a_corrupt_chunk_is_detected_and_recomputed(sweep, tmp_path):
    first = _run(sweep, threshold_segmenter, tmp_path)
    (chunk,) = (tmp_path / "cache" / "changes").glob("*/chunk_000001.npz")
    chunk.write_bytes(chunk.read_bytes()[:-20] + b"x" * 20)
    segment = CountingSegmenter()
    with pytest.warns(UserWarning, match="corrupt"):
        second = _run(sweep, segment, tmp_path)
    assert segment.batch_sizes == [15]
    pd.testing.assert_frame_equal(first.frame, second.frame)


def test_default_cache_lives_in_the_sweep_directory(sweep, tmp_path):
    _run(sweep, threshold_segmenter, tmp_path, cache_dir=None)
    assert len(list((sweep.directory / "changes").glob("*/chunk_*.npz"))) == 2


def test_a_sweep_without_an_unperturbed_step_needs_a_reference_step(tmp_path):
    sweep = write_disk_sweep(tmp_path / "reference", {0: 1.0}, baseline_step=-1, mode="reference")
    with pytest.raises(ValueError, match="reference_step=0"):
        _run(sweep, threshold_segmenter, tmp_path)
    table = _run(sweep, threshold_segmenter, tmp_path, reference_step=0)
    assert _area_change(table, 0) > 0


@pytest.mark.parametrize(("segment", "message"), [
    (lambda images: threshold_segmenter(images)[:, :-1], "shape"),
    (lambda images: threshold_segmenter(images) * 2, "label ids"),
    (lambda images: threshold_segmenter(images).astype(float), "integer"),
])
def test_bad_segmenter_output_raises(sweep, tmp_path, segment, message):
    with pytest.raises(ValueError, match=message):
        _run(sweep, segment, tmp_path)


def test_bad_arguments_raise(sweep, tmp_path):
    with pytest.raises(KeyError, match=r"\[7\]"):
        _run(sweep, threshold_segmenter, tmp_path, units=[0, 7])
    with pytest.raises(ValueError, match="segmenter_id"):
        _run(sweep, threshold_segmenter, tmp_path, segmenter_id="")
    with pytest.raises(ValueError, match="units_per_chunk"):
        _run(sweep, threshold_segmenter, tmp_path, units_per_chunk=0)
