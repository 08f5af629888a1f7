"""The reference segmenter learns the renderer's part masks of a tiny render set."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.segmentation import RenderSegmenter, mean_iou, segment_images, train_render_segmenter
from linkviz.worlds.toy import CLASS_NAMES, PART_NAMES, render, sample_factors

RESOLUTION = 32
CLASSES = ("mushroom", "tree")          # parts: background, stem, cap, crown


def _renders(per_class: int, *, seed: int):
    labels = np.repeat([CLASS_NAMES.index(name) for name in CLASSES], per_class)
    return render(sample_factors(labels, seed=seed), resolution=RESOLUTION)


def test_learns_rendered_part_masks():
    train, test = _renders(40, seed=0), _renders(10, seed=1)
    model = train_render_segmenter(train.images, train.part_masks, n_classes=len(PART_NAMES), epochs=25, width=8,
                                   seed=0)
    assert not model.training
    predicted = segment_images(model, test.images)
    assert predicted.shape == (20, RESOLUTION, RESOLUTION) and predicted.dtype == np.int64
    miou, per_class = mean_iou(predicted, test.part_masks, n_classes=len(PART_NAMES))
    assert miou > 0.5
    assert per_class[PART_NAMES.index("background")] > 0.9
    assert np.isnan(per_class[PART_NAMES.index("roof")])      # no houses in the set: left out, not scored 0


def test_bad_input_raises():
    images = np.zeros((2, 16, 16, 3), np.uint8)
    masks = np.zeros((2, 16, 16), np.int64)
    with pytest.raises(ValueError, match="uint8 RGB"):
        train_render_segmenter(images.astype(np.float32), masks, n_classes=3, epochs=1)
    with pytest.raises(ValueError, match=r"label ids \[3\]"):
        train_render_segmenter(images, masks + 3, n_classes=3, epochs=1)
    with pytest.raises(ValueError, match="same N"):
        train_render_segmenter(images[:1], masks, n_classes=3, epochs=1)
    with pytest.raises(ValueError, match="divisible by 4"):
        segment_images(RenderSegmenter(3, width=2), np.zeros((1, 18, 18, 3), np.uint8))
