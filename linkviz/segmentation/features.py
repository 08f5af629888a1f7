"""Per-pixel generator features: hooked synthesis layers, upsampled to one resolution and concatenated.

This is the feature extractor of "repurposing GANs" (Tritrong et al.): the outputs of the generator's synthesis
layers (by default every second one, as in the Linking in Style reference) are resized to the mask resolution and
stacked along the channel dimension, so each pixel gets one long feature vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from linkviz.models.generator import Generator
from linkviz.models.hooks import hooks
from linkviz.models.modules import module_device

__all__ = ["feature_layers", "generator_features"]

LayerChoice = Sequence[str] | Literal["every_second", "all"] | None


def feature_layers(generator: Generator, layers: LayerChoice = None) -> list[str]:
    """The synthesis layers whose outputs make up the features.

    Parameters
    ----------
    generator : Generator
        Any generator speaking the linkviz protocol.
    layers : sequence of str, {"every_second", "all"} or None
        Explicit dotted names (relative to ``generator.synthesis_module``), every second entry of
        ``generator.synthesis_layer_names()`` starting with the first (``None`` or ``"every_second"``, as the
        reference did), or all of them.

    Returns
    -------
    list of str
        Layer names, in order, without duplicates.

    Raises
    ------
    ValueError
        If the choice is an unknown string or selects no layer.
    """
    if layers is None or layers == "every_second":
        names = list(generator.synthesis_layer_names())[::2]
    elif layers == "all":
        names = list(generator.synthesis_layer_names())
    elif isinstance(layers, str):
        raise ValueError(f"layers must be a sequence of layer names, 'every_second', 'all' or None; got {layers!r} "
                         f"(to use a single layer, pass [{layers!r}])")
    else:
        names = list(dict.fromkeys(layers))
    if not names:
        raise ValueError("no synthesis layers selected for the features")
    return names



def _resize(activation: Tensor, *, name: str, resolution: int, mode: str) -> Tensor:
    if activation.ndim != 4:
        raise ValueError(f"layer {name!r} outputs shape {list(activation.shape)}; features need spatial maps "
                         "[N, C, H, W]")
    if activation.shape[-2:] == (resolution, resolution):
        return activation.float()
    align = False if mode in ("bilinear", "bicubic") else None
    return F.interpolate(activation.float(), size=(resolution, resolution), mode=mode, align_corners=align)


@torch.no_grad()
def generator_features(
    generator: Generator,
    ws: Tensor,
    *,
    layers: LayerChoice = None,
    resolution: int | None = None,
    mode: Literal["bilinear", "nearest", "bicubic"] = "bilinear",
    batch_size: int = 8,
    progress: bool = False,
) -> Tensor:
    """Concatenated, upsampled synthesis-layer outputs for each latent.

    Parameters
    ----------
    generator : Generator
        The generator; its ``synthesis_module`` is hooked for the duration of the call only.
    ws : Tensor, shape [N, num_ws, w_dim]
        Intermediate latents, e.g. from ``generator.mapping(z, c)``.
    layers : sequence of str, {"every_second", "all"} or None
        Which layers to use; see :func:`feature_layers`.
    resolution : int, optional
        Side length R of the features (the mask resolution); default ``generator.img_resolution``.
    mode : {"bilinear", "nearest", "bicubic"}
        Interpolation used to resize each layer's maps to ``R x R`` (the reference used "nearest").
    batch_size : int
        Latents per synthesis pass.
    progress : bool
        Show a tqdm bar over batches.

    Returns
    -------
    Tensor, shape [N, C_total, R, R]
        float32 features on the device of ``ws``; channels are the layers' channels in the order of ``layers``.

    Raises
    ------
    LayerNotFoundError
        If a layer name is not a submodule of ``generator.synthesis_module``.
    ValueError
        If ``ws`` is not 3-D, ``batch_size`` or ``resolution`` is not positive, or a layer's output is not
        ``[N, C, H, W]``.
    RuntimeError
        If a named layer is not called by ``generator.synthesis``.
    """
    if ws.ndim != 3 or len(ws) == 0:
        raise ValueError(f"ws must have shape [N, num_ws, w_dim] with N >= 1; got {list(ws.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    resolution = int(generator.img_resolution if resolution is None else resolution)
    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    names = feature_layers(generator, layers)
    device = module_device(generator.synthesis_module)
    chunks = []
    with hooks(generator.synthesis_module, capture=names, detach=True) as store:
        for start in tqdm(range(0, len(ws), batch_size), desc="generator features", disable=not progress):
            store.clear()
            generator.synthesis(ws[start:start + batch_size].to(device))
            missing = [name for name in names if name not in store]
            if missing:
                raise RuntimeError(f"layers {missing} exist but were not called by generator.synthesis")
            maps = [_resize(store[name], name=name, resolution=resolution, mode=mode) for name in names]
            chunks.append(torch.cat(maps, dim=1).to(ws.device))
            store.clear()
    return torch.cat(chunks, dim=0)
