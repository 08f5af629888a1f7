"""Truth checks: agreement of the pipeline's selective units with a planted estimator, and the shortcut check."""

from __future__ import annotations

import numpy as np
import pytest
from fake_sweep import LABELS, threshold_segmenter, write_disk_sweep
from fake_world import FakeGenerator, fake_classifier, identity_link
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

from linkviz.linking import LinkedModel
from linkviz.pairs import PairSet
from linkviz.quantify import METRICS, sweep_changes
from linkviz.tuning import UnitStats
from linkviz.worlds.toy.shortcut import (
    band_distance,
    border_mask,
    region_hue,
    shortcut_rediscovery,
    sweep_hue_shift,
)
from linkviz.worlds.toy.truth import check_selective_units, estimated_changes

RED = (255, 40, 40)
AREA = ("disk", "area")


def planted_estimator(images: np.ndarray) -> np.ndarray:
    """True disk area for white disks but area decreasing with the true one for red disks (a planted error)."""
    disk = threshold_segmenter(images) == 1
    area = disk.sum(axis=(1, 2)).astype(np.float64)
    red = images[..., 1].max(axis=(1, 2)) < 128
    out = np.zeros((len(images), len(LABELS), len(METRICS)))
    out[:, 1, 0] = np.where(red, 1000.0 - area, area)
    out[:, 0, 0] = images.shape[1] * images.shape[2] - area
    return out


@pytest.fixture
def changes(tmp_path):
    # units 0 and 3 grow the disk, 1 shrinks it, 2 leaves it; unit 3's disk is red
    sweep = write_disk_sweep(tmp_path / "sweep", {0: 2.0, 1: -1.5, 2: 0.0, 3: 1.0}, colours={3: RED})
    table = sweep_changes(sweep, threshold_segmenter, LABELS, segmenter_id="threshold", progress=False)
    return sweep, table


def test_planted_estimator_gives_the_known_agreement(changes):
    sweep, table = changes
    check = check_selective_units(table, sweep, planted_estimator, LABELS,
                                  concepts=[(*AREA, "+"), (*AREA, "-")], top=5)
    units = check.to_frame()
    assert sorted(units.loc[units["sign"] == 1, "unit"]) == [0, 3]
    assert units.loc[units["sign"] == -1, "unit"].tolist() == [1]
    assert dict(zip(units["unit"], units["agrees"])) == {0: True, 3: False, 1: True}
    assert units.set_index("unit").loc[3, "seeds_agreeing"] == 0.0
    by_concept = check.by_concept().set_index("sign")
    assert by_concept.loc[1, "agreement"] == 0.5 and by_concept.loc[-1, "agreement"] == 1.0
    assert check.overall == pytest.approx(2 / 3)


def test_an_honest_estimator_agrees_everywhere(changes):
    sweep, table = changes

    def honest(images):
        out = planted_estimator(images)
        out[:, 1, 0] = (threshold_segmenter(images) == 1).sum(axis=(1, 2))
        return out

    check = check_selective_units(table, sweep, honest, LABELS, concepts=[(*AREA, 1), (*AREA, -1)], units_per_call=1)
    assert len(check.units) == 3 and check.overall == 1.0


def test_default_concepts_cover_the_table_and_nothing_reported_is_empty(changes):
    sweep, table = changes
    nothing = check_selective_units(table.frame[table.frame["unit"] == 2], sweep, planted_estimator, LABELS)
    assert nothing.units.empty and np.isnan(nothing.overall)
    every = check_selective_units(table, sweep, planted_estimator, LABELS, top=1)
    assert set(every.units["label"]) == {"disk"} and set(every.units["metric"]) <= set(METRICS)


def test_bad_estimator_output_and_unknown_labels_raise(changes):
    sweep, table = changes
    with pytest.raises(ValueError, match="estimator returned shape"):
        check_selective_units(table, sweep, lambda images: np.zeros((len(images), 2, 3)), LABELS,
                              concepts=[(*AREA, 1)])
    with pytest.raises(ValueError, match="not estimated"):
        check_selective_units(table, sweep, planted_estimator, ("background",), concepts=[(*AREA, 1)])


def test_estimated_changes_follow_the_pipeline_definitions():
    values = np.array([[10.0, 20.0, 40.0], [0.0, 0.0, 8.0]])
    reference = np.array([1, 0])
    np.testing.assert_allclose(estimated_changes(values, metric="area", step=2, reference_steps=reference,
                                                 area_floor=5.0), [1.0, 8.0 / 5.0])
    np.testing.assert_allclose(estimated_changes(values, metric="luminance", step=2, reference_steps=reference,
                                                 area_floor=5.0), [20.0 / 255.0, 8.0 / 255.0])
    angles = np.array([[89.0, -89.0]])
    np.testing.assert_allclose(estimated_changes(angles, metric="angle", step=1, reference_steps=np.array([0]),
                                                 area_floor=1.0), [2.0])


# --- shortcut ---------------------------------------------------------------------------------------------


def test_hue_measures_on_known_colours():
    colours = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 255], [128, 128, 128]], np.uint8)
    images = np.broadcast_to(colours[:, None, None, :], (4, 8, 8, 3)).copy()
    hue = region_hue(images, border_mask((8, 8), width=2))
    np.testing.assert_allclose(hue[:3], [0.0, 240.0, 180.0], atol=1e-6)
    assert np.isnan(hue[3])
    np.testing.assert_allclose(band_distance(np.array([10.0, 350.0, 230.0, 195.0]), (200.0, 260.0)),
                               [110.0, 90.0, 0.0, 5.0])
    assert np.isnan(band_distance(np.nan))
    with pytest.raises(ValueError, match="band"):
        band_distance(1.0, (260.0, 200.0))


@pytest.fixture
def fake_linked() -> LinkedModel:
    """The fake world (red, green, blue) with the exact identity link and two base examples per class."""
    r = np.array([[3.0, 1.5, 1.2], [2.8, 1.2, 1.4], [1.4, 3.2, 1.3], [1.2, 3.0, 1.5], [1.3, 1.5, 2.8],
                  [1.5, 1.3, 3.1]], np.float32)
    predicted = r.argmax(axis=1)
    pairs = PairSet(w=r.copy(), r=r, labels=predicted, predicted=predicted, accepted=np.ones(6, bool),
                    seeds=np.arange(6))
    return LinkedModel(classifier=fake_classifier(), generator=FakeGenerator(), link=identity_link(),
                       stats=UnitStats.from_activations(r), pairs=pairs, class_names=("red", "green", "blue"))


def test_counterfactuals_move_the_background_toward_and_away_from_the_shortcut_hue(fake_linked):
    def left_half_object(images):
        masks = np.zeros(images.shape[:3], np.int64)
        masks[:, :, :4] = 1
        return masks

    report = shortcut_rediscovery(fake_linked, left_half_object, ("background", "object"), shortcut_class="blue",
                                  band=(200.0, 260.0), examples_per_class=2, max_steps=200)
    examples = report.to_frame()
    assert (examples["direction"] == "toward").sum() == 4 and (examples["direction"] == "away").sum() == 2
    assert set(examples.loc[examples["direction"] == "away", "target"]) <= {"red", "green"}
    assert examples["success"].all()
    assert report.moved_rate("toward") == 1.0 and report.moved_rate("away") == 1.0
    toward = examples[examples["direction"] == "toward"]
    assert (toward["distance_after"] < toward["distance_before"]).all()
    assert report.background_rank("toward") <= 3
    assert report.background_rank("toward", metric="hue_distance") >= report.background_rank("toward")
    top = report.top_concepts("toward", top=3)
    assert len(top) == 3 and top["rank"].tolist() == [1, 2, 3]
    assert "hue_distance" in set(report.concepts["metric"])


def test_the_minimal_search_moves_the_background_toward_the_shortcut_hue_too(fake_linked):
    report = shortcut_rediscovery(fake_linked, None, shortcut_class="blue", band=(200.0, 260.0),
                                  examples_per_class=2, max_steps=200, border=2, search="minimal",
                                  target_probability=0.6)
    examples = report.to_frame()
    assert examples["success"].all() and report.moved_rate("toward") == 1.0 and report.moved_rate("away") == 1.0
    with pytest.raises(ValueError, match="search must be"):
        shortcut_rediscovery(fake_linked, None, shortcut_class="blue", search="random")


def test_without_a_segmenter_the_border_ring_is_the_background(fake_linked):
    report = shortcut_rediscovery(fake_linked, None, shortcut_class="blue", band=(200.0, 260.0),
                                  examples_per_class=1, max_steps=200, border=2)
    assert report.concepts.empty and report.moved_rate("toward") == 1.0
    assert np.isnan(report.background_rank("toward"))
    with pytest.raises(ValueError, match="shortcut class"):
        shortcut_rediscovery(fake_linked, None, shortcut_class="tree")


def test_sweep_hue_shift_finds_the_unit_that_turns_the_background_blue(tmp_path):
    # on a red background, unit 0's blue disk grows over the whole image at the last step; unit 1's stays small
    sweep = write_disk_sweep(tmp_path / "blue", {0: 12.0, 1: 0.0}, colours={0: (40, 40, 255), 1: (40, 40, 255)},
                             base_radius=2.0, background=(200, 60, 60))
    shifts = sweep_hue_shift(sweep, band=(200.0, 260.0), border=2)
    assert shifts["unit"].tolist() == [0, 1]
    first = shifts.iloc[0]
    assert first["distance_after"] == 0.0 and first["share_toward"] == 1.0
    with pytest.raises(ValueError, match="step"):
        sweep_hue_shift(sweep, step=9)
