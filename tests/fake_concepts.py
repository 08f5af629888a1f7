"""A concept segmenter for the fake world, shared by the label tests: concept c is where channel c is bright."""

from __future__ import annotations

import numpy as np
import torch

CHANNELS = ("red", "green", "blue")


class ChannelSegmenter:
    """Concept c is where channel c is brighter than ``level`` (the fake generator paints each channel evenly)."""

    labels = CHANNELS

    def __init__(self, level: int = 191) -> None:
        self.level = level
        self.identity = f"channels>{level}"
        self.calls = 0

    def __call__(self, images: np.ndarray, w: torch.Tensor) -> np.ndarray:
        self.calls += 1
        return np.moveaxis(images > self.level, -1, 1)
