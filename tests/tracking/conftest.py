"""Synthetic image pairs with known motion (shifts, affine maps, a local radial warp) for the tracking tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import data
from skimage.transform import AffineTransform, resize, warp

SIZE = 96
PAD = 16
BUMP_SIGMA = 12.0


def smooth_texture(size: int, *, seed: int, sigma: float = 1.5) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to [0, 1], shape (size, size)."""
    texture = ndi.gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), sigma)
    return (texture - texture.min()) / (texture.max() - texture.min())


def shifted_pair(shift: tuple[float, float], *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(reference, moving) crops of one texture, the moving content displaced by ``shift`` (row, col) pixels."""
    big = smooth_texture(SIZE + 2 * PAD, seed=seed)
    moved = ndi.shift(big, shift, order=3, mode="nearest")
    crop = (slice(PAD, PAD + SIZE), slice(PAD, PAD + SIZE))
    return big[crop], moved[crop]


def camera(size: int = SIZE) -> np.ndarray:
    return resize(data.camera() / 255.0, (size, size), anti_aliasing=True)


def centred_similarity(*, scale: float, rotation_deg: float, shift: tuple[float, float],
                       size: int = SIZE) -> AffineTransform:
    """Rotation and scale about the image centre, then ``shift`` (row, col); (col, row) convention."""
    centre = np.array([(size - 1) / 2, (size - 1) / 2])
    linear = AffineTransform(scale=scale, rotation=np.deg2rad(rotation_deg))
    return AffineTransform(matrix=(AffineTransform(translation=centre + np.array(shift)[::-1]).params
                                   @ linear.params @ AffineTransform(translation=-centre).params))


def _radial_bump(rows: np.ndarray, cols: np.ndarray, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    centre = (SIZE - 1) / 2
    d_row, d_col = rows - centre, cols - centre
    envelope = amplitude * np.exp(-(d_row ** 2 + d_col ** 2) / (2 * BUMP_SIGMA ** 2))
    return d_row * envelope, d_col * envelope


def bump_pair(amplitude: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A texture whose centre expands (amplitude > 0) or contracts (< 0) radially in a static surround.

    Returns (reference, moving, true_flow) with true_flow of shape (2, H, W), (row, col), on the reference grid:
    the forward displacement ``d`` solving ``d(x) = u(x + d(x))`` for the warp's inverse field ``u``.
    """
    reference = smooth_texture(SIZE, seed=seed)
    rows, cols = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    u_row, u_col = _radial_bump(rows, cols, amplitude)
    moving = warp(reference, np.array([rows - u_row, cols - u_col]), order=3, mode="reflect")
    d_row, d_col = np.zeros_like(rows), np.zeros_like(cols)
    for _ in range(50):
        d_row, d_col = _radial_bump(rows + d_row, cols + d_col, amplitude)
    return reference, moving, np.stack([d_row, d_col])


def centre_disk(radius: float = BUMP_SIGMA) -> np.ndarray:
    rows, cols = np.mgrid[:SIZE, :SIZE]
    return np.hypot(rows - (SIZE - 1) / 2, cols - (SIZE - 1) / 2) < radius


def endpoint_error(flow: np.ndarray, true_flow: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between flows of shape (2, H, W) (over ``mask`` if given)."""
    error = np.hypot(*(flow - true_flow))
    return float(error[mask].mean() if mask is not None else error.mean())


@pytest.fixture
def texture() -> np.ndarray:
    return smooth_texture(SIZE, seed=0)
