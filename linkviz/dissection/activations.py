"""A layer's activation maps on probe images, prepared the way :func:`~linkviz.dissection.dissect` prepares them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..models.classifier import Classifier, ClassifierSpec, unwrap_classifier
from ..models.hooks import resolve_module
from ..models.modules import module_device
from .dissect import _layer_output

__all__ = ["iter_layer_activations", "layer_activations"]


def iter_layer_activations(model: nn.Module | Classifier, layer: str, images: np.ndarray, *,
                           spec: ClassifierSpec | None = None, batch_size: int = 32,
                           device: str | torch.device | None = None) -> Iterator[tuple[np.ndarray, Tensor]]:
    """Run the model over images in batches and yield each batch's maps of ``layer``.

    The model is in eval mode while the generator runs and its previous modes are restored afterwards.

    Parameters
    ----------
    model : nn.Module or Classifier
    layer : str
        Dotted module name.
    images : ndarray of uint8, shape (N, H, W, 3)
        RGB images (e.g. ``probe.images``).
    spec : ClassifierSpec, optional
        Input preparation (default: a ``Classifier``'s own spec; for a bare module, RGB in [0, 1]).
    batch_size : int
    device : str or torch.device, optional
        Where the model runs (default: the model's device).

    Yields
    ------
    indices : ndarray of int64, shape (n,)
        Image indices of the batch.
    activations : Tensor of float32, shape [n, C, h, w]
        The layer's maps (a flat ``[n, C]`` output becomes ``[n, C, 1, 1]``).
    """
    module, spec = unwrap_classifier(model, spec)
    resolve_module(module, layer)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    device = module_device(module) if device is None else torch.device(device)
    training = {m: m.training for m in module.modules()}
    module.eval()
    try:
        for start in range(0, len(images), batch_size):
            indices = np.arange(start, min(len(images), start + batch_size))
            yield indices, _layer_output(module, layer, images[indices], spec, device)
    finally:
        for submodule, was_training in training.items():
            submodule.train(was_training)


def layer_activations(model: nn.Module | Classifier, layer: str, images: np.ndarray, *,
                      spec: ClassifierSpec | None = None, batch_size: int = 32,
                      device: str | torch.device | None = None) -> Tensor:
    """A layer's maps on all ``images`` at once (see :func:`iter_layer_activations` for the parameters).

    Returns
    -------
    Tensor of float32, shape [N, C, h, w], on the CPU
    """
    batches = [output.cpu() for _, output in iter_layer_activations(model, layer, images, spec=spec,
                                                                    batch_size=batch_size, device=device)]
    if not batches:
        raise ValueError("no images given")
    return torch.cat(batches)
