"""Target-layer maps of probe images through hooks, for a bare module or a ``Classifier``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..models.classifier import ClassifierSpec, preprocess
from ..models.hooks import resolve_module, run_with_cache

__all__ = ["batches", "eval_mode", "layer_maps"]



def batches(n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive index blocks ``[0, batch_size), ...`` covering ``range(n)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, n, batch_size):
        yield np.arange(start, min(n, start + batch_size))


class eval_mode:
    """Context manager: put every submodule in eval mode and restore each one's mode on exit."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.training: dict[nn.Module, bool] = {}

    def __enter__(self) -> nn.Module:
        self.training = {m: m.training for m in self.module.modules()}
        return self.module.eval()

    def __exit__(self, *exc: object) -> None:
        for submodule, was_training in self.training.items():
            submodule.train(was_training)


def layer_maps(module: nn.Module, layer: str, images: np.ndarray, *, spec: ClassifierSpec | None,
               device: torch.device) -> Tensor:
    """Activations of ``layer`` for uint8 images.

    Parameters
    ----------
    module : nn.Module
        The network (run under ``torch.inference_mode``; put it in eval mode first).
    layer : str
        Dotted module name.
    images : ndarray of uint8, shape (n, H, W, 3)
    spec : ClassifierSpec, optional
        Input preprocessing; without one the network gets RGB in [0, 1] at the image size.
    device : torch.device

    Returns
    -------
    Tensor of float32, shape [n, C, h, w]

    Raises
    ------
    LayerNotFoundError
        For an unknown layer.
    ValueError
        If the layer's output has no channel maps.
    """
    resolve_module(module, layer)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(255.0)
    if spec is not None:
        x = preprocess(x * 2.0 - 1.0, spec)
    with torch.inference_mode():
        _, cache = run_with_cache(module, x, layer)
    output = cache[layer].float()
    if output.ndim != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(output.shape)}; LaViSE needs [N, C, H, W] maps")
    return output
