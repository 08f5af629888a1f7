"""Shared fixtures for the dissection tests: one thread, small synthetic probes, a per-unit loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

from linkviz.dissection import ProbeDataset


@pytest.fixture(scope="session")
def toy_probe():
    """Five toy-world images (one per class) with all five categories."""
    from linkviz.worlds.toy import build_toy_probe

    return build_toy_probe(1, seed=0)


@pytest.fixture
def small_probe() -> ProbeDataset:
    """Six random 8x8 images, 4x4 label maps: two color layers, one object layer, one scene label each."""
    rng = np.random.default_rng(0)
    names = ("-", "red-c", "blue-c", "cat", "dog", "kitchen-s", "beach-s")
    return ProbeDataset(
        images=rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), label_names=names,
        categories=("color", "object", "scene"),
        pixel_labels={"color": rng.integers(0, 3, (6, 2, 4, 4)),
                      "object": np.where(rng.random((6, 1, 4, 4)) < 0.5, rng.integers(3, 5, (6, 1, 4, 4)), 0)},
        image_labels={"scene": rng.integers(5, 7, (6, 1))},
    )


def _loop_tally(activations, thresholds, pixel, image, label_category, n_categories, mode):
    """Reference-style tally: one image and one unit at a time (what NetDissect does), for cross-checks."""
    n, n_units = activations.shape[:2]
    n_labels = len(label_category)
    sh, sw = pixel.shape[2:] if pixel is not None else (activations.shape[2], activations.shape[3])
    pixels = sh * sw
    intersection = np.zeros((n_units, n_labels))
    activation = np.zeros((n_units, n_categories))
    truth = np.zeros(n_labels)
    for i in range(n):
        layers = [] if pixel is None else list(pixel[i])
        scalars = [] if image is None else [int(v) for v in image[i] if v]
        for layer in layers:
            truth += np.bincount(layer.ravel(), minlength=n_labels)
        for label in scalars:
            truth[label] += pixels
        in_image = set(np.unique(np.concatenate([lay.ravel() for lay in layers] + [np.array(scalars, int)])))
        present = {int(label_category[v]) for v in in_image if v and label_category[v] >= 0}
        scalar_categories = {int(label_category[v]) for v in scalars if label_category[v] >= 0}
        for u in range(n_units):
            up = F.interpolate(activations[i:i + 1, u:u + 1].float(), size=(sh, sw), mode="bilinear",
                               align_corners=False)[0, 0]
            mask = (up.double() > float(thresholds[u])).numpy()
            count = mask.sum()
            if not count:
                continue
            for layer in layers:
                intersection[u] += np.bincount(layer[mask], minlength=n_labels)
            for label in scalars:
                intersection[u, label] += count
            if mode == "lite":
                overlap = {int(label_category[v]) for lay in layers for v in np.unique(lay[mask])
                           if v and label_category[v] >= 0}
                present = overlap | scalar_categories
            for k in present:
                activation[u, k] += count
    truth[0] = 0
    intersection[:, label_category < 0] = 0
    return intersection, activation, truth


@pytest.fixture
def loop_tally():
    return _loop_tally
