"""Shared fixtures for the segmentation tests: one CPU thread, and synthetic label maps of known layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)


def _blob_masks(n: int, *, size: int, n_classes: int, seed: int) -> np.ndarray:
    """Label maps [n, size, size]: background 0 with one random axis-aligned rectangle per class 1..n_classes-1.

    Later classes are drawn over earlier ones, so every map holds background and at least the last class.
    """
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.int64)
    for i in range(n):
        for label in range(1, n_classes):
            height, width = rng.integers(size // 3, 2 * size // 3, size=2)
            top, left = rng.integers(0, size - height), rng.integers(0, size - width)
            masks[i, top:top + height, left:left + width] = label
    return masks


def _encoded_features(masks: np.ndarray, *, n_classes: int, noise: float, extra_channels: int, seed: int
                     ) -> torch.Tensor:
    """Features [n, n_classes + extra_channels, R, R] that trivially encode the masks: one-hot + Gaussian noise."""
    generator = torch.Generator().manual_seed(seed)
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(masks), n_classes).permute(0, 3, 1, 2).float()
    distractors = torch.zeros(len(masks), extra_channels, *masks.shape[1:])
    features = torch.cat([one_hot, distractors], 1)
    return features + noise * torch.randn(features.shape, generator=generator)


@pytest.fixture
def blob_masks():
    """``blob_masks(n, *, size, n_classes, seed)`` -> int64 label maps [n, size, size] of random rectangles."""
    return _blob_masks


@pytest.fixture
def encoded_features():
    """``encoded_features(masks, *, n_classes, noise, extra_channels, seed)`` -> one-hot masks + noise."""
    return _encoded_features
