"""Turning image arrays into grids and encoded bytes (for files and live widgets)."""

from __future__ import annotations

import io

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] (float, channels first or last) as uint8 RGB, shape (..., H, W, 3).

    uint8 input is returned unchanged.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if images.ndim >= 3 and images.shape[-3] == 3 and images.shape[-1] != 3:
        images = np.moveaxis(images, -3, -1)
    return np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


def tile_images(images: np.ndarray, *, columns: int, zoom: int = 1, gap: int = 0) -> np.ndarray:
    """Arrange images row by row into one image.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W, 3)
    columns : int
        Images per row; the last row is padded with white.
    zoom : int
        Integer nearest-neighbour magnification.
    gap : int
        White pixels between tiles (before zooming).

    Returns
    -------
    ndarray of uint8, shape (rows * (H + gap) - gap, columns * (W + gap) - gap, 3) times ``zoom``
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}")
    if columns < 1:
        raise ValueError(f"columns must be positive, got {columns}")
    n, height, width, _ = images.shape
    rows = max(-(-n // columns), 1)
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        canvas[top:top + height, left:left + width] = images[i]
    if zoom > 1:
        canvas = np.repeat(np.repeat(canvas, zoom, axis=0), zoom, axis=1)
    return canvas


def encode_image(image: np.ndarray, *, format: str = "png", quality: int = 90) -> bytes:
    """Encode an RGB image (H, W, 3) uint8 as PNG or JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    options = {"quality": quality} if format.lower() in ("jpeg", "jpg") else {}
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="JPEG" if format.lower() == "jpg" else format,
                                                      **options)
    return buffer.getvalue()


def save_png(image: np.ndarray, path, *, zoom: int = 2):
    """Write an RGB image (H, W, 3) uint8 as PNG, magnified ``zoom`` times (nearest neighbour); returns the path."""
    from pathlib import Path

    from PIL import Image

    path = Path(path)
    Image.fromarray(np.kron(np.asarray(image, np.uint8), np.ones((zoom, zoom, 1), np.uint8))).save(path)
    return path
