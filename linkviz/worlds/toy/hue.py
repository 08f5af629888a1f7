"""Hues of image regions and their distance from a hue band: how the toy world's shortcut is measured on images.

Hue conventions: degrees in ``[0, 360)``; a region's hue is the saturation-weighted circular mean of its pixels'
hues (grey pixels carry no hue); the distance to a band ``(lo, hi)`` is 0 inside it, else the circular distance
to the nearer end.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2hsv

from linkviz.worlds.toy.factors import SKY_HUE

__all__ = ["band_distance", "border_mask", "region_hue"]


def band_distance(hue: np.ndarray | float, band: tuple[float, float] = SKY_HUE) -> np.ndarray:
    """Circular distance in degrees from hues to a hue band, 0 inside it; NaN stays NaN.

    Parameters
    ----------
    hue : float or ndarray
        Degrees (any range; taken modulo 360).
    band : (float, float)
        ``(lo, hi)`` with ``0 <= lo <= hi < 360``.

    Returns
    -------
    ndarray of float
        In ``[0, 180]``.
    """
    lo, hi = float(band[0]), float(band[1])
    if not 0.0 <= lo <= hi < 360.0:
        raise ValueError(f"band must be (lo, hi) with 0 <= lo <= hi < 360; got {band}")
    hue = np.mod(np.asarray(hue, dtype=np.float64), 360.0)

    def circular(a: np.ndarray, b: float) -> np.ndarray:
        d = np.abs(a - b) % 360.0
        return np.minimum(d, 360.0 - d)

    inside = (hue >= lo) & (hue <= hi)
    return np.where(inside, 0.0, np.minimum(circular(hue, lo), circular(hue, hi)))


def border_mask(shape: tuple[int, int], *, width: int = 4) -> np.ndarray:
    """The ring of ``width`` pixels along the image border, bool of shape ``shape`` (H, W)."""
    if width < 1 or 2 * width >= min(shape):
        raise ValueError(f"border width must be in [1, {min(shape) // 2}); got {width}")
    mask = np.ones(shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return mask


def region_hue(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Saturation-weighted circular mean hue of each image's masked pixels.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W, 3)
    masks : ndarray of bool, shape (N, H, W) or (H, W)
        The region of each image (one mask for all images if 2-d).

    Returns
    -------
    ndarray of float, shape (N,)
        Degrees in ``[0, 360)``; NaN where the region is empty or grey.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape [N, H, W, 3]; got {images.dtype} {images.shape}")
    masks = np.broadcast_to(np.asarray(masks, dtype=bool), images.shape[:3])
    hsv = rgb2hsv(images.reshape(-1, *images.shape[2:])).reshape(*images.shape[:3], 3)
    angle = 2.0 * np.pi * hsv[..., 0]
    weight = hsv[..., 1] * masks
    x, y = (weight * np.cos(angle)).sum(axis=(1, 2)), (weight * np.sin(angle)).sum(axis=(1, 2))
    hue = np.mod(np.degrees(np.arctan2(y, x)), 360.0)
    return np.where(np.hypot(x, y) > 1e-6 * np.maximum(masks.sum(axis=(1, 2)), 1), hue, np.nan)
