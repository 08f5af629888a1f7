"""UnitTuning without ipywidgets: the tuned images, overlays, table and figure of the fake world's known link.

With the identity link w = r, setting unit c to v paints channel c of every tuned image with tanh(v / 4) and
leaves the other channels as in the linked reconstruction of the seed, which is the top row.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from linkviz.controllers import UnitTuning
from linkviz.images import to_uint8
from linkviz.tracking import direction_legend, strongest_motions


def _paint(latent: float) -> int:
    """The fake generator's uint8 value of a channel whose latent is ``latent``."""
    return int(to_uint8(np.tanh(np.array([latent / 4]))).item())


def test_the_tuned_row_paints_the_unit_with_its_known_value(identity_linked):
    tuning = UnitTuning(identity_linked)
    view = tuning.compute(1, 3.0, (0, 2))
    assert (view.rows, view.columns, view.unit, view.value, view.seeds) == (2, 2, 1, 3.0, (0, 2))
    assert view.row_labels == ("linked G(Ar+b)", "tuned") and view.column_labels == ("seed 0", "seed 2")
    assert view.grid.shape == ((2 * 8 + 1) * 16, (2 * 8 + 1) * 16, 3)  # 8-px tiles, 1-px gap, zoomed 16x
    expected = to_uint8(np.tanh(np.array([3.0 / 4]))).item()
    for column, seed in enumerate((0, 2)):
        tuned, original = view.tuned_images[column], view.original_images[column]
        assert np.abs(tuned[..., 1].astype(int) - expected).max() <= 1
        r = identity_linked.pairs.r[seed]
        for channel in (0, 2):  # the other units keep the seed's r: w~ = r under the identity link
            assert np.abs(tuned[..., channel].astype(int) - _paint(r[channel])).max() <= 1
        assert np.abs(original.astype(int) - np.array([_paint(v) for v in r])).max() <= 1  # G(A r + b), not G(w)


def test_parts_and_arrows_fill_the_table(identity_linked):
    def green_parts(images):  # part 1 where the green channel is bright, else background
        return (np.asarray(images)[..., 1] > 127).astype(np.int64)

    tuning = UnitTuning(identity_linked, segmenter=green_parts, part_labels=("background", "green"))
    bright = tuning.compute(1, 8.0, (0,), parts=True, arrows=True)
    dark = tuning.compute(1, -8.0, (0,), parts=True)
    assert bright.rows == 3 and bright.row_labels == ("linked G(Ar+b)", "tuned", "flow") and len(bright.fields) == 1
    table = bright.to_frame()
    assert set(table.columns) >= {"unit", "value", "seed", "part", "original_pixels", "tuned_pixels",
                                  "mean_flow_magnitude", "reliable_fraction"}
    green = table[table.part == 1]
    assert green.tuned_pixels.item() == 64  # tanh(2) -> the whole 8x8 tile is bright green
    assert dark.to_frame().query("part == 1").tuned_pixels.sum() == 0
    assert "green" in bright.caption and "<" not in bright.caption  # plain text of the HTML legend


def test_figure_shows_the_labelled_grid(identity_linked):
    view = UnitTuning(identity_linked).compute(0, 1.0, (0, 1, 2))
    figure = view.figure()
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["seed 0", "seed 1", "seed 2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["linked", "tuned"]


def test_bad_choices_are_refused_with_a_reason(identity_linked):
    tuning = UnitTuning(identity_linked)
    with pytest.raises(IndexError, match="unit 7 out of range"):
        tuning.compute(7, 1.0, (0,))
    with pytest.raises(IndexError, match=r"seeds \[99\] out of range"):
        tuning.compute(0, 1.0, (99,))
    with pytest.raises(ValueError, match="unit numbers must be integers"):
        tuning.compute(0, 1.0, (1.9,))  # not seed 1
    with pytest.raises(ValueError, match="unit numbers must be integers"):
        tuning.compute(1.7, 1.0, (0,))  # not unit 1
    with pytest.raises(ValueError, match="needs a segmenter"):
        tuning.compute(0, 1.0, (0,), parts=True)
    with pytest.raises(ValueError, match="segment_from"):
        UnitTuning(identity_linked, segment_from="pixels")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -np.inf, np.float32("nan")])
def test_a_non_finite_value_is_refused_not_drawn_black(identity_linked, value):
    tuning = UnitTuning(identity_linked)
    with pytest.raises(ValueError, match=r"value must be a finite number; got .*(nan|inf).* for unit 1.*observed"):
        tuning.compute(1, value, (0,))


def test_a_value_that_is_not_a_number_is_refused(identity_linked):
    tuning = UnitTuning(identity_linked)
    with pytest.raises(TypeError, match=r"value must be a number to set unit 0 to; got '1\.5' \(str\)"):
        tuning.compute(0, "1.5", (0,))
    assert tuning.compute(0, np.float32(1.5), (0,)).value == 1.5 and tuning.compute(0, 2, (0,)).value == 2.0


def test_originals_are_rendered_once_per_seed_set(identity_linked):
    tuning = UnitTuning(identity_linked)
    tuning.compute(0, 1.0, (0, 1))
    calls = identity_linked.generator.calls
    tuning.compute(0, 2.0, (0, 1))
    assert identity_linked.generator.calls == calls + 1  # only the tuned images


def test_at_the_seeds_own_value_the_tuned_image_is_the_linked_one_and_nothing_moves(linked):
    """The top row is G(A r + b) of the seed's own r, so setting a unit to its own value changes nothing."""
    tuning = UnitTuning(linked)  # the fitted ridge link: G(A r + b) differs from the sampled G(w)
    for seed in (0, 5):
        r = linked.pairs.r[seed]
        reconstruction = linked.render(linked.link.predict(r[None]))
        assert not np.array_equal(reconstruction, linked.render(linked.pairs.w[[seed]]))
        view = tuning.compute(1, float(r[1]), (seed,), arrows=True)
        np.testing.assert_array_equal(view.original_images, reconstruction)
        np.testing.assert_array_equal(view.tuned_images, view.original_images)
        (field,) = view.fields
        assert np.abs(field.flow).max() == 0 and len(strongest_motions(field, step=2, quantile=0.0)) == 0
        assert "linked G(A r + b)" in view.caption


def test_default_seeds_span_the_classes_and_classes_choose_them(linked):
    tuning = UnitTuning(linked)
    view = tuning.compute(0, 1.0)
    predicted = linked.pairs.predicted
    assert view.seeds == linked.example_seeds(4) and len(set(predicted[list(view.seeds)])) == 3
    blue = tuning.compute(0, 1.0, classes=["blue"])
    assert len(blue.seeds) == 4 and set(predicted[list(blue.seeds)]) == {2}
    assert tuning.compute(0, 1.0, classes=[2, 0]).seeds == linked.example_seeds(4, classes=[2, 0])
    assert "blue" in blue.caption  # the seeds' classes are named
    with pytest.raises(ValueError, match="not both"):
        tuning.compute(0, 1.0, (0,), classes=["red"])
    assert tuning.compute(0, 1.0, (3, 1)).seeds == (3, 1)  # explicit seeds as given


def test_the_flow_row_carries_the_direction_wheel(identity_linked):
    view = UnitTuning(identity_linked).compute(1, 8.0, (0, 1), arrows=True)
    size = 128 // 4  # a quarter of the 128-px tile
    np.testing.assert_array_equal(view.grid[-size:, -size:], direction_legend(size))  # the last flow tile's corner
    assert "colour wheel" in view.caption


def test_without_a_background_id_part_0_is_tinted_and_listed(identity_linked):
    def two_clusters(images):  # k-means style: every id is a part, 0 included
        return (np.asarray(images)[..., 1] > 127).astype(np.int64)

    with_background = UnitTuning(identity_linked, segmenter=two_clusters, part_labels=("dim", "green"))
    clusters = UnitTuning(identity_linked, segmenter=two_clusters, part_labels=("dim", "green"), background=None)
    dim = with_background.compute(1, -8.0, (0,), parts=True)  # the whole tile is cluster 0
    tinted = clusters.compute(1, -8.0, (0,), parts=True)
    assert "dim" not in dim.caption and "dim" in tinted.caption
    assert not np.array_equal(dim.grid, tinted.grid)  # cluster 0 drawn with its colour, not as background


def test_the_legend_shows_the_segmenters_measured_iou(identity_linked):
    def green_parts(images):
        return (np.asarray(images)[..., 1] > 127).astype(np.int64)

    tuning = UnitTuning(identity_linked, segmenter=green_parts, part_labels=("background", "green"),
                        part_iou={"green": 0.875})
    assert "green (segmenter IoU 0.88)" in tuning.compute(1, 8.0, (0,), parts=True).caption
