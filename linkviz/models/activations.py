"""A layer's activation maps on uint8 images: the one way linkviz turns images into a layer's maps.

Images go through the classifier spec's preprocessing (or become RGB in [0, 1] for a bare module), the model runs
in eval mode under ``torch.inference_mode`` and :func:`~linkviz.models.hooks.run_with_cache` captures the layer.
Network Dissection, concept PCA, LaViSE and the filter widgets all read maps through these functions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from linkviz.models.classifier import Classifier, ClassifierSpec, preprocess, unwrap_classifier
from linkviz.models.hooks import resolve_module, run_with_cache
from linkviz.models.modules import eval_mode, module_device

__all__ = ["iter_layer_activations", "layer_activations"]


def iter_layer_activations(model: nn.Module | Classifier, layer: str, images: np.ndarray, *,
                           spec: ClassifierSpec | None = None, batch_size: int = 32,
                           device: str | torch.device | None = None) -> Iterator[tuple[np.ndarray, Tensor]]:
    """Run the model over images in batches and yield each batch's maps of ``layer``.

    The model is in eval mode while the generator runs and each submodule's previous mode is restored when it
    finishes or is closed; when stopping early, close it (e.g. ``with contextlib.closing(...)``) so the modes
    come back at once rather than when it is garbage-collected.

    Parameters
    ----------
    model : nn.Module or Classifier
        The network; its weights are not changed and it is not moved.
    layer : str
        Dotted module name, as in ``model.named_modules()``.
    images : ndarray of uint8, shape (N, H, W, 3)
        RGB images (e.g. ``probe.images``).
    spec : ClassifierSpec, optional
        Input preparation (default: a ``Classifier``'s own spec; for a bare module, RGB in [0, 1] at the image
        size). With a spec, images are scaled to [-1, 1] and passed through :func:`~linkviz.models.preprocess`.
    batch_size : int
        Images per forward pass.
    device : str or torch.device, optional
        Where the inputs go (default: the model's device).

    Yields
    ------
    indices : ndarray of int64, shape (n,)
        Image indices of the batch.
    activations : Tensor of float32, shape [n, C, h, w], on ``device``
        The layer's maps (a flat ``[n, C]`` output becomes ``[n, C, 1, 1]``).

    Raises
    ------
    LayerNotFoundError
        If ``layer`` is not a submodule of the model.
    ValueError
        For a bad batch size or images, or a layer whose output is neither ``[N, C, H, W]`` nor ``[N, C]``.
    """
    module, spec = unwrap_classifier(model, spec)
    resolve_module(module, layer)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    device = module_device(module) if device is None else torch.device(device)
    with eval_mode(module):
        for start in range(0, len(images), batch_size):
            indices = np.arange(start, min(len(images), start + batch_size))
            yield indices, _batch_maps(module, layer, images[indices], spec, device)


def layer_activations(model: nn.Module | Classifier, layer: str, images: np.ndarray, *,
                      spec: ClassifierSpec | None = None, batch_size: int = 32,
                      device: str | torch.device | None = None) -> Tensor:
    """A layer's maps on all ``images`` at once (see :func:`iter_layer_activations` for the parameters).

    Returns
    -------
    Tensor of float32, shape [N, C, h, w], on the CPU

    Raises
    ------
    ValueError
        If no images are given, and as :func:`iter_layer_activations`.
    """
    batches = [output.cpu() for _, output in iter_layer_activations(model, layer, images, spec=spec,
                                                                    batch_size=batch_size, device=device)]
    if not batches:
        raise ValueError("no images given")
    return torch.cat(batches)


def _batch_maps(module: nn.Module, layer: str, images: np.ndarray, spec: ClassifierSpec | None,
                device: torch.device) -> Tensor:
    """Activations ``[n, C, h, w]`` (float32, on ``device``) of ``layer`` for uint8 images ``[n, H, W, 3]``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(255.0)
    if spec is not None:
        x = preprocess(x * 2.0 - 1.0, spec)
    with torch.inference_mode():
        _, cache = run_with_cache(module, x, layer)
    output = cache[layer].float()
    if output.ndim == 2:
        output = output[:, :, None, None]
    if output.ndim != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(output.shape)}; activation maps need "
                         "[N, C, H, W] (or [N, C], treated as 1 x 1)")
    return output
