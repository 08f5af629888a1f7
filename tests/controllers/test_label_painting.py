"""LabelPainting without ipywidgets: painting superpixels, undo, views, save/load, the brush layout."""

from __future__ import annotations

import fake_images
import numpy as np
import pytest
from matplotlib.figure import Figure

from linkviz.controllers import LabelPainting, PaintingView, parse_ids
from linkviz.controllers.label_painting import brush_layout
from linkviz.plotting.overlays import label_colors
from linkviz.segmentation import load_labels
from linkviz.segmentation.labels_io import LabelSetConflictError

LABELS = ("background", "ear", "eye")
images = fake_images.quadrant_images  # fixture shared with the widget tests


def test_parse_ids():
    assert parse_ids("3, 7 12-14") == [3, 7, 12, 13, 14] and parse_ids("") == [] and parse_ids("  ") == []
    with pytest.raises(ValueError, match="ranges like"):
        parse_ids("3-x")
    with pytest.raises(ValueError, match="ranges like"):
        parse_ids("3, x")


def test_superpixels_follow_the_quadrants_and_paint_changes_exactly_them(images):
    painting = LabelPainting(images, label_names=LABELS, n_segments=16)
    segments = painting.superpixels(0)
    assert segments.shape == (24, 24) and len(np.unique(segments)) == segments.max() + 1
    # flat quadrants: no superpixel straddles two of them
    quadrant = (np.arange(24)[:, None] // 12) * 2 + np.arange(24)[None, :] // 12
    assert all(len(np.unique(quadrant[segments == s])) == 1 for s in np.unique(segments))
    top_left = np.unique(segments[:12, :12])
    assert painting.paint(0, top_left, "ear") == 144
    expected = np.zeros((2, 24, 24), np.int64)
    expected[0, :12, :12] = 1
    np.testing.assert_array_equal(painting.masks, expected)
    assert painting.paint(0, top_left, 1) == 0 and painting.clear(1) == 0  # no-ops leave no undo step
    assert painting.clear(1, "eye") == 576 and (painting.masks[1] == 2).all()
    assert painting.undo() and (painting.masks[1] == 0).all()
    assert painting.undo() and (painting.masks == 0).all() and not painting.can_undo and not painting.undo()
    with pytest.raises(IndexError, match="out of range for image 0"):
        painting.paint(0, [segments.max() + 1], "ear")
    with pytest.raises(ValueError, match="unknown label"):
        painting.paint(0, [0], "nose")
    with pytest.raises(ValueError, match="label id 3 out of range"):
        painting.paint(0, [0], 3)
    with pytest.raises(IndexError, match="image 2"):
        painting.superpixels(2)


def test_view_table_and_figure(images, axis_labels):
    painting = LabelPainting(images, label_names=LABELS, names=("a", "b"), n_segments=16)
    segments = painting.superpixels(1)
    bottom = np.unique(segments[12:])
    painting.paint(1, bottom, "eye")
    view = painting.view(1, selected=[0, 999], action="painted")
    assert isinstance(view, PaintingView) and view.name == "b" and view.selected == (0,)
    zoom = 320 // 24
    assert painting.zoom == zoom and view.grid.shape == (24 * zoom, 24 * zoom, 3) and view.grid.dtype == np.uint8
    assert "image <b>b</b>: background 50%, eye 50%; " in view.caption_html and view.caption.endswith("painted")
    majority = np.zeros(segments.max() + 1, np.int64)
    majority[bottom] = 2
    np.testing.assert_array_equal(view.majority, majority)
    # the painted half is tinted with the colour of "eye"
    colour = label_colors(3)[2].astype(int)
    tinted = view.grid[20 * zoom + zoom // 2, 2 * zoom + zoom // 2].astype(int)
    plain = painting.images[1, 20, 2].astype(int)
    assert np.abs(tinted - colour).sum() < np.abs(plain - colour).sum()

    frame = view.to_frame()
    assert frame.label.tolist() == list(LABELS) and frame.pixels.tolist() == [288, 0, 288]
    assert frame.share.sum() == pytest.approx(1.0) and set(frame.image) == {"b"}
    figure = view.figure()
    assert isinstance(figure, Figure) and figure.get_suptitle() == "image b"
    assert axis_labels(figure) == (["b"], [f"{segments.max() + 1} superpixels"])
    assert "background" in painting.legend_html() and 'color:#' in painting.legend_html()


def test_a_new_brush_size_keeps_the_painted_pixels(images):
    painting = LabelPainting(images, label_names=LABELS, n_segments=16)
    painting.paint(0, [0, 1], 1)
    painted, before = painting.masks, painting.superpixels(0).max()
    painting.n_segments = 4
    assert painting.n_segments == 4 and painting.superpixels(0).max() < before
    np.testing.assert_array_equal(painting.masks, painted)


def test_brush_layout_gives_every_superpixel_its_own_cell(images):
    segments = LabelPainting(images, label_names=LABELS, n_segments=16).superpixels(0)
    rows, cols, positions = brush_layout(segments)
    assert sorted(positions) == list(range(segments.max() + 1))
    assert len(set(positions.values())) == len(positions) and all(0 <= r < rows and 0 <= c < cols
                                                                   for r, c in positions.values())
    # the top-left superpixel sits in the top-left half of the grid
    row, col = positions[int(segments[0, 0])]
    assert row < rows / 2 and col < cols / 2


def test_save_load_round_trip_and_checks(images, tmp_path):
    painting = LabelPainting(images, label_names=LABELS, names=("seed0", "seed7"), n_segments=16)
    painting.paint(0, [0, 2], "ear")
    painting.paint(1, [1], "eye")
    paths = painting.save(tmp_path)
    assert [p.name for p in paths] == ["seed0.png", "seed7.png"]
    saved = load_labels(tmp_path)
    np.testing.assert_array_equal(saved.masks, painting.masks)
    fresh = LabelPainting(images, label_names=LABELS, names=("seed0", "seed7"))
    assert len(fresh.load(tmp_path)) == 2
    np.testing.assert_array_equal(fresh.masks, painting.masks)
    assert fresh.undo() and (fresh.masks == 0).all()  # one undo step reverts the whole load
    restored = LabelPainting.from_directory(images, tmp_path)
    np.testing.assert_array_equal(restored.masks, painting.masks)
    assert restored.names == ("seed0", "seed7") and not restored.can_undo
    with pytest.raises(ValueError, match="this painter paints"):
        LabelPainting(images, label_names=("background", "cap"), names=("seed0", "seed7")).load(tmp_path)
    with pytest.raises(ValueError, match="does not show"):
        LabelPainting(images, label_names=LABELS).load(tmp_path)
    with pytest.raises(ValueError, match="distinct"):
        LabelPainting(images, label_names=("a", "a"))
    with pytest.raises(ValueError, match="between 2 and 256"):
        LabelPainting(images, label_names=("background",))
    with pytest.raises(ValueError, match="outside"):
        LabelPainting(images, label_names=LABELS, masks=np.full((2, 24, 24), 3))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        LabelPainting(images[0], label_names=LABELS)


def test_save_refuses_a_folder_with_another_label_set_unless_told_to_overwrite(images, tmp_path):
    houses = LabelPainting(images, label_names=("background", "wall", "roof"), names=("house0", "house1"))
    houses.save(tmp_path)
    painting = LabelPainting(images, label_names=LABELS, names=("seed0", "house1"), n_segments=16)
    painting.paint(0, [0], "ear")
    with pytest.raises(LabelSetConflictError, match=r"\['background', 'wall', 'roof'\], not \['background', "
                                                    r"'ear', 'eye'\]"):
        painting.save(tmp_path)
    assert load_labels(tmp_path).label_names == houses.label_names
    painting.save(tmp_path, overwrite=True)
    saved = load_labels(tmp_path)
    assert saved.label_names == LABELS and saved.names == ("seed0", "house1")
    np.testing.assert_array_equal(saved.masks, painting.masks)
    assert not (tmp_path / "house0.png").exists()  # the old set's orphan is gone
    painting.paint(1, [0], "eye")
    painting.save(tmp_path)  # the same label set: updated in place
    np.testing.assert_array_equal(load_labels(tmp_path).masks, painting.masks)
