"""Per-pixel concept names of the toy world (colours and textures), for dissection probes."""

from __future__ import annotations

import numpy as np

from .factors import TEXTURE_NAMES

COLOUR_NAMES: tuple[str, ...] = (
    "black", "grey", "white", "red", "orange", "brown", "yellow", "green", "cyan", "blue", "purple", "pink",
)
#: Texture concept names: index 0 is the background (no texture concept).
TEXTURE_CONCEPTS: tuple[str, ...] = ("none",) + TEXTURE_NAMES

# Hue bins (degrees, upper bounds) for saturated colours.
_HUE_BINS = ((15.0, "red"), (45.0, "orange"), (70.0, "yellow"), (165.0, "green"), (195.0, "cyan"),
             (255.0, "blue"), (290.0, "purple"), (345.0, "pink"), (360.1, "red"))


def colour_name_mask(images: np.ndarray) -> np.ndarray:
    """Name the colour of every pixel.

    Achromatic pixels (saturation < 0.2 or value < 0.2) are black, grey or
    white by value; dark orange/red pixels are brown; the rest are binned by hue.

    Parameters
    ----------
    images : ndarray of uint8, shape (..., 3)
        RGB images.

    Returns
    -------
    ndarray of int64, shape (...)
        Index into :data:`COLOUR_NAMES`.
    """
    from skimage.color import rgb2hsv

    images = np.asarray(images)
    if images.shape[-1] != 3:
        raise ValueError(f"images must end in an RGB axis of length 3, got shape {images.shape}")
    hsv = rgb2hsv(images.reshape(-1, 1, 3)).reshape(images.shape)
    hue, sat, val = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    bounds = np.array([b for b, _ in _HUE_BINS])
    names = np.array([COLOUR_NAMES.index(n) for _, n in _HUE_BINS])
    ids = names[np.minimum(np.searchsorted(bounds, hue, side="right"), len(bounds) - 1)]
    brown = (val < 0.55) & (sat > 0.3) & ((hue < 45.0) | (hue >= 345.0))
    ids = np.where(brown, COLOUR_NAMES.index("brown"), ids)
    achromatic = (sat < 0.2) | (val < 0.2)
    grey_level = np.where(val < 0.25, COLOUR_NAMES.index("black"),
                          np.where(val > 0.8, COLOUR_NAMES.index("white"), COLOUR_NAMES.index("grey")))
    return np.where(achromatic, grey_level, ids).astype(np.int64)
