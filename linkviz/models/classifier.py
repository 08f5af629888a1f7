"""Classifier metadata declared once (``ClassifierSpec``) and a wrapper that feeds it generated images."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linkviz.models.edits import Edit
from linkviz.models.generator import check_generated
from linkviz.models.hooks import check_called_once, counted_hooks, resolve_module

__all__ = ["Classifier", "ClassifierSpec", "preprocess", "unwrap_classifier"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True, kw_only=True)
class ClassifierSpec:
    """What a classifier expects as input, and where its features are.

    Parameters
    ----------
    input_size : tuple of int
        ``(height, width)`` of the network input.
    in_channels : int
        3 for RGB, 1 for grayscale (converted with weights 0.299, 0.587, 0.114).
    value_range : tuple of float
        ``(low, high)`` pixel range the network expects before normalisation, e.g. ``(0, 1)`` or ``(0, 255)``.
    mean, std : tuple of float
        Per-channel normalisation ``(x - mean) / std`` after scaling; ``(0,) * c`` and ``(1,) * c`` for none.
    resize_to : int or None
        Resize the shorter side to this before center-cropping to ``input_size``; ``None`` resizes straight
        to ``input_size``.
    penultimate_layer : str
        Dotted module name whose output, flattened, is the feature vector ``r``.
    class_names : tuple of str
        One name per logit.
    head_layer : str or None
        Dotted name of the final layer mapping ``r`` to logits, if there is one.
    penultimate_range : tuple of (float or None)
        ``(low, high)`` values ``r`` can take, ``None`` for unbounded: ``(0.0, None)`` after a ReLU,
        ``(0.0, 6.0)`` after a ReLU6, ``(None, None)`` (the default) for signed features such as a BatchNorm or
        residual sum. Edits of ``r`` (counterfactuals) are clipped to this range, so declare it: clipping signed
        features at 0 would erase half of them.
    """

    input_size: tuple[int, int]
    in_channels: int
    value_range: tuple[float, float]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize_to: int | None
    penultimate_layer: str
    class_names: tuple[str, ...]
    head_layer: str | None = None
    penultimate_range: tuple[float | None, float | None] = (None, None)

    def __post_init__(self) -> None:
        for name in ("input_size", "value_range", "mean", "std", "class_names", "penultimate_range"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3; got {self.in_channels}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean and std need {self.in_channels} values each; got {self.mean}, {self.std}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive; got {self.std}")
        if len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]:
            raise ValueError(f"value_range must be (low, high) with low < high; got {self.value_range}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be (height, width); got {self.input_size}")
        bounds = self.penultimate_range
        if len(bounds) != 2 or (None not in bounds and not bounds[0] < bounds[1]):
            raise ValueError("penultimate_range must be (low, high) with low < high, None for unbounded; "
                             f"got {self.penultimate_range}")
        if self.resize_to is not None and self.resize_to < min(self.input_size):
            raise ValueError(f"resize_to={self.resize_to} is smaller than input_size {self.input_size}, "
                             "so the center crop would not fit")

    @classmethod
    def imagenet(
        cls,
        penultimate_layer: str,
        class_names: Sequence[str],
        *,
        head_layer: str | None = None,
        penultimate_range: tuple[float | None, float | None] = (0.0, None),
    ) -> ClassifierSpec:
        """Spec for the torchvision ImageNet recipe: resize to 256, center-crop 224, ImageNet mean/std.

        Parameters
        ----------
        penultimate_layer : str
            E.g. ``"avgpool"`` for a torchvision ResNet.
        class_names : sequence of str
            One name per logit.
        head_layer : str, optional
            E.g. ``"fc"`` for a torchvision ResNet.
        penultimate_range : tuple of (float or None)
            Values ``r`` can take; the default ``(0.0, None)`` fits a ResNet's average pool of ReLU outputs.
        """
        return cls(input_size=(224, 224), in_channels=3, value_range=(0.0, 1.0), mean=IMAGENET_MEAN,
                   std=IMAGENET_STD, resize_to=256, penultimate_layer=penultimate_layer,
                   class_names=tuple(class_names), head_layer=head_layer, penultimate_range=penultimate_range)

    def clip_penultimate(self, r: Tensor) -> Tensor:
        """``r`` clipped to :attr:`penultimate_range` (differentiable; unchanged for signed features).

        Parameters
        ----------
        r : Tensor, shape [..., D]

        Returns
        -------
        Tensor, shape [..., D]
        """
        low, high = self.penultimate_range
        return r if low is None and high is None else torch.clamp(r, min=low, max=high)

    def check_penultimate(self, r: Tensor, *, tolerance: float = 1e-4) -> None:
        """ValueError if ``r`` lies outside :attr:`penultimate_range` (the range declared for the layer is wrong).

        Parameters
        ----------
        r : Tensor, shape [N, D]
        tolerance : float
            Slack for float round-off.
        """
        low, high = self.penultimate_range
        for bound, outside, word in ((low, lambda: r < low - tolerance, "below"),
                                     (high, lambda: r > high + tolerance, "above")):
            if bound is not None and bool(outside().any()):
                fraction = float(outside().float().mean())
                raise ValueError(
                    f"{fraction:.1%} of the activations r of {self.penultimate_layer!r} lie {word} {bound}, "
                    f"outside the declared penultimate_range {self.penultimate_range}; declare the layer's real "
                    "range in the ClassifierSpec (None, None) for signed features")


def _resize_and_crop(images: Tensor, spec: ClassifierSpec) -> Tensor:
    height, width = images.shape[-2:]
    out_height, out_width = spec.input_size
    if spec.resize_to is None:
        if (height, width) == (out_height, out_width):
            return images
        return F.interpolate(images, size=(out_height, out_width), mode="bilinear", align_corners=False,
                             antialias=True)
    scale = spec.resize_to / min(height, width)
    size = (max(spec.resize_to, round(height * scale)), max(spec.resize_to, round(width * scale)))
    if size != (height, width):
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    top = round((size[0] - out_height) / 2.0)
    left = round((size[1] - out_width) / 2.0)
    return images[..., top:top + out_height, left:left + out_width]


def preprocess(images: Tensor, spec: ClassifierSpec) -> Tensor:
    """Turn generator output into classifier input.

    Maps ``[-1, 1]`` to ``spec.value_range``, converts to grayscale if needed, resizes the shorter side to
    ``spec.resize_to`` and center-crops to ``spec.input_size`` (or resizes straight to ``input_size``), then
    normalises. Differentiable.

    Parameters
    ----------
    images : Tensor, shape [N, 3, H, W]
        Float images in ``[-1, 1]``.
    spec : ClassifierSpec
        The classifier's input description.

    Returns
    -------
    Tensor, shape [N, spec.in_channels, *spec.input_size]

    Raises
    ------
    ValueError
        If ``images`` is not a finite float tensor [N, 3, H, W] within ``[-1, 1]``.
    """
    check_generated(images)
    low, high = spec.value_range
    x = low + (images + 1) * ((high - low) / 2)
    if spec.in_channels == 1:
        weights = x.new_tensor(_GRAY_WEIGHTS).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    x = _resize_and_crop(x, spec)
    mean = x.new_tensor(spec.mean).view(1, -1, 1, 1)
    std = x.new_tensor(spec.std).view(1, -1, 1, 1)
    return (x - mean) / std


class Classifier:
    """A classifier module with its spec, fed directly with generator output.

    The module is put in eval mode; it is otherwise left unchanged (features are read through hooks).

    Parameters
    ----------
    module : nn.Module
        Maps preprocessed images ``[N, C, H, W]`` to logits ``[N, K]``.
    spec : ClassifierSpec
        Input description and layer names; ``len(spec.class_names)`` must equal ``K``.
    """

    def __init__(self, module: nn.Module, spec: ClassifierSpec) -> None:
        resolve_module(module, spec.penultimate_layer)
        if spec.head_layer is not None:
            resolve_module(module, spec.head_layer)
        self._module = module.eval()
        self._spec = spec
        self._logits_checked = False

    @property
    def module(self) -> nn.Module:
        """The wrapped network."""
        return self._module

    @property
    def spec(self) -> ClassifierSpec:
        """The classifier's spec."""
        return self._spec

    @property
    def device(self) -> torch.device:
        """Device of the module's parameters (CPU for a module without any)."""
        for tensor in (*self._module.parameters(), *self._module.buffers()):
            return tensor.device
        return torch.device("cpu")

    def to(self, device: torch.device | str) -> Classifier:
        """Move the module to ``device`` and return ``self``."""
        self._module.to(device)
        return self

    def __repr__(self) -> str:
        return (f"Classifier({type(self._module).__name__}, {len(self._spec.class_names)} classes, "
                f"r from {self._spec.penultimate_layer!r}, device={self.device})")

    def forward_generated(
        self,
        images: Tensor,
        *,
        edits: Iterable[Edit] = (),
        grad: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Classify generated images and return logits and penultimate features.

        Parameters
        ----------
        images : Tensor, shape [N, 3, H, W]
            Generator output in ``[-1, 1]``.
        edits : iterable of UnitEdit or FunctionEdit
            Edits applied during the forward pass.
        grad : bool
            Track gradients; by default the pass runs under ``torch.no_grad()``.

        Returns
        -------
        logits : Tensor, shape [N, K]
        r : Tensor, shape [N, D]
            The penultimate layer's output, flattened.

        Notes
        -----
        Images from any device and floating dtype are moved to the module's device and preprocessed in at least
        float32, then cast to the module's dtype (a half-precision classifier gets half-precision input);
        ``logits`` and ``r`` come back in at least float32.

        Raises
        ------
        GeneratorOutputError
            If ``images`` is not a float tensor [N, 3, H, W] in ``[-1, 1]``.
        ValueError
            If the module's parameters span several devices or floating dtypes, the penultimate layer or an edited
            layer runs more than once per forward pass, or the logits do not have one column per class name.
        """
        device, dtype = self._placement()
        if isinstance(images, Tensor) and images.is_floating_point():  # others: preprocess says what is wrong
            images = images.to(device=device, dtype=torch.promote_types(dtype, torch.float32))
        x = preprocess(images, self._spec).to(dtype)
        layer = self._spec.penultimate_layer
        edits = tuple(edits)
        with (torch.enable_grad() if grad else torch.no_grad(),
              counted_hooks(self._module, capture=(layer,), edits=edits) as (store, calls)):
            logits = self._module(x)
        check_called_once(calls, (layer, *(edit.layer for edit in edits)))
        self._check_logits(logits, n_images=x.shape[0])
        if layer not in store:
            raise RuntimeError(f"penultimate layer {layer!r} was not called during the forward pass")
        output_dtype = torch.promote_types(logits.dtype, torch.float32)
        return logits.to(output_dtype), store[layer].flatten(start_dim=1).to(output_dtype)

    def logits_from_penultimate(self, r: Tensor, *, grad: bool = False) -> Tensor:
        """Apply ``spec.head_layer`` to features ``r [N, D]`` and return logits ``[N, K]``.

        ``r`` is moved to the module's device and dtype; logits come back in at least float32.
        """
        if self._spec.head_layer is None:
            raise ValueError("the spec names no head_layer; set ClassifierSpec(head_layer=...) to map r to logits")
        head = resolve_module(self._module, self._spec.head_layer)
        device, dtype = self._placement()
        with torch.enable_grad() if grad else torch.no_grad():
            logits = head(torch.as_tensor(r).to(device=device, dtype=dtype))
        return logits.to(torch.promote_types(logits.dtype, torch.float32))

    def _placement(self) -> tuple[torch.device, torch.dtype]:
        """The one device and floating dtype of the module's parameters and buffers (CPU, float32 without any).

        Raises
        ------
        ValueError
            If they are spread over several devices or floating dtypes, naming them.
        """
        tensors = (*self._module.parameters(), *self._module.buffers())
        devices = sorted({str(t.device) for t in tensors})
        dtypes = sorted({str(t.dtype) for t in tensors if t.is_floating_point()})
        if len(devices) > 1:
            raise ValueError(f"the classifier's parameters and buffers are on several devices ({', '.join(devices)}); "
                             "move the whole module to one, e.g. classifier.to('cpu')")
        if len(dtypes) > 1:
            raise ValueError(f"the classifier's parameters and buffers have several floating dtypes "
                             f"({', '.join(dtypes)}); cast the whole module to one, e.g. module.float()")
        device = torch.device(devices[0]) if devices else torch.device("cpu")
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
        return device, dtype

    def _check_logits(self, logits: Tensor, *, n_images: int) -> None:
        if self._logits_checked:
            return
        n_classes = len(self._spec.class_names)
        if not isinstance(logits, Tensor) or tuple(logits.shape) != (n_images, n_classes):
            shape = list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"expected logits of shape [N={n_images}, K={n_classes}] (K = len(class_names)); "
                             f"the module returned {shape}")
        self._logits_checked = True


def unwrap_classifier(model: nn.Module | Classifier, spec: ClassifierSpec | None = None
                      ) -> tuple[nn.Module, ClassifierSpec | None]:
    """The module of a :class:`Classifier` (and its spec unless ``spec`` is given), or a bare module as is.

    Raises
    ------
    TypeError
        For anything that is neither.
    """
    if isinstance(model, Classifier):
        return model.module, model.spec if spec is None else spec
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a Classifier, got {type(model).__name__}")
    return model, spec
