"""Few-shot segmenter: architecture facts, learning a problem whose features encode the masks, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.segmentation import PartSegmenter, mean_iou, predict_parts, train_few_shot

N_CLASSES = 4


def test_architecture_follows_the_reference():
    segmenter = PartSegmenter(10, N_CLASSES)
    convs = [m for m in segmenter.net if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 64, 64, 32, N_CLASSES]
    assert [c.dilation[0] for c in convs] == [1, 2, 1, 2, 1]
    assert all(c.kernel_size == (3, 3) for c in convs)
    activations = [m for m in segmenter.net if isinstance(m, nn.LeakyReLU)]
    assert len(activations) == 4 and all(a.negative_slope == 0.2 for a in activations)
    assert isinstance(segmenter.net[-1], nn.Conv2d)                      # no activation after the logits
    assert segmenter(torch.zeros(2, 10, 12, 12)).shape == (2, N_CLASSES, 12, 12)


def test_learns_masks_encoded_in_the_features_from_three_images(blob_masks, encoded_features):
    masks = blob_masks(13, size=48, n_classes=N_CLASSES, seed=0)
    features = encoded_features(masks, n_classes=N_CLASSES, noise=0.2, extra_channels=4, seed=1)
    segmenter = train_few_shot(features[:3], masks[:3], n_classes=N_CLASSES, epochs=30, seed=0)
    predicted = predict_parts(segmenter, features[3:])
    assert predicted.shape == (10, 48, 48) and predicted.dtype == torch.int64
    miou, _ = mean_iou(predicted, masks[3:], n_classes=N_CLASSES)
    assert miou > 0.9


def test_training_is_seeded_and_leaves_the_global_rng_alone(blob_masks, encoded_features):
    masks = blob_masks(1, size=8, n_classes=N_CLASSES, seed=0)
    features = encoded_features(masks, n_classes=N_CLASSES, noise=0.1, extra_channels=0, seed=1)
    state = torch.get_rng_state()
    first = train_few_shot(features, masks, n_classes=N_CLASSES, epochs=2, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = train_few_shot(features, torch.from_numpy(masks), n_classes=N_CLASSES, epochs=2, seed=3)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert not first.training


def test_bad_input_raises(blob_masks, encoded_features):
    masks = blob_masks(2, size=8, n_classes=N_CLASSES, seed=0)
    features = encoded_features(masks, n_classes=N_CLASSES, noise=0.1, extra_channels=0, seed=1)
    with pytest.raises(ValueError, match=r"label ids \[4\] outside \[0, 4\)"):
        train_few_shot(features, np.full_like(masks, 4), n_classes=N_CLASSES, epochs=1)
    with pytest.raises(ValueError, match="resolution"):
        train_few_shot(features, masks[:, :4, :4], n_classes=N_CLASSES, epochs=1)
    with pytest.raises(ValueError, match="same N"):
        train_few_shot(features[:1], masks, n_classes=N_CLASSES, epochs=1)
    with pytest.raises(ValueError, match="integer label maps"):
        train_few_shot(features, masks.astype(np.float32), n_classes=N_CLASSES, epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        train_few_shot(features * float("nan"), masks, n_classes=N_CLASSES, epochs=1)
    segmenter = PartSegmenter(features.shape[1], N_CLASSES)
    with pytest.raises(ValueError, match=r"expected features \[N, 4, R, R\]"):
        predict_parts(segmenter, features[:, :2])
