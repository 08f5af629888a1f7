"""Filter attention: the explainer input that describes one filter of a layer on one image.

Two published variants (LaViSE code and paper disagree), for activations ``A`` [C, H, W] and the target
filter's map ``A_u``:

- ``"code"`` (released code): ``z_k = <A_k, A_u> / (H W ||A_u||)``, i.e. the layer's maps weighted by the
  unit-norm target map, then average pooled;
- ``"paper"`` (as written): ``z_k = cos(A_u, A_k) * mean(A_k)``.

A zero target map (or, for ``"paper"``, a zero ``A_k``) gives ``z_k = 0``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["ATTENTION_VARIANTS", "AttentionVariant", "filter_attention"]

AttentionVariant = Literal["code", "paper"]
ATTENTION_VARIANTS: tuple[str, ...] = ("code", "paper")
_EPS = 1e-12


def filter_attention(activations: Tensor, units: int | Tensor, *, variant: AttentionVariant = "code") -> Tensor:
    """Filter-attention vectors of target units.

    Parameters
    ----------
    activations : Tensor, shape [N, C, H, W]
        The layer's maps on N images.
    units : int or Tensor of int, shape [N]
        The target unit, one for all images or one per image.
    variant : {"code", "paper"}
        See the module docstring.

    Returns
    -------
    Tensor, shape [N, C]

    Raises
    ------
    ValueError
        For a bad shape, variant or unit.
    """
    if variant not in ATTENTION_VARIANTS:
        raise ValueError(f"variant must be one of {ATTENTION_VARIANTS}, got {variant!r}")
    if activations.ndim != 4:
        raise ValueError(f"activations must have shape [N, C, H, W], got {tuple(activations.shape)}")
    n, channels, height, width = activations.shape
    units = torch.as_tensor(units, dtype=torch.long, device=activations.device)
    if units.ndim == 0:
        units = units.expand(n)
    elif tuple(units.shape) != (n,):
        raise ValueError(f"units must be one int or a tensor of shape [N] = [{n}], got {tuple(units.shape)}")
    if units.numel() and (units.min() < 0 or units.max() >= channels):
        raise ValueError(f"units must lie in [0, {channels}), got {units.unique().tolist()}")
    flat = activations.flatten(2)  # [N, C, HW]
    target = flat[torch.arange(n, device=flat.device), units]  # [N, HW]
    inner = torch.einsum("nck,nk->nc", flat, target)
    target_norm = target.norm(dim=1, keepdim=True)
    if variant == "code":
        return torch.where(target_norm > _EPS, inner / (height * width * target_norm.clamp_min(_EPS)), 0.0)
    norms = flat.norm(dim=2) * target_norm
    cosine = torch.where(norms > _EPS, inner / norms.clamp_min(_EPS), 0.0)
    return cosine * flat.mean(2)
