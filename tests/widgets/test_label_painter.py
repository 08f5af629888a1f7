"""LabelPainter driven from Python: superpixel painting, undo, the brush buttons, save/load round trips, and
painted masks training the few-shot segmenter."""

from __future__ import annotations

import fake_images
import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

from linkviz.images import to_uint8
from linkviz.plotting.overlays import label_colors, to_hex
from linkviz.segmentation import generator_features, load_labels, predict_parts, train_few_shot
from linkviz.widgets import LabelPainter
from linkviz.worlds.toy.generator_net import ToyGenerator

LABELS = ("background", "ear", "eye")
images = fake_images.quadrant_images  # fixture shared with the controller tests


def test_paint_undo_and_clear_change_exactly_the_chosen_superpixels(images):
    painter = LabelPainter(images, label_names=LABELS, n_segments=16)
    segments = painter.superpixels(0)
    assert segments.shape == (24, 24) and segments.min() == 0 and len(np.unique(segments)) == segments.max() + 1
    assert (painter.masks == 0).all() and painter.masks.shape == (2, 24, 24)
    shown = painter.image.value
    corner, other = int(segments[0, 0]), int(segments[-1, -1])
    assert painter.paint(0, [corner], "ear") == (segments == corner).sum()
    np.testing.assert_array_equal(painter.masks[0], np.where(segments == corner, 1, 0))
    assert (painter.masks[1] == 0).all() and painter.image.value != shown and "ear" in painter.status.value
    assert painter.paint(0, [corner, other], 2) == (segments == corner).sum() + (segments == other).sum()
    assert painter.paint(0, [other], 2) == 0  # already painted
    assert painter.undo()
    np.testing.assert_array_equal(painter.masks[0], np.where(segments == corner, 1, 0))
    assert painter.clear(0, "eye") == 24 * 24 and (painter.masks[0] == 2).all()
    assert painter.undo() and painter.undo() and (painter.masks == 0).all()
    assert not painter.undo() and painter.status.value == "nothing to undo"  # the no-op paint left no step
    with pytest.raises(IndexError, match="out of range for image 0"):
        painter.paint(0, [segments.max() + 1], "ear")
    with pytest.raises(ValueError, match="unknown label"):
        painter.paint(0, [0], "nose")
    with pytest.raises(IndexError, match="image 2"):
        painter.paint(2, [0], 1)
    with pytest.raises(ValueError, match="distinct"):
        LabelPainter(images, label_names=("a", "a"))
    with pytest.raises(ValueError, match="outside"):
        LabelPainter(images, label_names=LABELS, masks=np.full((2, 24, 24), 3))


def test_brush_buttons_paint_the_chosen_label_and_show_its_colour(images):
    painter = LabelPainter(images, label_names=LABELS, n_segments=16)
    segments = painter.superpixels(0)
    buttons = painter.brush.children
    assert sorted(int(b.description) for b in buttons) == list(range(segments.max() + 1))
    cells = {(b.layout.grid_row, b.layout.grid_column) for b in buttons}
    assert len(cells) == len(buttons)  # one grid cell each
    painter.current_label.value = 2
    button = next(b for b in buttons if b.description == str(segments[-1, -1]))
    button.click()
    assert (painter.masks[0][segments == segments[-1, -1]] == 2).all()
    assert button.style.button_color == to_hex(label_colors(3)[2])
    painter.current_label.value = 1
    painter.ids.value = "0, 1-2"
    painter.paint_button.click()
    assert all((painter.masks[0][segments == i] == 1).all() for i in (0, 1, 2)) and painter.error.value == ""
    painter.ids.value = "0, x"
    painter.paint_button.click()
    assert "ranges like" in painter.error.value
    painter.ids.value = "999"
    painter.paint_button.click()
    assert "out of range" in painter.error.value
    painted = painter.masks
    painter.picker.value = 1
    assert int(painter.brush.children[0].description) in np.unique(painter.superpixels(1))
    painter.n_segments.value = 6
    assert len(painter.brush.children) == painter.superpixels(1).max() + 1 < len(buttons)
    np.testing.assert_array_equal(painter.masks, painted)  # masks are pixels: a new brush size keeps them
    painter.undo_button.click()
    assert (painter.masks[0][segments == 1] == 0).all()


def test_saved_labels_round_trip_exactly_and_load_restores_them(images, tmp_path):
    painter = LabelPainter(images, label_names=LABELS, names=("seed0", "seed7"), n_segments=16,
                           directory=tmp_path / "labels")
    rng = np.random.default_rng(1)
    for index in (0, 1):
        ids = np.unique(painter.superpixels(index))
        for label in (1, 2):
            painter.paint(index, rng.choice(ids, size=3, replace=False), label)
    painter.save_button.click()
    saved = load_labels(tmp_path / "labels")
    np.testing.assert_array_equal(saved.masks, painter.masks)
    assert saved.label_names == LABELS and saved.names == ("seed0", "seed7") and saved.masks.dtype == np.int64
    assert "saved 2 label maps" in painter.status.value

    fresh = LabelPainter(images, label_names=LABELS, names=("seed0", "seed7"))
    fresh.load(tmp_path / "labels")
    np.testing.assert_array_equal(fresh.masks, painter.masks)
    assert fresh.undo() and (fresh.masks == 0).all()  # one undo step reverts the whole load
    restored = LabelPainter.from_directory(images, tmp_path / "labels")
    np.testing.assert_array_equal(restored.masks, painter.masks)
    assert restored.names == ("seed0", "seed7") and not restored.undo()

    other = LabelPainter(images, label_names=("background", "cap"), names=("seed0", "seed7"))
    with pytest.raises(ValueError, match="this painter paints"):
        other.load(tmp_path / "labels")
    renamed = LabelPainter(images, label_names=LABELS)
    with pytest.raises(ValueError, match="does not show"):
        renamed.load(tmp_path / "labels")
    renamed.directory.value = ""
    renamed.load_button.click()
    assert "name a folder" in renamed.error.value



def test_the_save_button_shows_a_label_set_conflict_and_overwrites_once_ticked(images, tmp_path):
    LabelPainter(images, label_names=("background", "cap"), names=("a", "b")).save(tmp_path)
    painter = LabelPainter(images, label_names=LABELS, names=("a", "c"), n_segments=16, directory=tmp_path)
    painter.paint(0, [0], "eye")
    painter.save_button.click()
    assert "LabelSetConflictError" in painter.error.value and str(tmp_path) in painter.error.value
    assert "overwrite" in painter.error.value and load_labels(tmp_path).label_names == ("background", "cap")
    painter.overwrite.value = True
    painter.save_button.click()
    saved = load_labels(tmp_path)
    assert saved.label_names == LABELS and saved.names == ("a", "c") and not (tmp_path / "b.png").exists()
    np.testing.assert_array_equal(saved.masks, painter.masks)
    assert painter.error.value == "" and not painter.overwrite.value and "saved 2 label maps" in painter.status.value

def test_static_snapshot(images):
    bundle = LabelPainter(images, label_names=LABELS)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith('<img src="data:image/png;base64,') and "superpixels" in bundle["text/html"]


def test_painted_masks_train_the_few_shot_segmenter(tmp_path):
    """Paint dark and bright superpixels of three generated images, save, load, train, predict."""
    torch.manual_seed(0)
    generator = ToyGenerator().eval()
    ws = torch.randn(3, generator.num_ws, generator.w_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        images = to_uint8(generator.synthesis(ws).numpy())[:, ::2, ::2]  # 32 x 32: a fast test
    painter = LabelPainter(images, label_names=("background", "dark", "bright"), n_segments=24)
    for index, image in enumerate(painter.images):
        segments = painter.superpixels(index)
        grey = np.bincount(segments.ravel(), weights=image.mean(axis=2).ravel()) / np.bincount(segments.ravel())
        low, high = np.quantile(grey, [1 / 3, 2 / 3])
        painter.paint(index, np.flatnonzero(grey <= low), "dark")
        painter.paint(index, np.flatnonzero(grey >= high), "bright")
    painter.save(tmp_path)
    labels = load_labels(tmp_path)
    assert labels.masks.shape == (3, 32, 32) and set(np.unique(labels.masks)) == {0, 1, 2}

    layer = generator.synthesis_layer_names()[-1]  # the highest-resolution block: few channels, a fast test
    features = generator_features(generator, ws, layers=[layer], resolution=32)
    segmenter = train_few_shot(features[:2], labels.masks[:2], n_classes=3, epochs=25, seed=0)
    predicted = predict_parts(segmenter, features).numpy()
    assert predicted.shape == (3, 32, 32) and predicted.dtype == np.int64
    accuracy = (predicted[:2] == labels.masks[:2]).mean()
    majority = np.bincount(labels.masks[:2].ravel()).max() / labels.masks[:2].size
    assert accuracy > max(0.7, majority + 0.2)
