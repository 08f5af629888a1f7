"""Small images of known content, shared by the label painting controller and painter widget tests.

A test module binds the fixture to the name its tests ask for (``images = fake_images.quadrant_images``).
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def quadrant_images() -> np.ndarray:
    """Two 24 x 24 images of four flat quadrants in different colours (the second flipped upside down), plus a
    little noise."""
    rng = np.random.default_rng(0)
    quadrants = np.array([[(200, 40, 40), (40, 200, 40)], [(40, 40, 200), (220, 220, 60)]], np.float64)
    base = np.kron(quadrants, np.ones((12, 12, 1)))
    return np.stack([np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8),
                     np.clip(base[::-1] + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)])
