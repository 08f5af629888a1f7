"""Target-layer maps of probe images for LaViSE, read through :mod:`linkviz.models.activations`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..models.activations import iter_layer_activations
from ..models.classifier import ClassifierSpec
from ..models.modules import eval_mode

__all__ = ["batches", "eval_mode", "layer_maps"]  # eval_mode is re-exported from linkviz.models


def batches(n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive index blocks ``[0, batch_size), ...`` covering ``range(n)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, n, batch_size):
        yield np.arange(start, min(n, start + batch_size))


def layer_maps(module: nn.Module, layer: str, images: np.ndarray, *, spec: ClassifierSpec | None,
               device: torch.device) -> Tensor:
    """Activations of ``layer`` for uint8 images, in one forward pass.

    Parameters
    ----------
    module : nn.Module
        The network (run in eval mode under ``torch.inference_mode``; each submodule's mode is restored).
    layer : str
        Dotted module name.
    images : ndarray of uint8, shape (n, H, W, 3)
        At least one image.
    spec : ClassifierSpec, optional
        Input preprocessing; without one the network gets RGB in [0, 1] at the image size.
    device : torch.device

    Returns
    -------
    Tensor of float32, shape [n, C, h, w], on ``device``
        A flat ``[n, C]`` output becomes ``[n, C, 1, 1]``.

    Raises
    ------
    LayerNotFoundError
        For an unknown layer.
    ValueError
        If no images are given or the layer's output has no channel maps.
    """
    outputs = [maps for _, maps in iter_layer_activations(module, layer, images, spec=spec,
                                                          batch_size=max(1, len(images)), device=device)]
    if not outputs:
        raise ValueError("no images given")
    return outputs[0]
