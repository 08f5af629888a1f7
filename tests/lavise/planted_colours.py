"""The planted colour world of the LaViSE tests (the fixtures in conftest.py wrap it).

The planted world: 16x16 images with two 4x4 squares of six colours on a dark background; a "model" whose
three units read the red, green and blue channels (1x1 identity convolution, ReLU, 2x2 average pool to 8x8);
and a semantic space whose colour words are the colours' RGB vectors, rotated into three of eight dimensions,
plus distractor words in the other five. Primary-coloured squares are the brightest, so each unit's top images
show its primary colour.
"""

from __future__ import annotations

import numpy as np
from fake_dissection import colour_model
from torch import nn

from linkviz.dissection import ProbeDataset
from linkviz.lavise import SemanticSpace

PALETTE = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "cyan": (0, 1, 1),
           "magenta": (1, 0, 1)}
COLOURS = tuple(PALETTE)
N_DISTRACTORS = 14


def make_planted_probe(n_images: int = 48, seed: int = 0) -> ProbeDataset:
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 0.04, (n_images, 16, 16, 3))
    labels = np.zeros((n_images, 1, 16, 16), np.int64)
    for i in range(n_images):
        colours = rng.choice(len(COLOURS), 2, replace=False)
        slots = rng.choice(4, 2, replace=False)  # quadrants, so squares never overlap
        for colour, slot in zip(colours, slots):
            top = 8 * (slot // 2) + 2 * rng.integers(0, 3)
            left = 8 * (slot % 2) + 2 * rng.integers(0, 3)
            brightness = rng.uniform(0.8, 0.95) if colour < 3 else rng.uniform(0.4, 0.7)
            rgb = np.array(PALETTE[COLOURS[colour]]) * brightness
            images[i, top:top + 4, left:left + 4] = rgb + rng.uniform(0, 0.04, (4, 4, 3))
            labels[i, 0, top:top + 4, left:left + 4] = colour + 1
    return ProbeDataset(images=np.round(images.clip(0, 1) * 255).astype(np.uint8),
                        label_names=("-",) + tuple(f"{c}-c" for c in COLOURS), categories=("color",),
                        pixel_labels={"color": labels})


def make_planted_model() -> nn.Sequential:
    """The colour model of :mod:`fake_dissection`: units 0, 1, 2 read the red, green and blue channels."""
    return colour_model()


def make_planted_space(seed: int = 0, dim: int = 8) -> SemanticSpace:
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    vectors = np.zeros((len(COLOURS) + N_DISTRACTORS, dim))
    vectors[:len(COLOURS), :3] = np.array([PALETTE[c] for c in COLOURS], float) @ rotation.T
    vectors[len(COLOURS):, 3:] = rng.normal(size=(N_DISTRACTORS, dim - 3))
    words = COLOURS + tuple(f"distractor{i}" for i in range(N_DISTRACTORS))
    return SemanticSpace(words, vectors, name="planted")
