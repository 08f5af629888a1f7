"""Masked pooling: the explainer's training input, a layer's maps averaged under an object mask."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MASK_RESIZES", "MaskResize", "masked_pool", "resize_masks"]

MaskResize = Literal["area", "nearest"]
MASK_RESIZES: tuple[str, ...] = ("area", "nearest")


def resize_masks(masks: Tensor, size: tuple[int, int], *, mode: MaskResize = "area") -> Tensor:
    """Resize object masks to the feature resolution.

    Parameters
    ----------
    masks : Tensor of bool or float, shape [S, sh, sw]
    size : tuple of int
        ``(h, w)`` of the layer's maps.
    mode : {"area", "nearest"}
        ``"area"``: the fraction of each feature cell the mask covers (a mask never vanishes);
        ``"nearest"``: LaViSE's binary nearest-neighbour resize (PIL's pixel-centre sampling), which can drop small
        objects.

    Returns
    -------
    Tensor of float32, shape [S, h, w], values in [0, 1]
    """
    if mode not in MASK_RESIZES:
        raise ValueError(f"mask resize mode must be one of {MASK_RESIZES}, got {mode!r}")
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape [S, sh, sw], got {tuple(masks.shape)}")
    masks = masks.float()[:, None]
    if tuple(masks.shape[2:]) == tuple(size):
        return masks[:, 0]
    if mode == "nearest":
        return F.interpolate(masks, size=size, mode="nearest-exact")[:, 0]
    return F.adaptive_avg_pool2d(masks, size)[:, 0]


def masked_pool(features: Tensor, masks: Tensor, *, divisor: Literal["size", "mask"] = "size") -> Tensor:
    """Average-pool feature maps under masks.

    Parameters
    ----------
    features : Tensor, shape [S, C, h, w]
        The layer's maps, one per mask (index them by the masks' images first).
    masks : Tensor, shape [S, h, w]
        Masks at the feature resolution (see :func:`resize_masks`).
    divisor : {"size", "mask"}
        ``"size"``: divide by ``h * w``, as LaViSE does (it reuses the network's global average pool);
        ``"mask"``: divide by the mask's area (a true masked mean; an empty mask gives zeros).

    Returns
    -------
    Tensor, shape [S, C]

    Raises
    ------
    ValueError
        If the shapes do not match or the divisor is unknown.
    """
    if features.ndim != 4 or masks.ndim != 3 or features.shape[0] != masks.shape[0] \
            or features.shape[2:] != masks.shape[1:]:
        raise ValueError(f"features [S, C, h, w] and masks [S, h, w] must agree in S, h and w, got "
                         f"{tuple(features.shape)} and {tuple(masks.shape)}")
    if divisor not in ("size", "mask"):
        raise ValueError(f"divisor must be 'size' or 'mask', got {divisor!r}")
    total = torch.einsum("schw,shw->sc", features, masks.to(features.dtype))
    if divisor == "size":
        return total / (masks.shape[1] * masks.shape[2])
    return total / masks.sum((1, 2)).clamp_min(1e-12)[:, None].to(features.dtype)
